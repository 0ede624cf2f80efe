"""Organisations (tenants), users and the memberships that join them."""

from __future__ import annotations

import datetime as dt
import uuid

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from dashboard.models.base import Base, TimestampMixin, UTCDateTime, new_id
from dashboard.models.enums import MemberRole, db_enum


class Organization(TimestampMixin, Base):
    """A tenant: owns custom voices, generations and members."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("length(slug) BETWEEN 2 AND 63", name="slug_length"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        CheckConstraint(
            "monthly_character_limit IS NULL OR monthly_character_limit >= 0",
            name="monthly_character_limit_positive",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Characters the org may generate per calendar month (UTC); NULL: unlimited.
    monthly_character_limit: Mapped[int | None]
    # Bumped whenever the org's analytics snapshots change (`upsert_snapshots`): part of
    # the analytics page's cache key, so a cached past period is never served stale.
    analytics_revision: Mapped[int] = mapped_column(default=0, server_default="0")

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="org", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class User(UserMixin, TimestampMixin, Base):
    """A person who can log in; belongs to organisations through memberships."""

    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored lower-cased, so a plain UNIQUE is case-insensitive uniqueness
        # on every database (no expression index that SQLite reflection can't compare).
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("length(email) BETWEEN 3 AND 254", name="email_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    # Set by `flask users disable`: no login, and every session was ended then.
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("email")
    def _normalise_email(self, _key: str, value: str) -> str:
        return normalise_email(value)

    # Flask-Login's id for the session this object was loaded through (or just started):
    # "<user id>:<session id>:<secret>". Not a column; set by `dashboard.auth.login_sessions`.
    login_id = None

    def get_id(self) -> str:
        """Return the id Flask-Login keeps in the cookie: the server-side session's."""
        if self.login_id is None:
            raise RuntimeError("no login session: start one with login_sessions.start()")
        return self.login_id

    @property
    def is_active(self) -> bool:
        """Tell Flask-Login whether this user may be logged in (not disabled)."""
        return self.disabled_at is None

    # UserMixin compares `get_id()`, which names a session now: a user is its row.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<User {self.email}>"


def normalise_email(value: str) -> str:
    """Return the canonical form of an email address (trimmed, lower-case)."""
    return value.strip().lower()


class Membership(TimestampMixin, Base):
    """A user's role in one organisation."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "org_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[MemberRole] = mapped_column(
        db_enum(MemberRole, "member_role"), default=MemberRole.MEMBER
    )

    user: Mapped[User] = relationship(back_populates="memberships")
    org: Mapped[Organization] = relationship(back_populates="memberships")


class Invitation(TimestampMixin, Base):
    """A single-use link that makes whoever accepts it a member of `org` with `role`.

    Only a SHA-256 of the token is stored: the link is shown once to the inviter and a
    database leak does not let anyone join an organisation.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("length(email) BETWEEN 3 AND 254", name="email_length"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        Index("ix_invitations_org_id", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[MemberRole] = mapped_column(
        db_enum(MemberRole, "member_role"), default=MemberRole.MEMBER
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    org: Mapped[Organization] = relationship()

    @validates("email")
    def _normalise_email(self, _key: str, value: str) -> str:
        return normalise_email(value)
