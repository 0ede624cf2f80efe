"""Read organisation overviews."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Generation, Membership, Voice, VoiceVariant

# Counting every generation of a big org costs a full index scan; past this many the
# home page says "10,000+" instead, and the cost stays constant.
COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class Overview:
    """The figures on an organisation's home page."""

    custom_voices: int
    system_voices: int
    generations: int
    generations_capped: bool
    members: int


def capped_count(stmt, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """Count the rows of `stmt` up to `cap`; return (count, whether it hit the cap)."""
    n = db.session.scalar(select(func.count()).select_from(stmt.limit(cap + 1).subquery()))
    return min(n, cap), n > cap


def overview() -> Overview:
    """Return the current organisation's overview (the tenant filter scopes each count)."""
    voices = dict(
        db.session.execute(select(Voice.variant, func.count()).group_by(Voice.variant)).all()
    )
    generations, capped = capped_count(select(Generation.id))
    members = db.session.scalar(select(func.count()).select_from(Membership))
    return Overview(
        custom_voices=voices.get(VoiceVariant.CUSTOM, 0),
        system_voices=voices.get(VoiceVariant.SYSTEM, 0),
        generations=generations,
        generations_capped=capped,
        members=members,
    )
