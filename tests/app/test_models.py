"""The schema's rules hold in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import (
    Generation,
    GenerationStatus,
    Membership,
    Organization,
    User,
    Voice,
    VoiceCategory,
    VoiceVariant,
)
from dashboard.tenancy import all_tenants
from tests import factories
from tests.databases import BACKENDS

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def _schema_tests_span_orgs():
    """These tests check the schema itself, across organisations."""
    with all_tenants("schema tests look at every organisation's rows"):
        yield


def rejects(statement: str, **params) -> None:
    """Assert the database refuses `statement` (raw SQL: no Python validation involved)."""
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.execute(text(statement), params)


def insert_voice_sql(**overrides) -> tuple[str, dict]:
    values = {
        "id": uuid.uuid4().hex if db.engine.dialect.name == "sqlite" else str(uuid.uuid4()),
        "org_id": None,
        "name": "Raw",
        "category": "GENERAL",
        "language": "en-US",
        "variant": "SYSTEM",
    }
    values.update(overrides)
    cols = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    return f"INSERT INTO voices ({cols}) VALUES ({marks})", values


def sql_id(value: uuid.UUID) -> str:
    return value.hex if db.engine.dialect.name == "sqlite" else str(value)


def test_ids_are_time_ordered_uuid7(app) -> None:
    with app.app_context():
        first, second = factories.make_org(), factories.make_org()
        assert first.id.version == 7 and second.id.version == 7
        assert first.id < second.id


def test_timestamps_are_aware_utc_after_a_round_trip(app) -> None:
    with app.app_context():
        org_id = factories.make_org().id
        db.session.commit()
        db.session.expire_all()
        org = db.session.scalars(select(Organization).where(Organization.id == org_id)).one()
        assert org.created_at.tzinfo is not None
        assert org.created_at.utcoffset() == dt.timedelta(0)


def test_custom_voice_requires_an_org(app) -> None:
    with app.app_context():
        sql, params = insert_voice_sql(variant="CUSTOM", org_id=None)
        rejects(sql, **params)


def test_system_voice_must_not_have_an_org(app) -> None:
    with app.app_context():
        org = factories.make_org()
        sql, params = insert_voice_sql(variant="SYSTEM", org_id=sql_id(org.id))
        rejects(sql, **params)


def test_duplicate_system_voice_name_is_rejected(app) -> None:
    with app.app_context():
        factories.make_voice(name="Aaron")
        sql, params = insert_voice_sql(name="Aaron")
        rejects(sql, **params)


def test_custom_names_are_unique_per_org_only(app) -> None:
    with app.app_context():
        a, b = factories.make_org(), factories.make_org()
        factories.make_voice(name="Aaron")  # a system voice may share the name
        factories.make_voice(a, name="Aaron")
        factories.make_voice(b, name="Aaron")
        sql, params = insert_voice_sql(variant="CUSTOM", org_id=sql_id(a.id), name="Aaron")
        rejects(sql, **params)


def test_unknown_category_is_rejected(app) -> None:
    with app.app_context():
        sql, params = insert_voice_sql(category="OPERA")
        rejects(sql, **params)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("top_p", -0.01),
        ("top_p", 1.5),
        ("top_k", 0),
        ("top_k", 10001),
        ("repetition_penalty", 0.99),
        ("repetition_penalty", 2.1),
    ],
)
def test_out_of_range_parameters_are_rejected(app, column: str, value: float) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org())
        rejects(f"UPDATE generations SET {column} = :v WHERE id = :id", v=value, id=sql_id(gen.id))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("temperature", 0.0),
        ("temperature", 2.0),
        ("top_p", 1.0),
        ("top_k", 1),
        ("top_k", 10000),
        ("repetition_penalty", 1.0),
        ("repetition_penalty", 2.0),
    ],
)
def test_parameter_bounds_are_inclusive(app, column: str, value: float) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org(), **{column: value})
        db.session.commit()
        assert getattr(gen, column) == value


@pytest.mark.parametrize(
    "bad_text", ["", "x" * 5001, " padded "], ids=["empty", "too-long", "untrimmed"]
)
def test_text_rules_are_enforced(app, bad_text: str) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org())
        rejects(
            "UPDATE generations SET text = :t, character_count = :n WHERE id = :id",
            t=bad_text,
            n=len(bad_text),
            id=sql_id(gen.id),
        )


def test_character_count_must_match_text(app) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org(), text="Hello")
        rejects("UPDATE generations SET character_count = 99 WHERE id = :id", id=sql_id(gen.id))


def test_five_thousand_characters_fit(app) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org(), text="é" * 5000)
        db.session.commit()
        assert gen.character_count == 5000


def test_status_invariants(app) -> None:
    with app.app_context():
        gen = factories.make_generation(factories.make_org())
        assert gen.status is GenerationStatus.QUEUED
        rejects("UPDATE generations SET status = 'succeeded' WHERE id = :id", id=sql_id(gen.id))
        rejects("UPDATE generations SET status = 'failed' WHERE id = :id", id=sql_id(gen.id))
        rejects("UPDATE generations SET status = 'lost' WHERE id = :id", id=sql_id(gen.id))


def test_email_is_unique_case_insensitively(app) -> None:
    with app.app_context():
        user = factories.make_user(email="Ada@Example.com ")
        assert user.email == "ada@example.com"
        with pytest.raises(IntegrityError), db.session.begin_nested():
            factories.make_user(email="ADA@example.COM")
        rejects(
            "INSERT INTO users (id, email, password_hash, display_name) "
            "VALUES (:id, 'Grace@example.com', 'h', 'G')",
            id=sql_id(uuid.uuid4()),
        )


def test_membership_is_unique_per_user_and_org(app) -> None:
    with app.app_context():
        user, org = factories.make_user(), factories.make_org()
        factories.make_membership(user, org)
        with pytest.raises(IntegrityError), db.session.begin_nested():
            factories.make_membership(user, org)


def test_deleting_a_voice_keeps_generations_and_their_voice_name(app) -> None:
    with app.app_context():
        org = factories.make_org()
        voice = factories.make_voice(org, name="Narrator")
        gen = factories.make_generation(org, voice)
        db.session.commit()
        db.session.execute(text("DELETE FROM voices WHERE id = :id"), {"id": sql_id(voice.id)})
        db.session.commit()
        db.session.expire_all()
        kept = db.session.scalars(select(Generation).where(Generation.id == gen.id)).one()
        assert kept.voice_id is None and kept.voice_name == "Narrator"


def test_deleting_a_user_keeps_their_generations(app) -> None:
    with app.app_context():
        org, user = factories.make_org(), factories.make_user()
        gen = factories.make_generation(org, created_by=user.id)
        db.session.commit()
        db.session.execute(text("DELETE FROM users WHERE id = :id"), {"id": sql_id(user.id)})
        db.session.commit()
        db.session.expire_all()
        assert (
            db.session.scalars(select(Generation.created_by).where(Generation.id == gen.id)).one()
            is None
        )


def test_deleting_an_org_cascades_to_its_data_only(app) -> None:
    with app.app_context():
        doomed, kept = factories.make_org(), factories.make_org()
        user = factories.make_user()
        system = factories.make_voice(name="Shared")
        factories.make_membership(user, doomed)
        factories.make_membership(user, kept)
        factories.make_generation(doomed, factories.make_voice(doomed))
        factories.make_generation(doomed, system)
        factories.make_generation(kept, factories.make_voice(kept))
        db.session.commit()
        doomed_id = doomed.id
        db.session.execute(
            text("DELETE FROM organizations WHERE id = :id"), {"id": sql_id(doomed_id)}
        )
        db.session.commit()
        count = lambda model, *where: db.session.scalar(  # noqa: E731
            select(db.func.count()).select_from(model).where(*where)
        )
        assert count(Voice, Voice.org_id == doomed_id) == 0
        assert count(Generation, Generation.org_id == doomed_id) == 0
        assert count(Membership, Membership.org_id == doomed_id) == 0
        assert count(Voice, Voice.variant == VoiceVariant.SYSTEM) == 1
        assert count(Generation) == 1 and count(Membership) == 1 and count(User) == 1


def test_history_index_exists_with_descending_keys(app) -> None:
    with app.app_context():
        indexes = {ix["name"]: ix for ix in inspect(db.engine).get_indexes("generations")}
        ix = indexes["ix_generations_org_created"]
        assert ix["column_names"] == ["org_id", "created_at", "id"]
        if db.engine.dialect.name == "postgresql":
            assert ix["column_sorting"] == {"created_at": ("desc",), "id": ("desc",)}
        else:
            sql = db.session.scalar(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_generations_org_created'")
            )
            assert "created_at DESC" in sql and "id DESC" in sql


def test_voice_defaults(app) -> None:
    with app.app_context():
        voice = factories.make_voice(factories.make_org())
        assert voice.language == "en-US" and voice.category is VoiceCategory.GENERAL
