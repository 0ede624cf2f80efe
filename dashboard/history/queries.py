"""Read an organisation's generation history: filtered, newest first, a page at a time.

Paging is keyset ("seek") paging on `(created_at, id)`, newest first: the next page
starts strictly after the last row shown, so it costs one range scan of
`ix_generations_org_created` (or the voice/status/deleted-voice variant the filters
pick) however deep it goes, and never skips or repeats rows that share a timestamp —
the id breaks the tie. There is no COUNT(*) and no OFFSET anywhere here: both cost a
scan of everything before the page, and history is the table that grows without bound.
The cursor is a `dashboard.keyset` one (opaque to clients, checked strictly).

Every statement names `Generation.org_id == org_id` itself, although the tenant filter
adds the same condition, so PostgreSQL sees an equality on the leading index column.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import Select, bindparam, cast, func, literal, null, select, tuple_, union_all
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from dashboard import keyset
from dashboard.database import loose_scan, numbered
from dashboard.extensions import db
from dashboard.models import Generation, GenerationStatus, Voice, VoiceVariant
from dashboard.tts.catalog import SYSTEM_VOICES

PAGE_SIZE = 50
# A text-filtered page looks at most this many of the org's generations past its
# cursor. Under row-level security PostgreSQL may not use statistics or indexes for
# ILIKE (not a leakproof operator), so an unbounded search scans the whole table; a
# window keeps every page's cost constant, and "Older" searches the next window.
SEARCH_WINDOW = 2000
# Rows per statement when a bulk action walks a selection (delete, zip download).
BATCH_SIZE = 500
QUERY_MAX = 200
# The voice filter lists at most this many of the org's custom voices (by name).
VOICE_OPTIONS_CAP = 100
# The "Deleted voices" options list at most this many snapshot names.
DELETED_VOICES_CAP = 200
DELETED_PREFIX = "deleted:"
STATUS_VALUES = frozenset(s.value for s in GenerationStatus)
# The status filter's options: (value, label).
STATUS_CHOICES = tuple((s.value, s.value.capitalize()) for s in GenerationStatus)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# The "Older" link's cursors: the last row's (created_at, id).
CURSORS = keyset.Keyset("Older", {None: (keyset.TIMESTAMP, keyset.ROW_ID)})


# ------------------------------------------------------------------------ filters


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    """What the history is narrowed to, as the filter form sends it.

    Values the form would never send (an unknown status, a voice that isn't an id) are
    dropped. Dates are different: a person types them, so a date that isn't one, or a
    range that ends before it starts, is kept as `problem` for the page to explain.
    """

    q: str = ""
    voice_id: uuid.UUID | None = None
    deleted_voice: str | None = None
    status: GenerationStatus | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    # What the person typed in the date fields, shown back to them.
    raw_from: str = ""
    raw_to: str = ""
    problem: str | None = None
    # The longest text search kept (the search field's maxlength too).
    query_max: ClassVar[int] = QUERY_MAX

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> HistoryFilters:
        """Read the query string (or the bulk form's hidden fields)."""
        voice = args.get("voice", "")
        voice_id, deleted_voice = None, None
        if voice.startswith(DELETED_PREFIX):
            name = voice.removeprefix(DELETED_PREFIX)
            deleted_voice = name if 1 <= len(name) <= 100 else None
        elif voice:
            voice_id = _uuid_or_none(voice)
        status = args.get("status", "")
        raw_from, raw_to = args.get("from", "").strip()[:20], args.get("to", "").strip()[:20]
        problems: list[str] = []
        date_from = _date_or_problem(raw_from, "start", problems)
        date_to = _date_or_problem(raw_to, "end", problems)
        if date_from and date_to and date_from > date_to:
            problems.append(
                f"The start date ({_day(date_from)}) is after the end date "
                f"({_day(date_to)}). Swap them, or clear one."
            )
        return cls(
            q=args.get("q", "").strip()[:QUERY_MAX],
            voice_id=voice_id,
            deleted_voice=deleted_voice,
            status=GenerationStatus(status) if status in STATUS_VALUES else None,
            date_from=date_from,
            date_to=date_to,
            raw_from=raw_from,
            raw_to=raw_to,
            problem=" ".join(problems) or None,
        )

    @property
    def active(self) -> bool:
        """Tell whether anything narrows the history."""
        return bool(
            self.q
            or self.voice_id
            or self.deleted_voice
            or self.status
            or self.raw_from
            or self.raw_to
        )

    @property
    def voice(self) -> str:
        """Return the voice select's value for these filters."""
        if self.deleted_voice:
            return DELETED_PREFIX + self.deleted_voice
        return str(self.voice_id) if self.voice_id else ""

    def args(self, dates: bool = True) -> dict[str, str]:
        """Return the query-string arguments that reproduce these filters (no blanks)."""
        values = {
            "q": self.q,
            "voice": self.voice,
            "status": self.status.value if self.status else "",
            "from": self.raw_from if dates else "",
            "to": self.raw_to if dates else "",
        }
        return {k: v for k, v in values.items() if v}

    def conditions(self) -> list[ColumnElement[bool]]:
        """Return the WHERE conditions these filters add (valid filters only)."""
        found: list[ColumnElement[bool]] = []
        if self.voice_id:
            found.append(Generation.voice_id == self.voice_id)
        if self.deleted_voice:
            # The partial index ix_generations_org_deleted_voice serves exactly this.
            found += [Generation.voice_id.is_(None), Generation.voice_name == self.deleted_voice]
        if self.status:
            found.append(Generation.status == self.status)
        if self.date_from:
            found.append(Generation.created_at >= _midnight(self.date_from))
        if self.date_to and self.date_to < dt.date.max:
            found.append(Generation.created_at < _midnight(self.date_to + dt.timedelta(days=1)))
        if self.q:
            # ILIKE on PostgreSQL, inside a bounded window (see SEARCH_WINDOW); % and _ are
            # literal.
            found.append(Generation.text.icontains(self.q, autoescape=True))
        return found


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _date_or_problem(raw: str, which: str, problems: list[str]) -> dt.date | None:
    if not raw:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(
            f"The {which} date “{raw}” isn't a date. Pick one, or type it as YYYY-MM-DD."
        )
        return None


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _midnight(day: dt.date) -> dt.datetime:
    """Return the start of `day` in UTC: date filters are whole UTC days."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# ------------------------------------------------------------------------- cursors


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: strictly after this `(created_at, id)`."""

    created_at: dt.datetime
    id: uuid.UUID


def encode_cursor(generation: Generation) -> str:
    """Return the opaque cursor for "the generations older than `generation`"."""
    return CURSORS.encode((generation.created_at, generation.id))


def decode_cursor(token: str | None) -> Cursor | None:
    """Return the cursor in `token` (None when there is none) or raise keyset.InvalidCursor."""
    key = CURSORS.decode(token)
    return None if key is None else Cursor(*key)


# ------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of generations and the cursor of the page after it."""

    rows: Sequence[Generation]
    after: Cursor | None = None
    next_cursor: str | None = None
    # A text search stopped at the end of its window, this far back, before the page
    # filled up: older generations may still match ("Older" searches on from here).
    searched_to: dt.datetime | None = None


def matching(org_id: uuid.UUID, filters: HistoryFilters) -> Select[tuple[Generation]]:
    """Select the org's generations matching `filters`, newest first."""
    return (
        select(Generation)
        .where(Generation.org_id == org_id, *filters.conditions())
        .order_by(Generation.created_at.desc(), Generation.id.desc())
    )


def older_than(stmt: Select[Any], after: Cursor | None) -> Select[Any]:
    """Continue `stmt` (ordered newest first) strictly after `after`."""
    if after is None:
        return stmt
    # A row comparison: PostgreSQL uses it as an index condition on (…, created_at, id).
    return stmt.where(
        tuple_(Generation.created_at, Generation.id) < tuple_(after.created_at, after.id)
    )


def history_page(
    org_id: uuid.UUID,
    filters: HistoryFilters,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> HistoryPage:
    """Return one page (`limit` rows) of the org's history matching `filters` (one query;
    two at most for a text search whose window runs out before the page is full)."""
    if filters.q:
        return _search_page(org_id, filters, after, limit)
    stmt = (
        older_than(matching(org_id, filters), after)
        # The waveform is for the detail page; the list never reads it.
        .options(defer(Generation.peaks, raiseload=True))
        .limit(limit + 1)
    )
    rows = db.session.scalars(stmt).all()
    if len(rows) <= limit:
        return HistoryPage(rows, after=after)
    return HistoryPage(rows[:limit], after=after, next_cursor=encode_cursor(rows[limit - 1]))


def _search_page(
    org_id: uuid.UUID, filters: HistoryFilters, after: Cursor | None, limit: int
) -> HistoryPage:
    """Return the text matches among the next SEARCH_WINDOW generations after `after`.

    The window is a keyset range of the same index as an unfiltered page (the other
    filters narrow it as usual); the text condition is applied to its rows only. The
    window's oldest row comes along (flagged) so one statement also says where the
    next window starts when the page doesn't fill up.
    """
    others = dataclasses.replace(filters, q="")
    newest_first = (Generation.created_at.desc(), Generation.id.desc())
    limited = (
        older_than(
            select(Generation.id, Generation.created_at, Generation.text)
            .where(Generation.org_id == org_id, *others.conditions())
            .order_by(*newest_first),
            after,
        )
        .limit(SEARCH_WINDOW)
        .subquery("search_limited")
    )
    # Window functions over the limited rows only (computed after its LIMIT).
    window = select(
        limited,
        func.count().over().label("window_size"),
        func.row_number()
        .over(order_by=(limited.c.created_at.desc(), limited.c.id.desc()))
        .label("position"),
    ).subquery("search_window")
    is_last = window.c.position == window.c.window_size
    matched = window.c.text.icontains(filters.q, autoescape=True)
    result = db.session.execute(
        select(Generation, matched.label("matched"), is_last.label("last"), window.c.window_size)
        .join(window, Generation.id == window.c.id)
        .where(matched | is_last)
        .order_by(window.c.created_at.desc(), window.c.id.desc())
        .options(defer(Generation.peaks, raiseload=True))
        .limit(limit + 2)
    ).all()
    rows = [generation for generation, hit, _last, _size in result if hit]
    if len(rows) > limit:
        return HistoryPage(rows[:limit], after=after, next_cursor=encode_cursor(rows[limit - 1]))
    end = next((g for g, _hit, last, size in result if last and size >= SEARCH_WINDOW), None)
    if end is None:  # the window reached the oldest generation: nothing beyond it
        return HistoryPage(rows, after=after)
    return HistoryPage(
        rows, after=after, next_cursor=encode_cursor(end), searched_to=end.created_at
    )


# ------------------------------------------------------------------ voice options


@dataclass(frozen=True, slots=True)
class VoiceOptions:
    """The voice filter's choices: voices that exist, and names of deleted ones."""

    custom: Sequence[tuple[uuid.UUID, str]] = ()
    system: Sequence[tuple[uuid.UUID, str]] = ()
    deleted: Sequence[str] = ()
    deleted_capped: bool = False
    ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    # More custom voices exist than the list shows (VOICE_OPTIONS_CAP).
    custom_capped: bool = False

    @property
    def deleted_choices(self) -> list[tuple[str, str]]:
        """Return the "Deleted voices" options: (the voice filter's value, the name)."""
        return [(DELETED_PREFIX + name, name) for name in self.deleted]


def voice_options(org_id: uuid.UUID, selected: uuid.UUID | None = None) -> VoiceOptions:
    """Return the voice filter's options, in one statement.

    Every system voice, then the org's first VOICE_OPTIONS_CAP custom voices by name: a
    library of thousands would otherwise cost every page a few thousand `<option>`s.
    A voice past the cap still filters through `?voice=<id>` (a shared link), and the
    selected voice is always listed. The parts (system voices, custom voices, names of
    deleted voices, the selected voice) are one `UNION ALL`, each bounded, ordered and
    numbered in its own subquery, so the order is the database's (its collation).
    """

    choice = (Voice.id.label("id"), Voice.name.label("name"))
    parts = [
        numbered(
            select(*choice).where(Voice.org_id.is_(None)),
            _SYSTEM,
            (Voice.name, Voice.id),
            len(SYSTEM_VOICES) + 1,
        ),
        # Names are unique within an org: the (org_id, name) constraint's index walks them.
        numbered(
            select(*choice).where(Voice.org_id == org_id),
            _CUSTOM,
            (Voice.name,),
            VOICE_OPTIONS_CAP + 1,
        ),
    ]
    names = _deleted_voice_names()
    deleted = select(
        cast(null(), Voice.id.type).label("id"),
        names.c.value.label("name"),
        literal(_DELETED).label("part"),
        names.c.pos,
    ).where(names.c.value.is_not(None))
    selects = [*(select(part) for part in parts), deleted]
    if selected is not None:
        selects.append(
            select(Voice.id, Voice.name, literal(_SELECTED), literal(0)).where(
                Voice.id == selected, Voice.variant == VoiceVariant.CUSTOM
            )
        )
    statement = union_all(*selects)
    found = db.session.execute(
        statement, {"deleted_names_org": org_id, "deleted_names_cap": DELETED_VOICES_CAP}
    ).all()
    rows = sorted(found, key=lambda r: (r.part, r.pos))
    system = [(r.id, r.name) for r in rows if r.part == _SYSTEM]
    every_custom = [(r.id, r.name) for r in rows if r.part == _CUSTOM]
    deleted_names = [r.name for r in rows if r.part == _DELETED]
    custom = every_custom[:VOICE_OPTIONS_CAP]
    ids = {voice_id for voice_id, _ in system + custom}
    extra = next(((r.id, r.name) for r in rows if r.part == _SELECTED), None)
    if extra is not None and extra[0] not in ids:
        ids.add(extra[0])
        custom = sorted([*custom, extra], key=lambda c: c[1])
    return VoiceOptions(
        custom=custom,
        system=system,
        deleted=deleted_names[:DELETED_VOICES_CAP],
        deleted_capped=len(deleted_names) > DELETED_VOICES_CAP,
        ids=frozenset(ids),
        custom_capped=len(every_custom) > VOICE_OPTIONS_CAP,
    )


@functools.cache
def _deleted_voice_names() -> CTE:
    """Return the distinct names of deleted voices, by name (`database.loose_scan`).

    One step per name on the partial index (org_id, voice_name, …) WHERE voice_id IS
    NULL, however many generations carry it. The org and the cap are the bound
    parameters `deleted_names_org` and `deleted_names_cap`.
    """
    org = bindparam("deleted_names_org", type_=Generation.org_id.type)
    return loose_scan(
        Generation,
        "voice_name",
        lambda row: (row.org_id == org, row.voice_id.is_(None)),
        "deleted_voice_names",
        cap=bindparam("deleted_names_cap"),
    )


# The parts of `voice_options`' statement, in the order the filter lists them.
_SYSTEM, _CUSTOM, _DELETED, _SELECTED = range(4)


# --------------------------------------------------------------------- selections


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bulk action applies to: ticked ids, or everything matching `filters`.

    `upto` bounds "everything matching" to generations created by the time the page
    was shown, so a generation made since then in another tab is never swept along.
    """

    ids: tuple[uuid.UUID, ...] = ()
    filters: HistoryFilters | None = None
    upto: dt.datetime | None = None

    @property
    def all_matching(self) -> bool:
        """Tell whether the selection is "everything matching the filters"."""
        return self.filters is not None

    @property
    def empty(self) -> bool:
        """Tell whether nothing at all was selected."""
        return not self.all_matching and not self.ids


def selection_batches(
    org_id: uuid.UUID,
    selection: Selection,
    columns: Sequence[Any],
    *conditions: ColumnElement[bool],
    batch_size: int | None = None,
) -> Iterator[Sequence[Any]]:
    """Yield the selected generations' `columns`, `batch_size` rows per query.

    Every row also has `created_at` and `id` (don't list them in `columns`).

    Ticked ids go `batch_size` at a time; "everything matching" walks the history by
    keyset, newest first, so neither ever loads the whole selection. The rows of a
    batch may be deleted before the next one is read: the keyset doesn't mind.
    """
    batch_size = batch_size or BATCH_SIZE
    base = select(*columns, Generation.created_at, Generation.id).where(
        Generation.org_id == org_id, *conditions
    )
    base = base.order_by(Generation.created_at.desc(), Generation.id.desc())
    if not selection.all_matching:
        for start in range(0, len(selection.ids), batch_size):
            chunk = selection.ids[start : start + batch_size]
            rows = db.session.execute(base.where(Generation.id.in_(chunk))).all()
            if rows:
                yield rows
        return
    assert selection.filters is not None
    base = base.where(*selection.filters.conditions())
    if selection.upto is not None:
        base = base.where(Generation.created_at <= selection.upto)
    after: Cursor | None = None
    while True:
        rows = db.session.execute(older_than(base, after).limit(batch_size)).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        after = Cursor(rows[-1].created_at, rows[-1].id)


def preview(org_id: uuid.UUID, selection: Selection, limit: int = 5) -> Sequence[Generation]:
    """Return the newest few generations of `selection`, for a confirmation page."""
    if selection.all_matching:
        assert selection.filters is not None
        stmt = matching(org_id, selection.filters)
        if selection.upto is not None:
            stmt = stmt.where(Generation.created_at <= selection.upto)
    else:
        stmt = matching(org_id, HistoryFilters()).where(Generation.id.in_(selection.ids[:limit]))
    stmt = stmt.options(defer(Generation.peaks, raiseload=True)).limit(limit)
    return db.session.scalars(stmt).all()


def voice_name(voice_id: uuid.UUID | None) -> str | None:
    """Return the name of a voice the org can see, or None."""
    if voice_id is None:
        return None
    return db.session.scalar(select(Voice.name).where(Voice.id == voice_id))
