"""Daily analytics snapshots: compute a UTC day's figures per organisation, store them.

`figures_for_day` reads a day's generations, usage-ledger lines, voices and members for
many organisations with a constant number of grouped statements (five), whatever the
number of orgs. It
runs in whatever tenant scope the caller sets: `tenancy.all_tenants` (the snapshot
command and the periodic task, on the operator role) or `tenancy.org_scope`. The
analytics page computes today for its one org with the same grouped query and the
same `Builder`, inside its single live statement (`live.read_live`).

What the figures mean:

- A generation belongs to the UTC day it was *created* on (`created_at` in
  [day 00:00, next day 00:00)), with the status it has when the figures are computed.
  Queued and running generations are not counted; re-running the snapshot once they
  have finished picks them up (the upsert is idempotent).
- Characters, audio and `voices_used` count succeeded generations only; failed ones are
  counted in `generations_failed`, and per voice, category and member under `"failed"`.
- `by_voice` is keyed by voice id, or `deleted:<snapshot name>` once the voice is gone
  (its generations still count, by the name they recorded); the voice's current name
  and variant (`"SYSTEM"`, `"CUSTOM"`, or None once deleted). `by_category` is keyed by
  the voice's category, or `"DELETED"`. `by_member` is keyed by user id, or `"former"`
  for generations whose creator's account is gone; names come from `users`.
- `characters_billed` is what the quota counts: the day's usage-ledger lines added up
  (charges less the refunds of generations that finally failed; a line counts on the
  day of its `counted_at`, a refund on its charge's), whether or not the generation
  still exists. `by_source` splits it by where the submissions came from: `"web"` (the
  dashboard) or the API key's id, named by the key's name.
- `custom_voices` and `members` are the rows created before the end of the day that
  still exist when the figures are computed. Deleted voices and memberships leave no
  trace, so a backfill can't count what was there then and is gone now.

`upsert_snapshots` writes one `AnalyticsSnapshot` per org and day with
INSERT … ON CONFLICT (org_id, day) DO UPDATE, only for rows that are new or differ,
and, in the same transaction, invalidates the analytics page's cached figures of the
orgs whose rows changed (`cache.invalidate_cached_figures`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask
from huey import Huey, crontab
from sqlalchemy import ARRAY, Select, Uuid, any_, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard import tenancy
from dashboard.analytics.cache import invalidate_cached_figures
from dashboard.extensions import db
from dashboard.models import (
    AnalyticsSnapshot,
    ApiKey,
    Generation,
    GenerationStatus,
    Membership,
    Organization,
    UsageEntry,
    UsageKind,
    UsageSource,
    User,
    Voice,
    VoiceVariant,
    new_id,
    utcnow,
)
from dashboard.tenancy.operator import worker_session

log = logging.getLogger(__name__)

DELETED_PREFIX = "deleted:"
DELETED_CATEGORY = "DELETED"
FORMER_MEMBER = "former"
FORMER_MEMBER_NAME = "Former member"
UPSERT_BATCH = 200  # rows per INSERT (16 values each: far below SQLite's variable limit)

FIGURE_FIELDS = (
    "generations_succeeded",
    "generations_failed",
    "characters",
    "audio_ms",
    "voices_used",
    "custom_voices",
    "members",
    "by_voice",
    "by_category",
    "by_member",
    "characters_billed",
    "by_source",
)
WEB_SOURCE = "web"
WEB_SOURCE_NAME = "Dashboard"
DELETED_KEY_NAME = "Deleted API key"


@dataclass(frozen=True)
class DayFigures:
    """One organisation's figures for one UTC day: exactly an `AnalyticsSnapshot`'s values.

    Breakdown values (JSON-ready, keys sorted):

    - `by_voice[voice id | "deleted:<name>"]` = {"name", "variant", "generations",
      "failed", "characters", "audio_ms"}; variant is "SYSTEM", "CUSTOM" or None (deleted)
    - `by_category[category | "DELETED"]` = {"generations", "failed", "characters",
      "audio_ms"}
    - `by_member[user id | "former"]` = {"name", "generations", "failed", "characters",
      "audio_ms"}
    - `by_source["web" | API key id]` = {"name", "kind" ("web" | "api"), "submissions",
      "characters"}: billed characters (ledger lines), adding up to `characters_billed`

    `generations` counts succeeded generations; `failed` the failed ones.
    """

    generations_succeeded: int = 0
    generations_failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    voices_used: int = 0
    custom_voices: int = 0
    members: int = 0
    by_voice: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_member: dict[str, dict[str, Any]] = field(default_factory=dict)
    characters_billed: int = 0
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot: AnalyticsSnapshot) -> DayFigures:
        """Return a stored snapshot's figures (so past days and today read alike)."""
        return cls(**{name: getattr(snapshot, name) for name in FIGURE_FIELDS})

    def values(self) -> dict[str, Any]:
        """Return the figures as column values (copies: the snapshot row owns its dicts)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class UpsertReport:
    """What writing snapshots did; reports add up across days."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def __add__(self, other: UpsertReport) -> UpsertReport:
        return UpsertReport(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Return the UTC instants [start, end) of `day`."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def yesterday(now: dt.datetime | None = None) -> dt.date:
    """Return the last complete UTC day."""
    return (now or utcnow()).astimezone(dt.UTC).date() - dt.timedelta(days=1)


# --------------------------------------------------------------------------- reads


def figures_for_day(
    day: dt.date,
    org_ids: Collection[uuid.UUID] | None = None,
    *,
    session: Session | None = None,
) -> dict[uuid.UUID, DayFigures]:
    """Compute `day`'s figures for each organisation, in five statements whatever their number.

    `org_ids`: a row for each of these that exists (even with no activity, even before
    it was created). None: every organisation that existed by the end of the day or
    had a generation that day; inside `tenancy.org_scope` None means the org in scope,
    and naming another org is refused (its rows are invisible there, so its figures
    would be silently zero).
    """
    session = session or db.session
    org_ids = _ids_in_scope(org_ids)
    start, end = day_bounds(day)

    def of_orgs(stmt: Select, column: Any) -> Select:
        return stmt if org_ids is None else stmt.where(column.in_(org_ids))

    org_query = of_orgs(select(Organization.id), Organization.id)
    if org_ids is None:
        org_query = org_query.where(Organization.created_at < end)
    orgs = set(session.scalars(org_query))

    generations = of_orgs(select(), Generation.org_id)
    ledger = of_orgs(select(), UsageEntry.org_id)
    if org_ids is None:
        generations = generations.where(_any_org(session, Generation.org_id))
        ledger = ledger.where(_any_org(session, UsageEntry.org_id))
    groups = _generation_groups(session, generations, start, end)
    sources = session.execute(source_groups(ledger, start, end)).all()
    member_counts = _counts(session, of_orgs(_count_by_org(Membership, end), Membership.org_id))
    voice_counts = _counts(
        session,
        of_orgs(_count_by_org(Voice, end), Voice.org_id).where(
            Voice.variant == VoiceVariant.CUSTOM
        ),
    )

    builders: dict[uuid.UUID, Builder] = {}
    for row in groups:
        builders.setdefault(row.org_id, Builder()).add(row)
    for row in sources:
        builders.setdefault(row.org_id, Builder()).add_source(
            row.source, row.api_key_id, row.key_name, row.submissions, row.characters
        )
    # Any org with a generation that day counts, even one whose row is dated later.
    orgs |= builders.keys()
    return {
        org_id: (builders.get(org_id) or Builder()).figures(
            custom_voices=voice_counts.get(org_id, 0), members=member_counts.get(org_id, 0)
        )
        for org_id in sorted(orgs)
    }


def _ids_in_scope(org_ids: Collection[uuid.UUID] | None) -> frozenset[uuid.UUID] | None:
    if tenancy.all_tenants_reason() is not None:
        return None if org_ids is None else frozenset(org_ids)
    scoped = tenancy.current_org_id()
    if scoped is None:
        raise tenancy.TenantScopeError(
            "figures_for_day() needs tenancy.org_scope(org_id) or tenancy.all_tenants(reason)"
        )
    if org_ids is None:
        return frozenset({scoped})
    others = set(org_ids) - {scoped}
    if others:
        raise tenancy.TenantScopeError(
            f"figures_for_day() in the scope of org {scoped} was asked for other orgs: "
            f"{', '.join(sorted(map(str, others)))}"
        )
    return frozenset(org_ids)


def _any_org(session: Session, column: Any) -> Any:
    """Return "`column` is some organisation's id", written so an (org_id, time) index serves.

    A range on `created_at` alone can't use `ix_generations_org_created` (org_id leads,
    and PostgreSQL before 18 has no skip scan): it would read the whole history; the
    ledger's `(org_id, counted_at)` index is the same. Naming
    every org turns it into one index range per org: `= ANY(array)` on PostgreSQL (an
    `IN (subquery)` there becomes a hash join over a full scan), `IN (subquery)` on
    SQLite.
    """
    if session.get_bind().dialect.name == "postgresql":
        every_org = select(func.array_agg(Organization.id)).scalar_subquery()
        return column == any_(cast(every_org, ARRAY(Uuid)))
    return column.in_(select(Organization.id))


def _generation_groups(
    session: Session, where: Select, start: dt.datetime, end: dt.datetime
) -> list[Any]:
    """One grouped read of the day's finished generations, with voice and creator names."""
    return session.execute(generation_groups(where, start, end)).all()


def generation_groups(where: Select, start: dt.datetime, end: dt.datetime) -> Select:
    """Select [start, end)'s finished generations grouped for `Builder`, with names.

    `where` carries the org conditions (a `select()` with only a WHERE clause). Grouped
    first, then joined: voices and users are looked up once per group, not once per
    generation. The analytics page embeds it for today (`live.read_live`), so a
    page's today and a snapshot of the same day are the same query's figures.
    """
    grouped = where.add_columns(
        Generation.org_id,
        Generation.voice_id,
        Generation.voice_name,
        Generation.created_by,
        Generation.status,
        func.count().label("generations"),
        func.coalesce(func.sum(Generation.character_count), 0).label("characters"),
        func.coalesce(func.sum(Generation.duration_ms), 0).label("audio_ms"),
    )
    grouped = (
        grouped.where(
            Generation.created_at >= start,
            Generation.created_at < end,
            Generation.status.in_([GenerationStatus.SUCCEEDED, GenerationStatus.FAILED]),
        )
        .group_by(
            Generation.org_id,
            Generation.voice_id,
            Generation.voice_name,
            Generation.created_by,
            Generation.status,
        )
        .subquery("day_generations")
    )
    return (
        select(
            grouped,
            Voice.name.label("current_voice_name"),
            Voice.category,
            Voice.variant,
            User.display_name,
        )
        .outerjoin(Voice, Voice.id == grouped.c.voice_id)
        .outerjoin(User, User.id == grouped.c.created_by)
    )


def source_groups(where: Select, start: dt.datetime, end: dt.datetime) -> Select:
    """Select [start, end)'s usage-ledger lines grouped by org and source, with key names.

    `where` carries the org conditions, as for `generation_groups`. A line counts on
    the day of its `counted_at` (a refund carries its charge's), so a day's sum is what
    the quota counted for it. `submissions` counts charges (a retry is one more).
    """
    grouped = (
        where.add_columns(
            UsageEntry.org_id,
            UsageEntry.source,
            UsageEntry.api_key_id,
            func.sum(case((UsageEntry.kind == UsageKind.CHARGE, 1), else_=0)).label("submissions"),
            func.coalesce(func.sum(UsageEntry.characters), 0).label("characters"),
        )
        .where(UsageEntry.counted_at >= start, UsageEntry.counted_at < end)
        .group_by(UsageEntry.org_id, UsageEntry.source, UsageEntry.api_key_id)
        .subquery("day_sources")
    )
    return select(grouped, ApiKey.name.label("key_name")).outerjoin(
        ApiKey, ApiKey.id == grouped.c.api_key_id
    )


def _count_by_org(model: type, end: dt.datetime) -> Select:
    return (
        select(model.org_id, func.count())  # type: ignore[attr-defined]
        .where(model.created_at < end)  # type: ignore[attr-defined]
        .group_by(model.org_id)  # type: ignore[attr-defined]
    )


def _counts(session: Session, stmt: Select) -> dict[uuid.UUID, int]:
    return {org_id: count for org_id, count in session.execute(stmt)}


def _tally() -> dict[str, int]:
    return {"generations": 0, "failed": 0, "characters": 0, "audio_ms": 0}


@dataclass(slots=True)
class Builder:
    """Adds up one organisation's groups of generations."""

    succeeded: int = 0
    failed: int = 0
    characters: int = 0
    audio_ms: int = 0
    by_voice: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_category: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_member: dict[str, dict[str, Any]] = field(default_factory=dict)
    billed: int = 0
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_source(
        self,
        source: str,
        api_key_id: uuid.UUID | None,
        key_name: str | None,
        submissions: Any,
        characters: Any,
    ) -> None:
        """Add one group of ledger lines (a row of `source_groups`)."""
        if api_key_id is None or source != UsageSource.API:
            key, kind, name = WEB_SOURCE, "web", WEB_SOURCE_NAME
        else:
            key, kind, name = str(api_key_id), "api", key_name or DELETED_KEY_NAME
        tally = self.by_source.get(key)
        if tally is None:
            tally = self.by_source[key] = {
                "name": name,
                "kind": kind,
                "submissions": 0,
                "characters": 0,
            }
        characters = int(characters or 0)
        tally["submissions"] += int(submissions or 0)
        tally["characters"] += characters
        self.billed += characters

    def add(self, row: Any) -> None:
        """Add one group (a row of `generation_groups`).

        The analytics page runs this for each of today's groups on every request, so
        each column is read once and a tally is only built for a key not seen yet.
        """
        voice_id, variant, created_by = row.voice_id, row.variant, row.created_by
        if voice_id is None or variant is None:
            # Deleted: only the name the generations recorded is left.
            voice_key = f"{DELETED_PREFIX}{row.voice_name}"
            category = DELETED_CATEGORY
        else:
            voice_key = str(voice_id)
            category = str(row.category)
        member_key = FORMER_MEMBER if created_by is None else str(created_by)
        voice_tally = self.by_voice.get(voice_key)
        if voice_tally is None:
            if voice_id is None or variant is None:
                voice = {"name": row.voice_name, "variant": None}
            else:
                voice = {"name": row.current_voice_name, "variant": str(variant)}
            voice_tally = self.by_voice[voice_key] = {**voice, **_tally()}
        category_tally = self.by_category.get(category)
        if category_tally is None:
            category_tally = self.by_category[category] = _tally()
        member_tally = self.by_member.get(member_key)
        if member_tally is None:
            name = FORMER_MEMBER_NAME if created_by is None else row.display_name
            member_tally = self.by_member[member_key] = {
                "name": name or FORMER_MEMBER_NAME,
                **_tally(),
            }
        count = row.generations
        if row.status is GenerationStatus.SUCCEEDED:
            characters, audio_ms = row.characters, row.audio_ms
            self.succeeded += count
            self.characters += characters
            self.audio_ms += audio_ms
            for tally in (voice_tally, category_tally, member_tally):
                tally["generations"] += count
                tally["characters"] += characters
                tally["audio_ms"] += audio_ms
        else:
            self.failed += count
            voice_tally["failed"] += count
            category_tally["failed"] += count
            member_tally["failed"] += count

    def figures(self, *, custom_voices: int, members: int) -> DayFigures:
        return DayFigures(
            generations_succeeded=self.succeeded,
            generations_failed=self.failed,
            characters=self.characters,
            audio_ms=self.audio_ms,
            voices_used=sum(1 for v in self.by_voice.values() if v["generations"]),
            custom_voices=custom_voices,
            members=members,
            by_voice=_sorted(self.by_voice),
            by_category=_sorted(self.by_category),
            by_member=_sorted(self.by_member),
            characters_billed=self.billed,
            by_source=_sorted(self.by_source),
        )


def _sorted(breakdown: Mapping[str, Any]) -> dict[str, Any]:
    # A stable key order keeps the stored JSON text identical from run to run.
    return {key: breakdown[key] for key in sorted(breakdown)}


# --------------------------------------------------------------------------- writes


def upsert_snapshots(
    day: dt.date,
    figures: Mapping[uuid.UUID, DayFigures],
    *,
    session: Session | None = None,
) -> UpsertReport:
    """Store `figures` as `day`'s snapshots, one row per org; execute only, callers commit.

    Rows whose stored values already equal the figures are left alone (not even
    `updated_at` moves), so a re-run reports them unchanged. New and changed rows go
    out in batches of INSERT … ON CONFLICT (org_id, day) DO UPDATE, which also settles
    a race with a concurrent snapshot of the same day. The orgs whose rows changed get
    the analytics page's cached figures invalidated by one UPDATE per batch
    (`cache.invalidate_cached_figures` bumps their `analytics_revision`), committed
    with the rows, so a page that sees the new revision also sees the new rows.
    """
    session = session or db.session
    report = UpsertReport()
    items = sorted(figures.items())
    for start in range(0, len(items), UPSERT_BATCH):
        batch_report, changed = _upsert_batch(session, day, items[start : start + UPSERT_BATCH])
        report += batch_report
        if changed:
            invalidate_cached_figures(changed, session=session)
    return report


def _upsert_batch(
    session: Session, day: dt.date, items: list[tuple[uuid.UUID, DayFigures]]
) -> tuple[UpsertReport, list[uuid.UUID]]:
    # Columns, not entities: nothing stale is left in the session's identity map.
    columns = [getattr(AnalyticsSnapshot, name) for name in FIGURE_FIELDS]
    stored = {
        org_id: DayFigures(*values)
        for org_id, *values in session.execute(
            select(AnalyticsSnapshot.org_id, *columns).where(
                AnalyticsSnapshot.day == day,
                AnalyticsSnapshot.org_id.in_([org_id for org_id, _ in items]),
            )
        )
    }
    now = utcnow()
    rows = [
        {"id": new_id(), "org_id": org_id, "day": day, "created_at": now, "updated_at": now}
        | figures.values()
        for org_id, figures in items
        if stored.get(org_id) != figures
    ]
    report = UpsertReport(
        created=sum(1 for row in rows if row["org_id"] not in stored),
        updated=sum(1 for row in rows if row["org_id"] in stored),
        unchanged=len(items) - len(rows),
    )
    if rows:
        insert = _dialect_insert(session)
        stmt = insert(AnalyticsSnapshot).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[AnalyticsSnapshot.org_id, AnalyticsSnapshot.day],
            set_={name: stmt.excluded[name] for name in (*FIGURE_FIELDS, "updated_at")},
        )
        session.execute(stmt)
    return report, [row["org_id"] for row in rows]


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"snapshots need SQLite or PostgreSQL, not {name}")


