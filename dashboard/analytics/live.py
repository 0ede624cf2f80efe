"""The analytics page's one live statement: today, current names, the month's usage.

Everything a view needs besides the snapshots comes from one UNION ALL (`read_live`),
each branch in one column layout (`_LIVE_COLUMNS`) and tagged with its kind:
today's generations grouped as the snapshots group them, the current names of the
voices and members the past days name, the characters that count against the quota
this month, and the fingerprint that tells whether a held view is still current
(`read_fingerprint` reads it alone). Every branch names the org itself.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Row,
    Select,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)

from dashboard.analytics.snapshots import (
    Builder,
    DayFigures,
    day_bounds,
    generation_groups,
    source_groups,
)
from dashboard.extensions import db
from dashboard.generations.ledger import characters_counted, counts_against_quota
from dashboard.models import Generation, Membership, UsageEntry, User, Voice, VoiceVariant


@dataclass(frozen=True, slots=True)
class Live:
    """What `read_live` found: today's figures and the current names of what is shown.

    `today` is exactly `figures_for_day(today)` for the org except `custom_voices` and
    `members`, which the page doesn't show (left at 0).
    """

    today: DayFigures | None
    voices: dict[str, tuple[str, str]]  # voice key → (current name, "System" | "Custom")
    members: dict[str, str]  # user id key → display name, for current members only
    characters_this_month: int | None = None
    # `read_fingerprint`'s figures, read in the same statement (when asked for).
    fingerprint: tuple[Any, ...] | None = None


# The live statement's columns: one layout for every branch of its UNION ALL.
_LIVE_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("voice_id", Uuid()),
    ("voice_name", String()),
    ("current_voice_name", String()),
    ("category", Voice.__table__.c.category.type),
    ("variant", Voice.__table__.c.variant.type),
    ("created_by", Uuid()),
    ("display_name", String()),
    ("member_id", Uuid()),
    ("status", Generation.__table__.c.status.type),
    ("generations", BigInteger()),
    ("characters", BigInteger()),
    ("audio_ms", BigInteger()),
)


def _branch(kind: str, **columns: Any) -> list[Any]:
    """Return a SELECT list in `_LIVE_COLUMNS`' layout; columns not given are typed NULLs."""
    unknown = columns.keys() - {name for name, _ in _LIVE_COLUMNS}
    assert not unknown, unknown
    return [
        literal_column(f"'{kind}'", String()).label("kind"),
        *(columns.get(name, cast(null(), type_)).label(name) for name, type_ in _LIVE_COLUMNS),
    ]


def read_live(
    org_id: uuid.UUID,
    day: dt.date | None,
    *,
    voice_ids: Mapping[uuid.UUID, str] | None = None,
    member_ids: Mapping[uuid.UUID, str] | None = None,
    usage_since: dt.datetime | None = None,
    fingerprint_day: dt.date | None = None,
) -> Live:
    """Read everything the page needs besides the snapshots in one statement (UNION ALL).

    - `day`'s (today's) generations grouped as `figures_for_day` groups them (the same
      `snapshots.generation_groups` query, on one range of the org's history index),
      each group with its creator's membership, and its usage-ledger lines grouped by
      source (`snapshots.source_groups`);
    - the current name and variant of each voice in `voice_ids`, and the display name
      of each user in `member_ids` who is still a member (both map an id to the key
      the snapshots name it by);
    - with `usage_since`, the characters that count against the org's quota since
      then (`generations.ledger.counts_against_quota`), saving `usage`'s statement;
    - with `fingerprint_day`, `read_fingerprint`'s figures for that day.

    Each branch states the org itself (the tenant filter is skipped, see
    `_run_branches`); row-level security applies on top.
    """
    dialect = db.session.get_bind().dialect.name
    branches = []
    if day is not None:
        branches.append(_todays_groups(org_id, day))
        branches.append(_todays_sources(org_id, day))
    if voice_ids:
        branches.append(_voice_names(org_id, voice_ids, dialect))
    if member_ids:
        branches.append(_member_names(org_id, member_ids, dialect))
    if usage_since is not None:
        branches.append(_characters_against_quota(org_id, usage_since))
    if fingerprint_day is not None and branches:  # nothing live: nothing to check later
        branches.append(_fingerprint(org_id, fingerprint_day))
    rows = _run_branches(branches)
    return _live_from_rows(rows, day is not None, voice_ids, member_ids)


