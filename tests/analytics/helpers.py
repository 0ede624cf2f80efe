"""What several analytics test modules share: dates, snapshot rows, reading the page."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import event, insert

from dashboard.analytics.snapshots import (
    DayFigures,
    day_bounds,
)
from dashboard.extensions import db
from dashboard.models import (
    AnalyticsSnapshot,
    Generation,
    GenerationStatus,
    MemberRole,
    new_id,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from tests import factories

ROLES = [MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER]


# Appears only in the other organisation's snapshots: it must never show up here.
RIVAL_CHARACTERS = 987_654_321


GONE_ID = str(uuid.UUID(int=0xDEAD))  # a voice deleted after its days were snapshotted


def today() -> dt.date:
    return utcnow().date()


def ago(days: int) -> dt.date:
    return today() - dt.timedelta(days=days)


def tally(generations: int, characters: int, audio_ms: int, failed: int = 0, **extra: Any):
    return {
        **extra,
        "generations": generations,
        "failed": failed,
        "characters": characters,
        "audio_ms": audio_ms,
    }


def add_snapshot(org_id: uuid.UUID, day: dt.date, **fields: Any) -> None:
    """Write one day's snapshot; totals are added up from `by_voice` unless given."""
    by_voice = fields.setdefault("by_voice", {})
    fields.setdefault("generations_succeeded", sum(v["generations"] for v in by_voice.values()))
    fields.setdefault("generations_failed", sum(v["failed"] for v in by_voice.values()))
    fields.setdefault("characters", sum(v["characters"] for v in by_voice.values()))
    fields.setdefault("audio_ms", sum(v["audio_ms"] for v in by_voice.values()))
    fields.setdefault("voices_used", sum(1 for v in by_voice.values() if v["generations"]))
    fields.setdefault("by_category", {})
    fields.setdefault("by_member", {})
    # Unless given: everything that succeeded was billed, all of it from the dashboard.
    fields.setdefault("characters_billed", fields["characters"])
    if "by_source" not in fields and fields["characters_billed"]:
        fields["by_source"] = {
            "web": web_source(fields["generations_succeeded"], fields["characters_billed"])
        }
    db.session.add(AnalyticsSnapshot(org_id=org_id, day=day, **fields))


def kpis(page: str) -> dict[str, tuple[str, str, str]]:
    """Return {label: (value, change kind, badge text)} of the KPI cards."""
    found = re.findall(
        r'<p class="kpi-label">(.*?)</p>\s*<p class="kpi-value">(.*?)</p>\s*'
        r'<p class="kpi-change change-(\w+)">\s*<span class="change-badge" aria-hidden="true">'
        r"(.*?)</span>",
        page,
    )
    return {label: (value, kind, html.unescape(badge)) for label, value, kind, badge in found}


def table_rows(page: str, chart: str) -> list[list[str]]:
    """Return the cells of a chart's "Show the numbers" table."""
    card = re.search(rf'data-chart="{chart}">(.*?)</article>', page, re.S)
    assert card, f"no {chart} chart"
    body = re.search(r"<tbody>(.*?)</tbody>", card.group(1), re.S)
    assert body, f"the {chart} chart has no table"
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def get(client, url: str, status: int = 200, **headers: str) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def url(**params: str) -> str:
    from urllib.parse import urlencode

    return "/o/acme/analytics/" + (f"?{urlencode(params)}" if params else "")


WINTER = {"from": "2025-12-25", "to": "2026-02-03"}


def add_generations_today(app: Flask, org_id: uuid.UUID, voice_id: uuid.UUID, count: int):
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "org_id": org_id,
            "voice_id": voice_id,
            "voice_name": "Narrator",
            "text": f"Line {n:04d}",
            "character_count": 9,
            "status": GenerationStatus.SUCCEEDED,
            "audio_key": "x",
            "duration_ms": 1000,
            "created_at": now - dt.timedelta(seconds=n % 60),
            "updated_at": now,
        }
        for n in range(count)
    ]
    with app.app_context(), operator_access("test setup"):
        db.session.execute(insert(Generation), rows)
        db.session.commit()


def add_daily_snapshots(app: Flask, world, first: int, last: int) -> None:
    with app.app_context(), operator_access("test setup"):
        owner = str(world["users"][MemberRole.OWNER].id)
        for days in range(first, last + 1):
            if days in (1, 2, 4, 5, 6, 8):
                continue  # the world has these
            add_snapshot(
                world["acme"],
                ago(days),
                by_voice={
                    str(world["narrator"]): tally(1, 5, 500, name="Narrator", variant="CUSTOM")
                },
                by_category={"GENERAL": tally(1, 5, 500)},
                by_member={owner: tally(1, 5, 500, name="Olive Owner")},
            )
        db.session.commit()