# --------------------------------------------------------------------------- runs


def snapshot_day(
    day: dt.date,
    org_ids: Collection[uuid.UUID] | None = None,
    *,
    session: Session | None = None,
) -> tuple[dict[uuid.UUID, DayFigures], UpsertReport]:
    """Compute and store `day`'s snapshots (flush only); return the figures and what changed."""
    figures = figures_for_day(day, org_ids, session=session)
    return figures, upsert_snapshots(day, figures, session=session)


def snapshot_from_worker(day: dt.date | None = None) -> UpsertReport:
    """Snapshot `day` (default: yesterday, UTC) for every organisation, in a worker process.

    The periodic task's body; like the reaper it spans organisations through
    `tenancy.operator.worker_session`, which commits.
    """
    day = day or yesterday()
    with worker_session("analytics: daily snapshot of every organisation") as session:
        _, report = snapshot_day(day, session=session)
    log.info("analytics snapshot of %s: %s", day, report.summary())
    return report


def register_tasks(huey: Huey, app: Flask) -> None:
    """Snapshot yesterday for every org shortly after midnight UTC (huey runs in UTC)."""

    @huey.periodic_task(crontab(hour="0", minute="15"), name="snapshot")
    def snapshot() -> None:
        with app.app_context():
            snapshot_from_worker()
