"""Voices: the 20 shared system voices and each organisation's custom voices."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, TimestampMixin, new_id
from dashboard.models.enums import VoiceCategory, VoiceVariant, db_enum

NAME_MAX = 100
DESCRIPTION_MAX = 500
DEFAULT_LANGUAGE = "en-US"


class Voice(TimestampMixin, Base):
    """A voice people can generate speech with; its reference audio lives in storage."""

    __tablename__ = "voices"
    __table_args__ = (
        # The tenancy rule itself: system voices belong to nobody, custom ones to one org.
        CheckConstraint(
            "(variant = 'SYSTEM' AND org_id IS NULL) "
            "OR (variant = 'CUSTOM' AND org_id IS NOT NULL)",
            name="variant_matches_org",
        ),
        CheckConstraint(f"length(name) BETWEEN 1 AND {NAME_MAX}", name="name_length"),
        CheckConstraint(
            f"description IS NULL OR length(description) <= {DESCRIPTION_MAX}",
            name="description_length",
        ),
        CheckConstraint("length(language) BETWEEN 2 AND 35", name="language_length"),
        CheckConstraint("audio_size IS NULL OR audio_size >= 0", name="audio_size_positive"),
        CheckConstraint(
            "audio_duration_ms IS NULL OR audio_duration_ms >= 0", name="audio_duration_positive"
        ),
        # One name per org for custom voices; its index also serves "voices of org X"
        # lookups (org_id leads), which is why there is no separate org_id index.
        UniqueConstraint("org_id", "name"),
        # NULL org_ids never collide in a UNIQUE, so system names need a partial index.
        Index(
            "uq_voices_system_name",
            "name",
            unique=True,
            sqlite_where=text("org_id IS NULL"),
            postgresql_where=text("org_id IS NULL"),
        ),
        Index("ix_voices_variant", "variant"),
        # Keyset paging of an org's library by "newest" walks this index backwards;
        # "name" paging uses the unique (org_id, name) index above.
        Index("ix_voices_org_id_created_at_id", "org_id", "created_at", "id"),
        # The library's language filter lists the languages in use by a loose scan of
        # this index: one step per language, not one per voice.
        Index("ix_voices_org_id_language", "org_id", "language"),
        # Typo-tolerant search (pg_trgm, migration 0004). Declared here so `flask db
        # check` sees no drift; SQLite ignores the PostgreSQL options and gets plain
        # B-tree indexes, which its substring search doesn't use but which are cheap.
        Index(
            "ix_voices_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_voices_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    category: Mapped[VoiceCategory] = mapped_column(
        db_enum(VoiceCategory, "voice_category"),
        default=VoiceCategory.GENERAL,
        server_default=VoiceCategory.GENERAL.value,
    )
    language: Mapped[str] = mapped_column(
        String(35), default=DEFAULT_LANGUAGE, server_default=DEFAULT_LANGUAGE
    )
    variant: Mapped[VoiceVariant] = mapped_column(db_enum(VoiceVariant, "voice_variant"))
    # Reference audio: the key is always built by the server (see storage.py); the
    # rest describes the stored object so pages and ETags need no storage round trip.
    audio_key: Mapped[str | None] = mapped_column(String(1024))
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    audio_size: Mapped[int | None] = mapped_column(BigInteger)
    audio_duration_ms: Mapped[int | None]
    audio_content_type: Mapped[str | None] = mapped_column(String(100))

    @property
    def is_system(self) -> bool:
        """Tell whether this is a shared, read-only system voice."""
        return self.variant is VoiceVariant.SYSTEM

    def __repr__(self) -> str:
        return f"<Voice {self.variant} {self.name}>"
