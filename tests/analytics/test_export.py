"""The analytics CSV files: headers, UTF-8 with a BOM, a row per bucket or per voice,
formula-injection safety, and only the caller's organisation — on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from flask import Flask

from dashboard.analytics import export
from dashboard.extensions import db
from dashboard.models import GenerationStatus, MemberRole, utcnow
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.analytics.helpers import add_snapshot, tally
from tests.databases import WEB_ROLE_BACKENDS
from tests.http import login

RIVAL_CHARACTERS = 555_444_333


@pytest.fixture
def world(app: Flask) -> dict:
    """Acme: three January days of snapshots (voices with awkward names) and one
    generation today; Rival: its own big figures on the same days."""
    with app.app_context(), operator_access("test setup"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        acme.created_at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        rival = factories.make_org(slug="rival")
        user = factories.make_user(display_name="Ada")
        factories.make_membership(user, acme, MemberRole.MEMBER)
        zoe = factories.make_voice(acme, name="Zoë’s Ñarrator 東京")
        formula = factories.make_voice(acme, name='=HYPERLINK("http://evil")')
        rival_voice = factories.make_voice(rival, name="Rival Only Voice")
        z, f = str(zoe.id), str(formula.id)
        add_snapshot(
            acme.id,
            dt.date(2026, 1, 5),  # Monday
            by_voice={
                z: tally(3, 300, 12_345, failed=1, name=zoe.name, variant="CUSTOM"),
                f: tally(1, 20, 1_000, name=formula.name, variant="CUSTOM"),
            },
        )
        add_snapshot(
            acme.id,
            dt.date(2026, 1, 7),
            by_voice={
                z: tally(2, 200, 8_000, name=zoe.name, variant="CUSTOM"),
                "deleted:+Old -Studio": tally(1, 10, 500, name="+Old -Studio", variant=None),
            },
        )
        add_snapshot(
            acme.id,
            dt.date(2026, 1, 12),  # the next Monday
            by_voice={"deleted:@gone": tally(4, 40, 2_000, name="@gone", variant=None)},
        )
        for day in (5, 7, 12):
            add_snapshot(
                rival.id,
                dt.date(2026, 1, day),
                by_voice={
                    str(rival_voice.id): tally(
                        9, RIVAL_CHARACTERS, 1, name="Rival Only Voice", variant="CUSTOM"
                    )
                },
            )
        factories.make_generation(
            acme,
            zoe,
            text="Live today.",
            status=GenerationStatus.SUCCEEDED,
            audio_key="x",
            duration_ms=1_500,
        )
        db.session.commit()
        return {"user": factories.detach(user)}


@pytest.fixture
def as_member(client, world):
    login(client, world["user"])
    return client


JANUARY = "from=2026-01-05&to=2026-01-14"


def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_bucket_csv_has_a_row_per_day_and_proper_headers(as_member):
    response = as_member.get(f"/o/acme/analytics/export.csv?{JANUARY}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="acme-analytics-2026-01-05-to-2026-01-14.csv"; '
        "filename*=UTF-8''acme-analytics-2026-01-05-to-2026-01-14.csv"
    )
    assert "no-store" in response.headers["Cache-Control"]
    rows = read_csv(response)
    assert rows[0] == list(export.BUCKET_HEADERS)
    assert len(rows) == 1 + 10
    assert rows[1] == ["2026-01-05", "2026-01-05", "4", "1", "320", "13.345", "2", "320"]
    assert rows[2] == ["2026-01-06", "2026-01-06", "0", "0", "0", "0.000", "0", "0"]  # no snapshot
    assert rows[3] == ["2026-01-07", "2026-01-07", "3", "0", "210", "8.500", "2", "210"]
    assert rows[8] == ["2026-01-12", "2026-01-12", "4", "0", "40", "2.000", "1", "40"]
    assert response.get_data().count(b"\r\n") == 11


def test_the_bucket_csv_follows_the_grouping(as_member):
    rows = read_csv(as_member.get(f"/o/acme/analytics/export.csv?{JANUARY}&by=week"))
    assert rows[1:] == [
        # Zoë + the formula voice + the deleted "+Old -Studio": three voices that week.
        ["2026-01-05", "2026-01-11", "7", "1", "530", "21.845", "3", "530"],
        ["2026-01-12", "2026-01-14", "4", "0", "40", "2.000", "1", "40"],
    ]
    rows = read_csv(as_member.get(f"/o/acme/analytics/export.csv?{JANUARY}&by=month"))
    assert rows[1:] == [["2026-01-05", "2026-01-14", "11", "1", "570", "23.845", "4", "570"]]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_the_voice_csv_is_utf8_and_formula_safe(as_member):
    response = as_member.get(f"/o/acme/analytics/voices.csv?{JANUARY}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="acme-voices-2026-01-05-to-2026-01-14')
    rows = read_csv(response)
    assert rows == [
        list(export.VOICE_HEADERS),
        ["Zoë’s Ñarrator 東京", "Custom", "5", "1", "500", "20.345"],
        ["'@gone", "Deleted", "4", "0", "40", "2.000"],
        ["'+Old -Studio", "Deleted", "1", "0", "10", "0.500"],  # ties go by name
        ['\'=HYPERLINK("http://evil")', "Custom", "1", "0", "20", "1.000"],
    ]
    assert "Zoë’s Ñarrator 東京".encode() in response.get_data()


def test_todays_live_figures_are_in_the_csv(as_member):
    today = utcnow().date()
    rows = read_csv(as_member.get("/o/acme/analytics/export.csv?days=7"))
    assert len(rows) == 1 + 7
    assert rows[-1] == [today.isoformat(), today.isoformat(), "1", "0", "11", "1.500", "1", "11"]
    voices = read_csv(as_member.get("/o/acme/analytics/voices.csv?days=7"))
    assert voices[1:] == [["Zoë’s Ñarrator 東京", "Custom", "1", "0", "11", "1.500"]]


@pytest.mark.parametrize("backend", WEB_ROLE_BACKENDS, indirect=True)
def test_another_orgs_figures_are_never_in_the_csv(as_member):
    for path in ("export.csv", "voices.csv"):
        for query in (JANUARY, f"{JANUARY}&by=month", "days=366"):
            body = as_member.get(f"/o/acme/analytics/{path}?{query}").get_data(as_text=True)
            assert str(RIVAL_CHARACTERS) not in body and "Rival" not in body
            assert ",9," not in body  # the rival's generation count
    assert as_member.get(f"/o/rival/analytics/export.csv?{JANUARY}").status_code == 404


def test_a_bad_period_is_a_400_in_words(as_member):
    response = as_member.get(
        "/o/acme/analytics/export.csv?days=zero", headers={"Accept": "text/plain"}
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "“zero” isn't a number of days" in response.get_data(as_text=True)


def test_safe_cell():
    assert export.safe_cell("=1+1") == "'=1+1"
    assert export.safe_cell("-2") == "'-2"
    assert export.safe_cell("\tx") == "'\tx"
    assert export.safe_cell("Plain") == "Plain"
    assert export.safe_cell(-2) == -2  # numbers are numbers, never formulas