@contextmanager
def statements_in_view(app: Flask, endpoint: str = "analytics.index") -> Iterator[list[str]]:
    """Record the statements the view itself runs (rendering included), not the login's.

    Whatever the login and tenancy path costs before a view runs is theirs to count;
    this is what the analytics page adds to it.
    """
    view = app.view_functions[endpoint]
    running = False
    seen: list[str] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal running
        running = True
        try:
            return view(*args, **kwargs)
        finally:
            running = False

    def record(_conn, _cursor, statement, *_rest) -> None:
        if running:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    app.view_functions[endpoint] = wrapped
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        app.view_functions[endpoint] = view


SUCCEEDED, FAILED = GenerationStatus.SUCCEEDED, GenerationStatus.FAILED


# The day the fixture is about: far enough back that D+2 is still yesterday.
D = utcnow().date() - dt.timedelta(days=3)


D_START, D_END = day_bounds(D)


MS = dt.timedelta(milliseconds=1)


def at(day_offset: int, hours: float = 12) -> dt.datetime:
    """Return an instant `hours` into the day `day_offset` days after D."""
    return D_START + dt.timedelta(days=day_offset, hours=hours)


def add_generation(org, voice, user, created_at, status=SUCCEEDED, chars=10, audio_ms=1000):
    """Insert a generation of `chars` characters in `status`, created at `created_at`."""
    extra = {}
    if status is SUCCEEDED:
        extra = {"audio_key": "generations/test", "duration_ms": audio_ms}
    elif status is FAILED:
        extra = {"error": "The speech service did not answer."}
    return factories.make_generation(
        org,
        voice,
        text="x" * chars,
        created_by=user.id if user else None,
        created_at=created_at,
        status=status,
        **extra,
    )


def backdate(row, when: dt.datetime):
    row.created_at = when
    db.session.flush()
    return row


@dataclass
class Studio:
    """Ids of the fixture's rows (see `studio` for what happened on day D)."""

    acme: uuid.UUID
    globex: uuid.UUID
    initech: uuid.UUID
    newco: uuid.UUID
    ada: uuid.UUID
    bob: uuid.UUID
    narrator: uuid.UUID
    aaron: uuid.UUID
    brian: uuid.UUID
    gus: uuid.UUID
    globe: uuid.UUID


def expected_on_d(s: Studio) -> dict[uuid.UUID, DayFigures]:
    """The fixture's day D, worked out by hand from the table in `studio`."""
    acme = DayFigures(
        generations_succeeded=5,
        generations_failed=2,
        characters=10 + 40 + 50 + 20 + 30,
        audio_ms=1000 + 4000 + 5000 + 2000 + 3000,
        voices_used=3,  # Narrator, Aaron and the deleted Jingle; Brian only failed
        custom_voices=1,  # Narrator (Jingle is gone, Later came on D+2)
        members=2,  # Ada and Bob (Cy joined on D+1, Dee's membership went with her)
        by_voice={
            str(s.narrator): day_tally(2, 0, 30, 3000, name="Narrator", variant="CUSTOM"),
            str(s.aaron): day_tally(2, 0, 80, 8000, name="Aaron", variant="SYSTEM"),
            str(s.brian): day_tally(0, 1, 0, 0, name="Brian", variant="SYSTEM"),
            "deleted:Jingle": day_tally(1, 1, 40, 4000, name="Jingle", variant=None),
        },
        by_category={
            "NARRATIVE": day_tally(2, 0, 30, 3000),
            "GENERAL": day_tally(2, 0, 80, 8000),
            "PODCAST": day_tally(0, 1, 0, 0),
            "DELETED": day_tally(1, 1, 40, 4000),
        },
        by_member={
            str(s.ada): day_tally(2, 0, 50, 5000, name="Ada"),
            str(s.bob): day_tally(2, 1, 50, 5000, name="Bob"),
            "former": day_tally(1, 1, 50, 5000, name="Former member"),
        },
        # The ledger: the five that succeeded and the queued and running ones (10
        # characters each) were charged; the two that failed were given back.
        characters_billed=150 + 10 + 10,
        by_source={"web": web_source(submissions=7, characters=170)},
    )
    globex = DayFigures(
        generations_succeeded=1,
        characters=8,
        audio_ms=800,
        voices_used=1,
        custom_voices=1,
        members=1,
        by_voice={str(s.globe): day_tally(1, 0, 8, 800, name="Globe", variant="CUSTOM")},
        by_category={"CORPORATE": day_tally(1, 0, 8, 800)},
        by_member={str(s.gus): day_tally(1, 0, 8, 800, name="Gus")},
        characters_billed=8,
        by_source={"web": web_source(submissions=1, characters=8)},
    )
    initech = DayFigures(custom_voices=1, members=1)
    return {s.acme: acme, s.globex: globex, s.initech: initech}


def web_source(submissions: int, characters: int) -> dict[str, Any]:
    return {
        "name": "Dashboard",
        "kind": "web",
        "submissions": submissions,
        "characters": characters,
    }


def day_tally(generations=0, failed=0, characters=0, audio_ms=0, **named):
    return {
        **named,
        "generations": generations,
        "failed": failed,
        "characters": characters,
        "audio_ms": audio_ms,
    }