# ------------------------------------------------------------------ the branches


def _todays_groups(org_id: uuid.UUID, day: dt.date) -> Select[Any]:
    """Return `day`'s generations grouped as the snapshots group them, with membership."""
    start, end = day_bounds(day)
    groups = generation_groups(select().where(Generation.org_id == org_id), start, end)
    groups = groups.subquery("today_groups")
    return select(
        *_branch(
            "today",
            **{name: groups.c[name] for name, _ in _LIVE_COLUMNS if name != "member_id"},
            member_id=Membership.user_id,
        )
    ).outerjoin(
        Membership,
        and_(Membership.user_id == groups.c.created_by, Membership.org_id == org_id),
    )


def _todays_sources(org_id: uuid.UUID, day: dt.date) -> Select[Any]:
    """Return `day`'s ledger lines grouped by source, as the snapshots group them."""
    start, end = day_bounds(day)
    groups = source_groups(select().where(UsageEntry.org_id == org_id), start, end)
    groups = groups.subquery("today_sources")
    return select(
        *_branch(
            "source",
            voice_id=groups.c.api_key_id,
            voice_name=cast(groups.c.source, String()),
            current_voice_name=groups.c.key_name,
            generations=groups.c.submissions,
            characters=groups.c.characters,
        )
    )


def _voice_names(org_id: uuid.UUID, voice_ids: Iterable[uuid.UUID], dialect: str) -> Select[Any]:
    """Return one row: a JSON array of [id, name, variant] of the voices that still exist.

    One row, not one per voice: a busy org's past names hundreds of voices, and a row
    each costs more in the driver than in the database.
    """
    json_agg, json_array = (
        (func.json_agg, func.json_build_array)
        if dialect == "postgresql"
        else (func.json_group_array, func.json_array)
    )
    names = json_agg(json_array(Voice.id, Voice.name, Voice.variant))
    return select(*_branch("voices", current_voice_name=cast(names, String()))).where(
        _among(Voice.id, voice_ids, dialect),
        or_(Voice.org_id == org_id, Voice.org_id.is_(None)),
    )


def _member_names(org_id: uuid.UUID, member_ids: Iterable[uuid.UUID], dialect: str) -> Select[Any]:
    """Return the display name of each of `member_ids` who is still a member."""
    return (
        select(
            *_branch(
                "member",
                created_by=Membership.user_id,
                display_name=User.display_name,
                member_id=Membership.user_id,
            )
        )
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.org_id == org_id,
            _among(Membership.user_id, member_ids, dialect),
        )
    )


def _characters_against_quota(org_id: uuid.UUID, since: dt.datetime) -> Select[Any]:
    """Return the characters that count against the org's quota since `since` (one row)."""
    return select(*_branch("usage", characters=characters_counted())).where(
        *counts_against_quota(org_id, since)
    )


def _run_branches(branches: Sequence[Select[Any]]) -> Sequence[Row[Any]]:
    """Run the branches as one UNION ALL (nothing to run: no rows)."""
    # Every branch names the org itself (the tests prove it on SQLite, where nothing
    # else would), so the tenant filter's loader criteria, which cost more to attach
    # to this compound statement than the statement costs to run, are left out;
    # row-level security still applies on PostgreSQL.
    statement = union_all(*branches).execution_options(skip_tenant_scope=True)
    return db.session.execute(statement).all() if branches else []


# ------------------------------------------------------------------ the rows


def _live_from_rows(
    rows: Iterable[Row[Any]],
    with_today: bool,
    voice_ids: Mapping[uuid.UUID, str] | None,
    member_ids: Mapping[uuid.UUID, str] | None,
) -> Live:
    """Sort the statement's rows by kind into today's figures, names, usage and fingerprint."""
    builder = Builder() if with_today else None
    voices: dict[str, tuple[str, str]] = {}
    members: dict[str, str] = {}
    today_members: set[uuid.UUID] = set()
    used = None
    fingerprint = None
    # Positions in `_branch`'s layout: kind first, then `_LIVE_COLUMNS` in order.
    for row in rows:
        kind = row[0]
        if kind == "today":
            assert builder is not None
            builder.add(row)
            if row[8] is not None:  # member_id: the creator is still a member
                today_members.add(row[8])
        elif kind == "voices":
            assert voice_ids is not None
            voices.update(_voice_names_of(row, voice_ids))
        elif kind == "member":
            assert member_ids is not None
            members[member_ids[row[6]]] = row[7]
        elif kind == "source":
            assert builder is not None
            builder.add_source(row[2], row[1], row[3], row[10], row[11])
        elif kind == "fingerprint":
            fingerprint = tuple(row._mapping[name] for name in _FINGERPRINT)
        else:
            used = int(row[11] or 0)
    today = None
    if builder is not None:
        today = builder.figures(custom_voices=0, members=0)
        _add_todays_names(today, today_members, voices, members)
    return Live(today, voices, members, used, fingerprint)


