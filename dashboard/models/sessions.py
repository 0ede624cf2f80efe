"""Login sessions: the server's half of every session cookie."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.models.base import Base, UTCDateTime, new_id, utcnow


class UserSession(Base):
    """One logged-in browser of a user; deleting the row logs that browser out.

    The cookie carries the row's id and a random secret; only the secret's SHA-256 is
    stored, so a copy of the database does not hand out logins. See
    `dashboard/auth/login_sessions.py` for the whole protocol.
    """

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    # Moved forward at most once a minute (`login_sessions.TOUCH_INTERVAL`).
    last_seen_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    # What the browser said when it logged in, for an operator reading the table.
    user_agent: Mapped[str | None] = mapped_column(String(200))
    ip_address: Mapped[str | None] = mapped_column(String(45))
