"""Enumerations stored as short strings with CHECK constraints on every database."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Enum


class VoiceVariant(enum.StrEnum):
    """Whether a voice ships with Voxboard or belongs to one organisation."""

    SYSTEM = "SYSTEM"
    CUSTOM = "CUSTOM"


class VoiceCategory(enum.StrEnum):
    """The twelve voice categories of the reference product."""

    AUDIOBOOK = "AUDIOBOOK"
    CONVERSATIONAL = "CONVERSATIONAL"
    CUSTOMER_SERVICE = "CUSTOMER_SERVICE"
    GENERAL = "GENERAL"
    NARRATIVE = "NARRATIVE"
    CHARACTERS = "CHARACTERS"
    MEDITATION = "MEDITATION"
    MOTIVATIONAL = "MOTIVATIONAL"
    PODCAST = "PODCAST"
    ADVERTISING = "ADVERTISING"
    VOICEOVER = "VOICEOVER"
    CORPORATE = "CORPORATE"

    @property
    def label(self) -> str:
        """Return the name people read, e.g. "Customer service"."""
        return self.value.replace("_", " ").capitalize()


class MemberRole(enum.StrEnum):
    """A member's role in an organisation, from most to least powerful."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class GenerationStatus(enum.StrEnum):
    """Where a generation is in its life; the row is the source of truth for jobs."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def db_enum(enum_cls: type[enum.Enum], name: str) -> Any:
    """Map `enum_cls` to a VARCHAR with a named CHECK constraint (no PostgreSQL ENUM type).

    A CHECK keeps the rule in the database on SQLite and PostgreSQL alike, and adding
    a value later is a plain constraint swap instead of `ALTER TYPE` gymnastics.
    """
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),  # type: ignore[attr-defined]
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )
