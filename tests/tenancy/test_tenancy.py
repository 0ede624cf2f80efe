"""Wall 1: the application filter scopes every ORM read and write to the org in scope."""

from __future__ import annotations

import ast

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import selectinload

from dashboard import PROJECT_ROOT, tenancy
from dashboard.extensions import db
from dashboard.models import Generation, Membership, Organization, Voice
from dashboard.tenancy import TenantScopeError, all_tenants, get_scoped, org_scope
from tests import factories
from tests.databases import both_databases


@pytest.fixture
def two_orgs(app):
    """Orgs A and B with a custom voice, two generations and a member each, plus a system voice."""
    with app.app_context(), all_tenants("test setup"):
        ids = {}
        system = factories.make_voice(name="Shared")
        ids["system_voice"] = system.id
        for label in ("a", "b"):
            org = factories.make_org(slug=f"org-{label}")
            voice = factories.make_voice(org, name=f"Voice {label}")
            gens = [factories.make_generation(org, voice, text=f"{label} {i}") for i in range(2)]
            factories.make_membership(factories.make_user(), org)
            ids[label] = org.id
            ids[f"{label}_voice"] = voice.id
            ids[f"{label}_gen"] = gens[0].id
        db.session.commit()
    return ids


@both_databases
def test_select_sees_only_the_org_in_scope(app, two_orgs):
    with app.app_context(), org_scope(two_orgs["a"]):
        texts = db.session.scalars(select(Generation.text).order_by(Generation.text)).all()
        assert texts == ["a 0", "a 1"]
        names = set(db.session.scalars(select(Voice.name)))
        assert names == {"Voice a", "Shared"}
        assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


@both_databases
def test_guessing_another_orgs_id_finds_nothing(app, two_orgs):
    with app.app_context(), org_scope(two_orgs["a"]):
        assert get_scoped(Generation, two_orgs["b_gen"]) is None
        assert get_scoped(Voice, two_orgs["b_voice"]) is None
        assert get_scoped(Generation, two_orgs["a_gen"]) is not None
        assert get_scoped(Voice, two_orgs["system_voice"]) is not None
        assert get_scoped(Generation, "not-a-uuid") is None


@both_databases
def test_joins_and_relationship_loads_are_scoped(app, two_orgs):
    with app.app_context(), org_scope(two_orgs["a"]):
        joined = db.session.scalars(
            select(Organization.slug).join(Generation, Generation.org_id == Organization.id)
        ).all()
        assert set(joined) == {"org-a"}
        org_b = db.session.scalars(
            select(Organization)
            .where(Organization.id == two_orgs["b"])
            .options(selectinload(Organization.memberships))
        ).one()
        assert org_b.memberships == []


@both_databases
def test_update_and_delete_cannot_reach_another_org(app, two_orgs):
    with app.app_context(), org_scope(two_orgs["a"]):
        result = db.session.execute(
            update(Generation).where(Generation.id == two_orgs["b_gen"]).values(voice_name="pwned")
        )
        assert result.rowcount == 0
        result = db.session.execute(delete(Voice).where(Voice.id == two_orgs["b_voice"]))
        assert result.rowcount == 0
        result = db.session.execute(delete(Voice).where(Voice.id == two_orgs["system_voice"]))
        db.session.rollback()
        result = db.session.execute(update(Generation).values(voice_name="renamed"))
        assert result.rowcount == 2  # only A's two
        db.session.commit()
    with app.app_context(), all_tenants("check"):
        names = dict(db.session.execute(select(Generation.text, Generation.voice_name)).all())
        assert names["b 0"] == "Voice b" and names["a 0"] == "renamed"


@both_databases
def test_no_org_in_scope_fails_closed(app, two_orgs):
    with app.app_context():
        with pytest.raises(TenantScopeError, match="generations"):
            db.session.scalars(select(Generation)).all()
        with pytest.raises(TenantScopeError, match="memberships"):
            db.session.execute(delete(Membership))
        # Voices without an org: only the shared system voices.
        assert set(db.session.scalars(select(Voice.name))) == {"Shared"}


