"""Read what the generation page needs: the voice picker and the month's usage."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, union_all

from dashboard.extensions import db
from dashboard.models import Generation, GenerationStatus, Organization, Voice, VoiceVariant, utcnow

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


def characters_used(org_id: uuid.UUID, since: dt.datetime) -> int:
    """Sum the characters of the org's generations since `since`; failed ones are free.

    One range scan of the history index over the month's rows.
    """
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Generation.character_count), 0)).where(
                Generation.org_id == org_id,
                Generation.created_at >= since,
                Generation.status != GenerationStatus.FAILED,
            )
        )
        or 0
    )


def usage(org: Organization, now: dt.datetime | None = None) -> Usage:
    """Return the org's usage this month (one query)."""
    start = month_start(now)
    return Usage(characters_used(org.id, start), org.monthly_character_limit, next_month(start))
