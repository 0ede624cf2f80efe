"""Daily analytics snapshots: one row per organisation per UTC day."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, TimestampMixin, new_id


class AnalyticsSnapshot(TimestampMixin, Base):
    """What one organisation did on one UTC day, computed once by `flask analytics snapshot`.

    Past days are read only from here, so the analytics page's cost follows the number
    of days shown, not the number of generations. Breakdowns are JSON objects:

    - `by_voice`: key = voice id, or `deleted:<snapshot name>` once the voice is gone;
      value = {"name", "variant", "generations", "characters", "audio_ms"}
    - `by_category`: key = category value (or "DELETED"); value = {"generations",
      "characters", "audio_ms"}
    - `by_member`: key = user id (or "former"); value = {"name", "generations",
      "characters", "audio_ms"}
    - `by_source`: key = "web" (the dashboard) or an API key's id; value = {"name",
      "kind" ("web" | "api"), "submissions", "characters"}: the day's usage-ledger
      lines (charges less refunds), which add up to `characters_billed`

    Counts of generations are of succeeded ones unless named `failed`; `characters` and
    audio are of succeeded generations. `characters_billed` is what the quota counts:
    every accepted submission, less the ones that finally failed, by the day it was
    charged, whether or not the generation still exists.
    """

    __tablename__ = "analytics_snapshots"
    __table_args__ = (
        UniqueConstraint("org_id", "day"),
        CheckConstraint(
            "generations_succeeded >= 0 AND generations_failed >= 0 AND characters >= 0 "
            "AND audio_ms >= 0 AND voices_used >= 0 AND custom_voices >= 0 AND members >= 0",
            name="counts_positive",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    generations_succeeded: Mapped[int] = mapped_column(default=0)
    generations_failed: Mapped[int] = mapped_column(default=0)
    characters: Mapped[int] = mapped_column(BigInteger, default=0)
    audio_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # Distinct voices with at least one succeeded generation that day.
    voices_used: Mapped[int] = mapped_column(default=0)
    # At the end of the day (UTC): the org's custom voices and members.
    custom_voices: Mapped[int] = mapped_column(default=0)
    members: Mapped[int] = mapped_column(default=0)
    by_voice: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    by_category: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    by_member: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The day's usage-ledger lines added up (charges less refunds): what the quota counts.
    characters_billed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    by_source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    def __repr__(self) -> str:
        return f"<AnalyticsSnapshot {self.org_id} {self.day}>"
