"""History (bulk half): delete and ZIP-download ticked generations or every generation
matching the filters, in keyset batches, on both databases; other orgs' ids never count."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import uuid
import zipfile
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import select

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.history import queries, services
from dashboard.models import Generation, GenerationStatus, MemberRole
from dashboard.storage import get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import WEB_ROLE_BACKENDS
from tests.history.helpers import get_page, row_ids
from tests.http import HX, login

BULK = "/o/acme/history/bulk"
BASE = dt.datetime(2026, 4, 1, 9, 30, tzinfo=dt.UTC)
TEXTS = [
    "Chapter one: the lighthouse keeper wakes.",
    "Chapter one: the lighthouse keeper wakes.",  # same text, same second: unique names
    "¡Olé! Ünïcödé — café & crème",
    "=SUM(A1:A9) is not a formula here",
    "Still queued, no audio yet.",
    "This one failed.",
]


@pytest.fixture
def world(app: Flask) -> dict:
    """Org "acme": four finished generations, one queued, one failed; org "rival": one
    finished generation. A member of each."""
    ids: dict = {"acme_rows": []}
    with app.app_context(), operator_access("test setup"):
        storage = get_storage()
        acme, rival = factories.make_org(slug="acme"), factories.make_org(slug="rival")
        member = factories.make_user(email="member@acme.example")
        factories.make_membership(member, acme, MemberRole.MEMBER)
        voice = factories.make_voice(acme, name="Narrator")
        for n, words in enumerate(TEXTS):
            created = BASE if n < 2 else BASE - dt.timedelta(minutes=n)
            generation = factories.make_generation(
                acme, voice, text=words, created_at=created, temperature=0.6, top_k=42
            )
            if n < 4:
                factories.finish_generation(generation, storage)
            elif n == 5:
                generation.status, generation.error = GenerationStatus.FAILED, "Engine crashed."
            ids["acme_rows"].append(generation.id)
        rival_generation = factories.finish_generation(
            factories.make_generation(rival, text="Rival's secret."), storage
        )
        ids["rival_row"] = rival_generation.id
        ids["rival_key"] = rival_generation.audio_key
        db.session.commit()
        ids["member"] = factories.detach(member)
        ids["acme"], ids["rival"] = acme.id, rival.id
    return ids


@pytest.fixture
def as_member(client, world):
    login(client, world["member"])
    return client


def newest_first(app: Flask, ids) -> list[uuid.UUID]:
    with app.app_context(), operator_access("test check"):
        stmt = (
            select(Generation.id)
            .where(Generation.id.in_(list(ids)))
            .order_by(Generation.created_at.desc(), Generation.id.desc())
        )
        return list(db.session.scalars(stmt))


def remaining(app: Flask) -> set[uuid.UUID]:
    with app.app_context(), operator_access("test check"):
        return set(db.session.scalars(select(Generation.id)))


def stored(app: Flask) -> dict[uuid.UUID, tuple[str, bytes]]:
    """Map each generation with audio to (key, bytes in storage)."""
    with app.app_context(), operator_access("test check"):
        storage = get_storage()
        rows = db.session.execute(
            select(Generation.id, Generation.audio_key).where(Generation.audio_key.is_not(None))
        ).all()
        return {r.id: (r.audio_key, b"".join(storage.open_range(r.audio_key))) for r in rows}


def exists(app: Flask, key: str) -> bool:
    with app.app_context():
        return get_storage().exists(key)


def post_bulk(client, action: str, ids=(), headers=None, **fields):
    data = {"action": action, "ids": [str(i) for i in ids], **fields}
    return client.post(BULK, data=data, headers=headers or {})


# ------------------------------------------------------------------------ deleting


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_bulk_delete_of_ticked_ids_asks_then_deletes_rows_and_objects(app, as_member, world):
    rows = world["acme_rows"]
    keys = {i: key for i, (key, _) in stored(app).items()}
    chosen = [rows[0], rows[4], world["rival_row"], uuid.uuid4()]  # + another org's, + none

    confirm = post_bulk(as_member, "delete", chosen, status="succeeded")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert "Delete 4 generations?" in page and "Chapter one: the lighthouse" in page
    assert "Rival's secret" not in page
    assert '<input type="hidden" name="confirmed" value="1">' in page
    assert page.count('name="ids"') == 4 and '<input type="hidden" name="status"' in page
    assert remaining(app) >= {rows[0], rows[4]}  # nothing happened yet

    response = post_bulk(as_member, "delete", chosen, confirmed="1", status="succeeded")
    assert response.status_code == 303
    assert response.headers["Location"] == "/o/acme/history/?status=succeeded"
    left = remaining(app)
    assert rows[0] not in left and rows[4] not in left
    assert world["rival_row"] in left  # another org's id is simply not found
    assert not exists(app, keys[rows[0]])
    assert exists(app, world["rival_key"])
    assert "2 generations deleted." in get_page(as_member, "/o/acme/history/")


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_bulk_delete_of_all_matching_goes_in_batches(app, as_member, world, monkeypatch):
    monkeypatch.setattr(queries, "BATCH_SIZE", 2)
    with app.app_context(), operator_access("test setup"):
        org = SimpleNamespace(id=world["acme"])
        extra = [
            factories.make_generation(
                org, text=f"Old line {n}", created_at=BASE - dt.timedelta(days=1)
            )
            for n in range(5)
        ]
        newer = factories.make_generation(
            org, text="Made after the page was shown", created_at=BASE
        )
        db.session.commit()
        extra_ids, newer_id = [g.id for g in extra], newer.id
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    from sqlalchemy import event

    upto = (BASE - dt.timedelta(seconds=1)).isoformat()
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = post_bulk(
            as_member, "delete", all_matching="1", confirmed="1", status="queued", upto=upto
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 303
    left = remaining(app)
    # Queued and made up to `upto`: the five old lines and row 4; the newer one stays.
    assert not left & {*extra_ids, world["acme_rows"][4]}
    assert newer_id in left and world["acme_rows"][0] in left and world["rival_row"] in left
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3  # 6 rows, 2 per batch: one DELETE … IN (…) per batch
    assert all("generations.id IN" in s for s in deletes)


def test_delete_all_matching_without_javascript_confirms_with_the_filters(app, as_member, world):
    page = post_bulk(as_member, "delete", all_matching="1", q="chapter", upto=BASE.isoformat())
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Delete every matching generation?" in body
    assert "containing “chapter”" in body and "made up to 2026-04-01 09:30 UTC" in body
    assert '<input type="hidden" name="all_matching" value="1">' in body
    assert '<input type="hidden" name="q" value="chapter">' in body
    assert len(remaining(app)) == 7


def test_htmx_bulk_delete_answers_the_results_block(app, as_member, world):
    rows = world["acme_rows"]
    response = post_bulk(as_member, "delete", rows[:2], headers=HX, confirmed="1")
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "generations-deleted"
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="history-results"')
    assert "2 generations deleted." in fragment
    assert set(row_ids(fragment)) == {str(i) for i in rows[2:]}


@pytest.mark.parametrize("action", ["delete", "download"])
def test_an_empty_selection_is_sent_back_with_a_message(app, as_member, world, action):
    response = post_bulk(as_member, action, status="failed")
    assert response.status_code == 303
    assert response.headers["Location"] == "/o/acme/history/?status=failed"
    assert "Nothing was selected." in get_page(as_member, response.headers["Location"])
    fragment = post_bulk(as_member, action, headers=HX, ids=["junk"], status="failed")
    assert fragment.status_code == 400
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="history-results"') and "Nothing was selected." in body
    assert len(remaining(app)) == 7


def test_an_unknown_action_is_400(as_member, world):
    response = post_bulk(as_member, "explode", world["acme_rows"][:1])
    assert response.status_code == 400
    assert "download or to delete" in response.get_data(as_text=True)


def test_all_matching_with_bad_dates_deletes_nothing(app, as_member, world):
    response = post_bulk(as_member, "delete", all_matching="1", confirmed="1", to="2026-02-30")
    assert response.status_code == 400
    assert "isn't a date" in html.unescape(response.get_data(as_text=True))
    assert len(remaining(app)) == 7


def test_bulk_delete_with_storage_down_keeps_the_delete(app, as_member, world, storage_down):
    rows = world["acme_rows"]
    response = post_bulk(as_member, "delete", rows[:2], confirmed="1")
    assert response.status_code == 303
    assert not remaining(app) & set(rows[:2])


# --------------------------------------------------------------------- downloading


def open_zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="acme-')
    assert response.headers["Cache-Control"] == "private, no-store"
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def manifest_rows(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    text = archive.read("manifest.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_zip_of_ticked_generations_holds_their_audio_and_a_manifest(app, as_member, world):
    rows = world["acme_rows"]
    audio = stored(app)
    chosen = [*rows, world["rival_row"]]  # queued, failed and another org's are left out
    archive = open_zip(post_bulk(as_member, "download", chosen))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[-1] == "manifest.csv" and len(names) == 5
    wavs = names[:-1]
    assert len(set(wavs)) == 4 and all(n.endswith(".wav") for n in wavs)
    assert wavs[0].startswith("2026-04-01_093000_chapter-one-the-lighthouse-keeper-wakes_")
    assert any("_ole-unicode-cafe-creme_" in n for n in wavs)
    manifest = manifest_rows(archive)
    assert [r["file"] for r in manifest] == wavs
    order = newest_first(app, rows[:4])  # rows 0 and 1 share a second: the id decides
    assert [uuid.UUID(r["id"]) for r in manifest] == order
    for row in manifest:
        generation_id = uuid.UUID(row["id"])
        assert archive.read(row["file"]) == audio[generation_id][1]
        assert row["voice"] == "Narrator" and row["temperature"] == "0.6"
        assert row["top_k"] == "42" and float(row["duration_seconds"]) > 0
    assert manifest[0]["created_at"] == "2026-04-01T09:30:00+00:00"
    assert order[2:] == rows[2:4]
    assert manifest[2]["text"] == "¡Olé! Ünïcödé — café & crème"
    assert manifest[3]["text"] == "'=SUM(A1:A9) is not a formula here"  # not run by Excel
    assert str(world["rival_row"]) not in archive.read("manifest.csv").decode()


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_zip_of_all_matching_reads_in_batches(app, as_member, world, monkeypatch):
    monkeypatch.setattr(queries, "BATCH_SIZE", 1)
    archive = open_zip(post_bulk(as_member, "download", all_matching="1", q="chapter"))
    manifest = manifest_rows(archive)
    assert [uuid.UUID(r["id"]) for r in manifest] == newest_first(app, world["acme_rows"][:2])
    assert len(set(archive.namelist())) == 3
    everything = open_zip(post_bulk(as_member, "download", all_matching="1"))
    assert len(manifest_rows(everything)) == 4  # only finished generations


def test_zip_with_nothing_finished_is_sent_back_with_a_message(as_member, world):
    queued_and_failed = world["acme_rows"][4:]
    response = post_bulk(as_member, "download", queued_and_failed)
    assert response.status_code == 303
    page = get_page(as_member, response.headers["Location"])
    assert "None of the selected generations has finished audio yet." in page


def test_zip_lists_a_missing_object_instead_of_failing(app, as_member, world, caplog):
    order = newest_first(app, world["acme_rows"][:3])
    audio = stored(app)
    with app.app_context():
        for gone in (order[0], order[2]):  # the first (opened early) and a later one
            get_storage().delete(audio[gone][0])
    archive = open_zip(post_bulk(as_member, "download", order))
    manifest = manifest_rows(archive)
    missing = "audio missing from storage"
    assert [r["note"] for r in manifest] == [missing, "", missing]
    assert [r["file"] == "" for r in manifest] == [True, False, True]
    assert len(archive.namelist()) == 2 and archive.read(manifest[1]["file"]) == audio[order[1]][1]
    assert "missing from storage" in caplog.text


def test_zip_with_storage_down_is_502(as_member, world, storage_down):
    response = post_bulk(as_member, "download", world["acme_rows"][:2])
    assert response.status_code == 502
    assert "Audio storage is unavailable" in response.get_data(as_text=True)


def test_zip_is_streamed_without_reading_every_object_first(app, world):
    """Objects are opened one at a time, as the archive reaches them."""
    opened: list[str] = []
    with app.app_context(), tenancy.org_scope(world["acme"]):
        storage = get_storage()
        real_open = storage.open_range

        def tracking_open(key, *args):
            opened.append(key)
            return real_open(key, *args)

        storage.open_range = tracking_open
        selection = queries.Selection(ids=tuple(world["acme_rows"]))
        chunks = services.zip_stream(storage, world["acme"], selection)
        assert len(opened) == 1  # only the first, to fail early if storage is down
        first = next(chunks)
        assert first.startswith(b"PK\x03\x04") and len(opened) == 1
        data = first + b"".join(chunks)
    assert len(opened) == 4
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None


def test_archive_names_are_unique_and_readable():
    row = SimpleNamespace(
        created_at=BASE, text="Hello, world!  Again", id=uuid.UUID(int=0xABCDEF12)
    )
    taken: set[str] = set()
    first = services.archive_name(row, taken)
    assert first == "2026-04-01_093000_hello-world-again_abcdef12.wav"
    twin = SimpleNamespace(created_at=BASE, text=row.text, id=uuid.UUID(int=(1 << 64) | 0xABCDEF12))
    assert services.archive_name(twin, taken) != first
    assert services.text_slug("!!!") == "generation"
    assert services.text_slug("Welcome to the Acme quarterly results call") == (
        "welcome-to-the-acme-quarterly-results"
    )
    assert len(services.text_slug("word " * 50)) <= services.SLUG_MAX
    assert services.text_slug("x" * 60) == "x" * services.SLUG_MAX
    assert re.fullmatch(r"[a-z0-9-]+", services.text_slug("Ça va? 東京 ok"))
