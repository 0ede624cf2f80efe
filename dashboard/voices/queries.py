"""Read voices: the public system list, and an organisation's library.

The library lists an org's custom voices a page at a time and the system voices in
full, both narrowed by the same search and filters.

Paging is keyset ("seek") paging: the next page starts strictly after the last row
shown, on `(name, id)` for the name order and `(created_at, id)` for newest first, so
it costs one index range scan however deep it goes (no OFFSET) and never skips or
repeats a row when several share a timestamp (the id breaks the tie). The cursor is a
`dashboard.keyset` one (opaque to clients, checked strictly when it comes back).
A continuation page (`?after=`) lists only custom voices; the 20 system voices are on
the first page. "Your voices" shows a count, capped at COUNT_CAP, and only queried
when the list doesn't fit on one page.

Search matches name and description. On PostgreSQL it is typo-tolerant: `pg_trgm`'s
similarity and word similarity (`name % q`, `name %> q`…, served by the GIN trigram
indexes of migration 0004) or a plain substring match, and the default order is the
best score first. Best-match order has no stable key to seek on, so it shows the top
`BEST_MATCHES` and says when there are more; sorting a search by name or newest
pages through every match. SQLite falls back to a case-insensitive substring match,
with name matches ranked above description matches.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import (
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from dashboard import keyset
from dashboard.database import loose_scan, numbered
from dashboard.extensions import db
from dashboard.models import Voice, VoiceCategory, VoiceVariant
from dashboard.models.voices import NAME_MAX
from dashboard.voices.languages import language_label

PAGE_SIZE = 24
# Best-match order can't be paged by keyset; past this many matches the page says so.
BEST_MATCHES = 50
# "Your voices" shows how many match; counting stops here ("1,000+").
COUNT_CAP = 1000
QUERY_MAX = 100
CATEGORY_VALUES = frozenset(c.value for c in VoiceCategory)
# The category filter's options: (value, label).
CATEGORY_CHOICES = tuple((c.value, c.label) for c in VoiceCategory)


class Order(enum.StrEnum):
    """How a library list is ordered; the `sort` parameter chooses (blank: best match)."""

    BEST = "best"
    NAME = "name"
    NEWEST = "newest"


SORT_CHOICES = (
    ("", "Best match"),
    (Order.NAME.value, "Name (A–Z)"),
    (Order.NEWEST.value, "Newest"),
)
# The "Load more" link's cursors: the last row's key in the order it was listed in.
CURSORS = keyset.Keyset(
    "Load more",
    {
        Order.NAME: (keyset.text(NAME_MAX), keyset.ROW_ID),
        Order.NEWEST: (keyset.TIMESTAMP, keyset.ROW_ID),
    },
)


@dataclass(frozen=True, slots=True)
class LibraryFilters:
    """What the library is narrowed to: search text, category, language and sort."""

    q: str = ""
    category: VoiceCategory | None = None
    language: str | None = None
    sort: str = ""
    # The longest search kept (the search field's maxlength too).
    query_max: ClassVar[int] = QUERY_MAX

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LibraryFilters:
        """Read the query string; unknown values are ignored, as a form would never send them."""
        category = args.get("category", "")
        language = args.get("language", "").strip()
        sort = args.get("sort", "")
        return cls(
            q=" ".join(args.get("q", "").split())[:QUERY_MAX],
            category=VoiceCategory(category) if category in CATEGORY_VALUES else None,
            language=language if 2 <= len(language) <= 35 else None,
            sort=sort if sort in (Order.NAME, Order.NEWEST) else "",
        )

    @property
    def order(self) -> Order:
        """Return the effective order: best match only means something when searching."""
        if self.sort:
            return Order(self.sort)
        return Order.BEST if self.q else Order.NAME

    @property
    def active(self) -> bool:
        """Tell whether anything narrows the lists (the sort doesn't)."""
        return bool(self.q or self.category or self.language)

    def args(self) -> dict[str, str]:
        """Return the query-string arguments that reproduce these filters (no blanks)."""
        values = {
            "q": self.q,
            "category": self.category.value if self.category else "",
            "language": self.language or "",
            "sort": self.sort,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: the order it belongs to and the last row's key."""

    order: Order
    key: tuple[Any, uuid.UUID]


@dataclass(frozen=True, slots=True)
class CustomPage:
    """One page of an org's custom voices and what comes after it."""

    voices: Sequence[Voice]
    after: Cursor | None = None
    next_cursor: str | None = None
    # Best-match order stopped at BEST_MATCHES with more matches left.
    truncated: bool = False
    # The system voices matching the same filters, when asked for (`with_system`).
    system: Sequence[Voice] = ()


@dataclass(frozen=True, slots=True)
class Library:
    """Everything the library page shows besides the custom voices page."""

    system: Sequence[Voice] = ()
    custom_total: int = 0
    custom_total_capped: bool = False
    languages: Sequence[tuple[str, str]] = field(default_factory=tuple)


# ------------------------------------------------------------------- system voices


def system_voices() -> Select[tuple[Voice]]:
    """Select the shared system voices, alphabetically."""
    return select(Voice).where(Voice.variant == VoiceVariant.SYSTEM).order_by(Voice.name)


def get_system_voice(voice_id: uuid.UUID) -> Voice | None:
    """Return the system voice with `voice_id`, or None (custom voices never match)."""
    return db.session.scalars(
        system_voices().where(Voice.id == voice_id).order_by(None)
    ).one_or_none()


# ------------------------------------------------------------------------- cursors


def encode_cursor(order: Order, voice: Voice) -> str:
    """Return the opaque cursor for "the rows after `voice`" in `order`."""
    value = voice.name if order is Order.NAME else voice.created_at
    return CURSORS.encode((value, voice.id), order)


def decode_cursor(token: str | None, order: Order) -> Cursor | None:
    """Return the cursor in `token` (None when there is none) or raise keyset.InvalidCursor."""
    key = CURSORS.decode(token, order)
    return None if key is None else Cursor(order, key)


# ------------------------------------------------------------------ search & order


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _matches(q: str) -> ColumnElement[bool]:
    """Return the search condition on name and description for `q`."""
    substring = or_(
        Voice.name.icontains(q, autoescape=True),
        Voice.description.icontains(q, autoescape=True),
    )
    if _dialect() != "postgresql":
        return substring
    # `col %> q` is `q <% col`: a stretch of col is word-similar to q (pg_trgm's
    # word_similarity_threshold, 0.6); `name % q`: the whole name is similar (0.3), which
    # catches a dropped letter in a short name ("podcst"). Column first, for the index.
    return or_(
        substring,
        Voice.name.op("%")(q),
        Voice.name.op("%>")(q),
        Voice.description.op("%>")(q),
    )


def _best_first_order(q: str) -> tuple[ColumnElement[Any], ...]:
    """Return the ORDER BY for how well each voice matches `q`, then by name."""
    if _dialect() == "postgresql":
        name_score = func.greatest(
            func.word_similarity(literal(q), Voice.name), func.similarity(literal(q), Voice.name)
        )
        description_score = func.word_similarity(literal(q), func.coalesce(Voice.description, ""))
        return (
            func.greatest(name_score, description_score).desc(),
            name_score.desc(),
            Voice.name,
            Voice.id,
        )
    name_hit = case((Voice.name.icontains(q, autoescape=True), 0), else_=1)
    return (name_hit, Voice.name, Voice.id)


def _filtered(stmt: Select[tuple[Voice]], filters: LibraryFilters) -> Select[tuple[Voice]]:
    if filters.q:
        stmt = stmt.where(_matches(filters.q))
    if filters.category:
        stmt = stmt.where(Voice.category == filters.category)
    if filters.language:
        stmt = stmt.where(Voice.language == filters.language)
    return stmt


def _keyset(
    stmt: Select[Any], filters: LibraryFilters, after: Cursor | None = None
) -> tuple[Select[Any], tuple[ColumnElement[Any], ...]]:
    """Return `stmt` starting after `after` (keyset orders), and the ORDER BY it needs."""
    order = filters.order
    if order is Order.BEST:
        return stmt, _best_first_order(filters.q)
    if order is Order.NAME:
        if after is not None:
            stmt = stmt.where(tuple_(Voice.name, Voice.id) > tuple_(*after.key))
        return stmt, (Voice.name, Voice.id)
    if after is not None:
        stmt = stmt.where(tuple_(Voice.created_at, Voice.id) < tuple_(*after.key))
    return stmt, (Voice.created_at.desc(), Voice.id.desc())


def _custom_voices(org_id: uuid.UUID, filters: LibraryFilters) -> Select[tuple[Voice]]:
    # org_id is explicit (not only the tenant filter's OR) so PostgreSQL can seek the
    # (org_id, …) indexes.
    stmt = select(Voice).where(Voice.org_id == org_id, Voice.variant == VoiceVariant.CUSTOM)
    return _filtered(stmt, filters)


# ------------------------------------------------------------------------ library


def custom_voices_page(
    org_id: uuid.UUID,
    filters: LibraryFilters,
    after: Cursor | None = None,
    *,
    with_system: bool = False,
) -> CustomPage:
    """Return one page of the org's custom voices matching `filters` (one query).

    `with_system`: the system voices matching the filters come in the same statement
    (`page.system`): the custom page and the system voices are each ordered, bounded
    and numbered in their own subquery of a `UNION ALL`, so both keep the database's
    order (its collation, its similarity ranking) and the page pays one round trip.
    """
    limit = BEST_MATCHES + 1 if filters.order is Order.BEST else PAGE_SIZE + 1
    custom, order = _keyset(_custom_voices(org_id, filters), filters, after)
    parts = [numbered(custom, _CUSTOM_PART, order, limit)]
    if with_system:
        system = _filtered(select(Voice).where(Voice.variant == VoiceVariant.SYSTEM), filters)
        parts.append(numbered(system, _SYSTEM_PART, _keyset(system, filters)[1]))
    statement = union_all(*(select(part) for part in parts)).order_by(
        literal_column("part"), literal_column("pos")
    )
    # from_statement maps the rows onto Voice directly (an aliased() entity over the
    # union would cost more to build than the query takes to run).
    found = db.session.scalars(select(Voice).from_statement(statement)).all()
    voices = [v for v in found if not v.is_system]
    system_voices = [v for v in found if v.is_system]
    if filters.order is Order.BEST:
        return CustomPage(
            voices[:BEST_MATCHES], truncated=len(voices) > BEST_MATCHES, system=system_voices
        )
    if len(voices) <= PAGE_SIZE:
        return CustomPage(voices, after=after, system=system_voices)
    return CustomPage(
        voices[:PAGE_SIZE],
        after=after,
        next_cursor=encode_cursor(filters.order, voices[PAGE_SIZE - 1]),
        system=system_voices,
    )


_CUSTOM_PART, _SYSTEM_PART = 0, 1


@dataclass(frozen=True, slots=True)
class VisiblePage:
    """One page of every voice the org may use, by name, and the next page's cursor."""

    voices: Sequence[Voice]
    next_cursor: str | None = None


def visible_voices_page(
    filters: LibraryFilters, after: Cursor | None = None, limit: int = PAGE_SIZE
) -> VisiblePage:
    """Return the system voices and the org in scope's own in one list by (name, id).

    The public API's list (one statement): search, category and language narrow it
    as in the library, and the order is always by name, so every page continues by
    keyset. The tenant filter admits the org's own voices and the system voices.
    """
    named = dataclasses.replace(filters, sort=Order.NAME.value)
    stmt, order = _keyset(_filtered(select(Voice), named), named, after)
    voices = db.session.scalars(stmt.order_by(*order).limit(limit + 1)).all()
    if len(voices) <= limit:
        return VisiblePage(voices)
    return VisiblePage(voices[:limit], encode_cursor(Order.NAME, voices[limit - 1]))


def library(org_id: uuid.UUID, filters: LibraryFilters, page: CustomPage) -> Library:
    """Return the rest of the library page around `page` (one query).

    `page` brings the system voices (`custom_voices_page(..., with_system=True)`); the
    languages in use in the library and, when `page` isn't the whole list, the custom
    voices' capped count come in one statement.
    """
    whole_list = page.after is None and page.next_cursor is None and not page.truncated
    custom_languages = _languages_in_use()
    system_languages = (
        select(Voice.language.label("language")).where(Voice.org_id.is_(None)).distinct()
    ).subquery()
    no_count = literal(None, Integer).label("n")
    parts: list[Select[Any]] = [
        select(custom_languages.c.value.label("language"), no_count).where(
            custom_languages.c.value.is_not(None)
        ),
        select(system_languages.c.language, no_count),
    ]
    if not whole_list:
        # Ids only, and no variant test (an org's voices are all custom: the CHECK
        # constraint `variant_matches_org`), so an index answers it without the table.
        ids = _filtered(select(Voice.id).where(Voice.org_id == org_id), filters)
        capped = ids.limit(COUNT_CAP + 1).subquery()
        parts.append(
            select(literal(None, String).label("language"), func.count().label("n")).select_from(
                capped
            )
        )
    statement = union_all(*parts)
    rows = db.session.execute(statement, {"languages_org": org_id}).all()
    if whole_list:
        total, is_capped = len(page.voices), False  # the whole list is on this page
    else:
        n = next(row.n for row in rows if row.n is not None)
        total, is_capped = min(n, COUNT_CAP), n > COUNT_CAP
    tags = {row.language for row in rows if row.language is not None}
    return Library(
        system=page.system,
        custom_total=total,
        custom_total_capped=is_capped,
        languages=_language_choices(tags, filters.language),
    )


@functools.cache
def _languages_in_use() -> CTE:
    """Return the languages of one org's custom voices (`database.loose_scan`).

    One step per language on the (org_id, language) index, however many voices. The
    org is the bound parameter `languages_org`.
    """
    org = bindparam("languages_org", type_=Voice.org_id.type)
    return loose_scan(Voice, "language", lambda row: (row.org_id == org,), "languages_in_use")


def _language_choices(tags: set[str], selected: str | None) -> list[tuple[str, str]]:
    if selected:
        tags = tags | {selected}
    return sorted(((tag, language_label(tag)) for tag in tags), key=lambda c: (c[1], c[0]))
