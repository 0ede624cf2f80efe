"""Generations: one text turned into speech with one voice and four parameters."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, TimestampMixin, UTCDateTime, new_id
from dashboard.models.enums import GenerationStatus, db_enum

TEXT_MAX = 5000

# (low, high, default) for each sampling parameter, from the reference product.
TEMPERATURE = (0.0, 2.0, 0.8)
TOP_P = (0.0, 1.0, 0.95)
TOP_K = (1, 10000, 1000)
REPETITION_PENALTY = (1.0, 2.0, 1.2)


def _between(column: str, bounds: tuple[float, float, float]) -> CheckConstraint:
    low, high, _ = bounds
    return CheckConstraint(f"{column} >= {low} AND {column} <= {high}", name=f"{column}_range")


class Generation(TimestampMixin, Base):
    """A request to speak `text` in a voice, and (once done) the audio it produced."""

    __tablename__ = "generations"
    __table_args__ = (
        _between("temperature", TEMPERATURE),
        _between("top_p", TOP_P),
        _between("top_k", TOP_K),
        _between("repetition_penalty", REPETITION_PENALTY),
        CheckConstraint(f"length(text) BETWEEN 1 AND {TEXT_MAX}", name="text_length"),
        # Text is stored trimmed; both databases' trim() strip spaces at least.
        CheckConstraint("text = trim(text)", name="text_trimmed"),
        CheckConstraint("character_count = length(text)", name="character_count_matches"),
        CheckConstraint("length(voice_name) BETWEEN 1 AND 100", name="voice_name_length"),
        CheckConstraint("duration_ms IS NULL OR duration_ms >= 0", name="duration_positive"),
        CheckConstraint("audio_size IS NULL OR audio_size >= 0", name="audio_size_positive"),
        CheckConstraint(
            "status <> 'succeeded' OR audio_key IS NOT NULL", name="succeeded_has_audio"
        ),
        CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failed_has_error"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        Index("ix_generations_created_by", "created_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    voice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("voices.id", ondelete="SET NULL"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The API key that submitted it (NULL from the dashboard). No foreign key: a key is
    # revoked, never deleted, while its org lives.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    text: Mapped[str] = mapped_column(Text)
    # Snapshot of the voice's name: history stays readable after the voice is deleted.
    voice_name: Mapped[str] = mapped_column(String(100))
    temperature: Mapped[float] = mapped_column(default=TEMPERATURE[2])
    top_p: Mapped[float] = mapped_column(default=TOP_P[2])
    top_k: Mapped[int] = mapped_column(default=TOP_K[2])
    repetition_penalty: Mapped[float] = mapped_column(default=REPETITION_PENALTY[2])
    status: Mapped[GenerationStatus] = mapped_column(
        db_enum(GenerationStatus, "generation_status"),
        default=GenerationStatus.QUEUED,
        server_default=GenerationStatus.QUEUED.value,
    )
    error: Mapped[str | None] = mapped_column(Text)
    character_count: Mapped[int]
    duration_ms: Mapped[int | None]
    engine: Mapped[str | None] = mapped_column(String(64))
    audio_key: Mapped[str | None] = mapped_column(String(1024))
    audio_size: Mapped[int | None] = mapped_column(BigInteger)
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    # Waveform for the player: PEAK_COUNT loudness peaks (0–100), computed once when
    # the audio is written, so pages never decode audio.
    peaks: Mapped[list[int] | None] = mapped_column(JSON)
    # How many times a worker has started on it (the job's retry budget counts these).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Generation {self.id} {self.status}>"


# History pages walk this index by keyset (newest first); it also serves every
# "generations of org X" lookup, so org_id needs no index of its own.
Index(
    "ix_generations_org_created",
    Generation.org_id,
    Generation.created_at.desc(),
    Generation.id.desc(),
)
# History filtered by voice (voice_id leads, so it also serves ON DELETE SET NULL when a
# voice is deleted; org_id second, since system voices are shared by every org).
Index(
    "ix_generations_voice_org_created",
    Generation.voice_id,
    Generation.org_id,
    Generation.created_at.desc(),
    Generation.id.desc(),
)
# History filtered by status.
Index(
    "ix_generations_org_status_created",
    Generation.org_id,
    Generation.status,
    Generation.created_at.desc(),
    Generation.id.desc(),
)
# History filtered by a deleted voice: only its snapshot name is left.
Index(
    "ix_generations_org_deleted_voice",
    Generation.org_id,
    Generation.voice_name,
    Generation.created_at.desc(),
    Generation.id.desc(),
    sqlite_where=text("voice_id IS NULL"),
    postgresql_where=text("voice_id IS NULL"),
)
# The reaper's scan across organisations: only unfinished rows are in it, so it stays
# tiny however long the history grows.
Index(
    "ix_generations_unfinished",
    Generation.status,
    Generation.updated_at,
    sqlite_where=text("status IN ('queued', 'running')"),
    postgresql_where=text("status IN ('queued', 'running')"),
)
# No text index: under row-level security PostgreSQL may not use one for ILIKE (not a
# leakproof operator), so history searches bounded keyset windows of the index above
# instead (dashboard/history/queries.py, SEARCH_WINDOW).
