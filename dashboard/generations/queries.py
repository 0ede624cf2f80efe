"""Read what the generation pages need: the voice picker, the quota rule and usage, a detail."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from flask import abort
from sqlalchemy import select, union_all

from dashboard.extensions import db
from dashboard.formatting import relative_time
from dashboard.generations import ledger
from dashboard.generations.forms import PARAMETERS, Parameter
from dashboard.models import (
    Generation,
    Organization,
    User,
    Voice,
    VoiceVariant,
    utcnow,
)

# The picker lists this many of the org's own voices (newest first) plus every system
# voice; a bigger library is searched in the voice library ("Use this voice").
PICKER_CUSTOM_LIMIT = 500


@dataclass(frozen=True, slots=True)
class VoiceChoices:
    """The picker's two groups, each in name order."""

    custom: list[Voice]
    system: list[Voice]
    custom_truncated: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """Characters used this calendar month (UTC) against the org's limit."""

    used: int
    limit: int | None
    resets_on: dt.date

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if self.limit == 0 else 0
        return min(100, round(100 * self.used / self.limit))


def voice_choices(org_id: uuid.UUID, selected: uuid.UUID | None = None) -> VoiceChoices:
    """Return the voices to pick from; a `selected` voice beyond the limit is kept.

    One statement for the org's newest custom voices and the system voices (a
    `UNION ALL`, each part in its own subquery so the limit binds only the custom
    part); a second only for a selected voice the limit left out.
    """
    custom_part = (
        select(Voice)
        .where(Voice.org_id == org_id, Voice.variant == VoiceVariant.CUSTOM)
        .order_by(Voice.created_at.desc(), Voice.id.desc())
        .limit(PICKER_CUSTOM_LIMIT + 1)
        .subquery()
    )
    system_part = select(Voice).where(Voice.variant == VoiceVariant.SYSTEM).subquery()
    voices = db.session.scalars(
        select(Voice).from_statement(union_all(select(custom_part), select(system_part)))
    ).all()
    custom = sorted(
        (v for v in voices if not v.is_system), key=lambda v: (v.created_at, v.id), reverse=True
    )
    system = sorted((v for v in voices if v.is_system), key=lambda v: v.name.casefold())
    truncated = len(custom) > PICKER_CUSTOM_LIMIT
    custom = custom[:PICKER_CUSTOM_LIMIT]
    if selected and truncated and all(v.id != selected for v in custom):
        extra = visible_voice(selected)
        if extra is not None and not extra.is_system:
            custom.append(extra)
    custom.sort(key=lambda v: v.name.casefold())
    return VoiceChoices(custom, system, truncated)


def visible_voice(voice_id: uuid.UUID) -> Voice | None:
    """Return the voice if the org in scope may use it (its own or a system voice)."""
    return db.session.scalars(select(Voice).where(Voice.id == voice_id)).one_or_none()


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    """Return the first instant of the current calendar month, UTC."""
    now = (now or utcnow()).astimezone(dt.UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: dt.datetime) -> dt.date:
    return (start + dt.timedelta(days=32)).replace(day=1).date()


def usage(org: Organization, now: dt.datetime | None = None) -> Usage:
    """Return the org's usage this month (one query)."""
    start = month_start(now)
    return Usage(
        ledger.characters_used(org.id, start), org.monthly_character_limit, next_month(start)
    )


# ------------------------------------------------------------------ one generation


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """One sampling parameter as the page shows it: the slider's label and the value used."""

    parameter: Parameter
    value: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class GenerationDetail:
    """A generation with what its page shows beside it."""

    generation: Generation
    voice: Voice | None  # None once the voice is deleted: only the snapshot name is left
    creator: User | None  # None once the account is deleted
    parameters: list[ParameterValue]
    created_ago: str


def parameters_of(generation: Generation) -> list[ParameterValue]:
    """Return the four parameters with the generate form's labels and formatted values."""
    values = []
    for parameter in PARAMETERS:
        value = getattr(generation, parameter.name)
        shown = f"{int(value):,}" if parameter.integer else f"{value:.2f}"
        values.append(ParameterValue(parameter, shown, value == parameter.default))
    return values


def load_detail(generation_id: uuid.UUID) -> GenerationDetail:
    """Load the generation (404 unless the org in scope owns it), its voice and creator.

    One statement: the voice and the creator are outer-joined, so a deleted voice or
    account is simply None. Both walls still apply to the voice (the tenant filter puts
    its criteria in the join's ON clause; row-level security hides other orgs' rows).
    """
    try:
        generation_id = uuid.UUID(str(generation_id))
    except ValueError:
        abort(404)
    row = db.session.execute(
        select(Generation, Voice, User)
        .outerjoin(Voice, Voice.id == Generation.voice_id)
        .outerjoin(User, User.id == Generation.created_by)
        .where(Generation.id == generation_id)
    ).one_or_none()
    if row is None:
        abort(404)
    generation, voice, creator = row
    return GenerationDetail(
        generation, voice, creator, parameters_of(generation), relative_time(generation.created_at)
    )
