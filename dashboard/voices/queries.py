"""Read voices."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select

from dashboard.extensions import db
from dashboard.models import Voice, VoiceVariant


def system_voices() -> Select[tuple[Voice]]:
    """Select the shared system voices, alphabetically."""
    return select(Voice).where(Voice.variant == VoiceVariant.SYSTEM).order_by(Voice.name)


def get_system_voice(voice_id: uuid.UUID) -> Voice | None:
    """Return the system voice with `voice_id`, or None (custom voices never match)."""
    return db.session.scalars(
        system_voices().where(Voice.id == voice_id).order_by(None)
    ).one_or_none()
