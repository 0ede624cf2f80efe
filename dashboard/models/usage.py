"""The usage ledger: what was generated is what is billed, whatever is deleted later."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, UTCDateTime, new_id, utcnow
from dashboard.models.enums import db_enum


class UsageSource(enum.StrEnum):
    """Where a submission came from: a person in the dashboard, or the public API."""

    WEB = "web"
    API = "api"


class UsageKind(enum.StrEnum):
    """A charge when a generation is accepted; a refund when it finally fails."""

    CHARGE = "charge"
    REFUND = "refund"


class UsageEntry(Base):
    """One append-only line of an organisation's usage: characters charged or refunded.

    Written in the same transaction as the change it records (a submission, a retry, a
    final failure) and never updated or deleted: the web role may only SELECT and
    INSERT here (`flask rls grant`). No foreign key to the generation or the user, so
    deleting either leaves the line, and the month's sum, as it was. `counted_at` is
    the month a line counts in: a refund carries its charge's time, so a generation
    charged on 31 March that fails on 1 April gives March its characters back.
    """

    __tablename__ = "usage_ledger"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'charge' AND characters > 0) OR (kind = 'refund' AND characters < 0)",
            name="sign_matches_kind",
        ),
        Index("ix_usage_ledger_org_id_counted_at", "org_id", "counted_at"),
        # A key's month, for its own monthly character limit.
        Index("ix_usage_ledger_api_key_id_counted_at", "api_key_id", "counted_at"),
        # `flask rls grant` gives the web role SELECT and INSERT here, nothing more.
        {"info": {"append_only": True}},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    generation_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    # The API key that submitted it (source `api`); no foreign key, like the others.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    source: Mapped[UsageSource] = mapped_column(db_enum(UsageSource, "usage_source"))
    kind: Mapped[UsageKind] = mapped_column(db_enum(UsageKind, "usage_kind"))
    characters: Mapped[int] = mapped_column(Integer())
    counted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