def _voice_names_of(
    row: Row[Any], voice_ids: Mapping[uuid.UUID, str]
) -> dict[str, tuple[str, str]]:
    """Read the voices row's JSON array, keyed as the snapshots name each voice."""
    by_text = {key.replace("-", ""): key for key in voice_ids.values()}
    return {
        by_text[voice_id.replace("-", "")]: (name, _KINDS[variant])
        for voice_id, name, variant in json.loads(row[3] or "[]")
    }


def _add_todays_names(
    today: DayFigures,
    today_members: Iterable[uuid.UUID],
    voices: dict[str, tuple[str, str]],
    members: dict[str, str],
) -> None:
    """Name today's voices that still exist and today's creators who are still members."""
    for key, tally in today.by_voice.items():
        if tally["variant"] is not None:  # a voice that still exists
            voices[key] = (tally["name"], _KINDS[tally["variant"]])
    for user_id in today_members:
        members[str(user_id)] = today.by_member[str(user_id)]["name"]


_KINDS = {str(VoiceVariant.SYSTEM): "System", str(VoiceVariant.CUSTOM): "Custom"}


def _among(column: Any, values: Iterable[uuid.UUID], dialect: str) -> Any:
    """Return "column is one of `values`", as one parameter on PostgreSQL.

    `IN (…)` would send one parameter per id (hundreds for a busy org), which costs
    more to bind than the look-up itself.
    """
    if dialect == "postgresql":
        # One text parameter, split by the server: binding a uuid[] of hundreds of
        # elements costs more in the driver than the look-up costs in the database.
        joined = bindparam(None, ",".join(map(str, values)), type_=String())
        return column == any_(cast(func.string_to_array(joined, ","), ARRAY(Uuid())))
    return column.in_(list(values))


# ------------------------------------------------------------------ the fingerprint


def _fingerprint(org_id: uuid.UUID, day: dt.date) -> Select[Any]:
    """Return a one-row SELECT whose values change whenever a live view of `day` would.

    Today's generations (how many, latest change), the org's and the system voices
    (renamed, added, deleted) and its members (joined or left, renamed): each an
    aggregate over one index range of the org, each table read once (count and latest
    change from the same scan). Every one names the org; timestamps travel as text (one
    layout for every database).
    """
    start, end = day_bounds(day)
    today = (
        select(func.count().label("n"), func.max(Generation.updated_at).label("at"))
        .where(
            Generation.org_id == org_id,
            Generation.created_at >= start,
            Generation.created_at < end,
        )
        .subquery("fp_generations")
    )
    voices = (
        select(func.count().label("n"), func.max(Voice.updated_at).label("at"))
        .where(or_(Voice.org_id == org_id, Voice.org_id.is_(None)))
        .subquery("fp_voices")
    )
    members = (
        select(func.count().label("n"), func.max(User.updated_at).label("at"))
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .subquery("fp_members")
    )
    columns = {
        "generations": today.c.n,
        "current_voice_name": cast(today.c.at, String()),
        "characters": voices.c.n,
        "voice_name": cast(voices.c.at, String()),
        "audio_ms": members.c.n,
        "display_name": cast(members.c.at, String()),
    }
    # One row each: joined on nothing but TRUE (a cartesian product of single rows).
    return select(*_branch("fingerprint", **columns)).select_from(
        today.join(voices, true()).join(members, true())
    )


_FINGERPRINT = tuple(
    ("generations", "current_voice_name", "characters", "voice_name", "audio_ms", "display_name")
)


def read_fingerprint(org_id: uuid.UUID, day: dt.date) -> tuple[Any, ...]:
    """Read what `_fingerprint` summarises, in one statement."""
    row = db.session.execute(
        _fingerprint(org_id, day).execution_options(skip_tenant_scope=True)
    ).one()
    return tuple(row._mapping[name] for name in _FINGERPRINT)