@both_databases
def test_all_tenants_is_explicit_and_needs_a_reason(app, two_orgs):
    with app.app_context():
        with all_tenants("operator report"):
            assert db.session.scalar(select(func.count()).select_from(Generation)) == 4
            assert tenancy.all_tenants_reason() == "operator report"
        assert tenancy.all_tenants_reason() is None
        with pytest.raises(ValueError), all_tenants("  "):
            pass


@both_databases
def test_scopes_nest_and_restore(app, two_orgs):
    with app.app_context(), org_scope(two_orgs["a"]):
        with org_scope(two_orgs["b"]):
            assert set(db.session.scalars(select(Generation.text))) == {"b 0", "b 1"}
        assert set(db.session.scalars(select(Generation.text))) == {"a 0", "a 1"}


TENANT_MODEL_NAMES = {m.__name__ for m in tenancy.SCOPED_MODELS}


def test_no_code_fetches_tenant_rows_by_primary_key():
    """`session.get` and `get_or_404` skip the filter through the identity map; forbid them."""
    offenders = []
    for path in PROJECT_ROOT.joinpath("dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr not in {"get", "get_or_404", "first_or_404", "one_or_404"}:
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Name) and first.id in TENANT_MODEL_NAMES:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# ------------------------------------------------ which tables are tenant tables


def test_every_table_with_an_org_id_is_scoped_or_exempt_with_a_reason():
    from dashboard import tenancy
    from dashboard.models import Base

    with_org = {
        mapper.class_ for mapper in Base.registry.mappers if "org_id" in mapper.local_table.columns
    }
    assert with_org == set(tenancy.SCOPED_MODELS) | set(tenancy.EXEMPT_MODELS)
    assert all(reason.strip() for reason in tenancy.EXEMPT_MODELS.values())
    assert not set(tenancy.TENANT_MODELS) & set(tenancy.SHARED_MODELS)


def test_a_new_model_with_an_org_id_becomes_a_tenant_model_without_being_listed():
    """Derivation, not a hand-kept list: plant a model on a throwaway registry."""
    from sqlalchemy import Integer, Uuid
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    from dashboard import tenancy

    class Scratch(DeclarativeBase):
        pass

    class ApiThing(Scratch):
        __tablename__ = "api_things"
        id = mapped_column(Uuid, primary_key=True)
        org_id = mapped_column(Uuid)

    class Global(Scratch):
        __tablename__ = "globals"
        id = mapped_column(Integer, primary_key=True)

    assert tenancy.models_with_org_id(Scratch.registry) == (ApiThing,)


@pytest.mark.postgres
def test_the_databases_policies_cover_exactly_the_tenant_tables(pg_schema):
    """Every table with an org_id column has row-level security on, forced, and a policy."""
    from sqlalchemy import create_engine, text

    from dashboard import tenancy
    from dashboard.tenancy import rls

    engine = create_engine(pg_schema)
    try:
        with engine.connect() as conn:
            with_org = set(
                conn.scalars(
                    text(
                        "SELECT table_name FROM information_schema.columns "
                        "WHERE table_schema = current_schema() AND column_name = 'org_id'"
                    )
                )
            )
            secured = {
                name: (enabled, forced)
                for name, enabled, forced in conn.execute(
                    text(
                        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                        "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
                    )
                )
            }
            with_policy = set(
                conn.scalars(
                    text("SELECT tablename FROM pg_policies WHERE schemaname = current_schema()")
                )
            )
    finally:
        engine.dispose()
    exempt = {model.__tablename__ for model in tenancy.EXEMPT_MODELS}
    assert with_org - exempt == set(rls.TENANT_TABLES)
    for table in rls.TENANT_TABLES:
        assert secured[table] == (True, True), f"{table}: row-level security not enabled and forced"
        assert table in with_policy, f"{table} has no policy"
