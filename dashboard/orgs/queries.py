"""Read organisations: an org's overview, a user's organisations, and (for operators) all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ScalarSelect, Select, func, select

from dashboard import tenancy
from dashboard.extensions import db
from dashboard.models import (
    Generation,
    MemberRole,
    Membership,
    Organization,
    User,
    Voice,
    VoiceVariant,
)

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


def overview(org_id: uuid.UUID) -> Overview:
    """Return the organisation's overview: every count in one statement.

    Each count is a scalar subquery naming the org (the generations one capped at
    COUNT_CAP), so the home page pays one round trip whatever the org's size.
    """

    def count_of(stmt: Select) -> ScalarSelect:
        return select(func.count()).select_from(stmt.subquery()).scalar_subquery()

    custom = select(Voice.id).where(Voice.org_id == org_id, Voice.variant == VoiceVariant.CUSTOM)
    system = select(Voice.id).where(Voice.org_id.is_(None), Voice.variant == VoiceVariant.SYSTEM)
    generations = select(Generation.id).where(Generation.org_id == org_id).limit(COUNT_CAP + 1)
    members = select(Membership.id).where(Membership.org_id == org_id)
    row = db.session.execute(
        select(
            count_of(custom).label("custom"),
            count_of(system).label("system"),
            count_of(generations).label("generations"),
            count_of(members).label("members"),
        )
    ).one()
    return Overview(
        custom_voices=row.custom,
        system_voices=row.system,
        generations=min(row.generations, COUNT_CAP),
        generations_capped=row.generations > COUNT_CAP,
        members=row.members,
    )


def orgs_of(user: User) -> list[tuple[Organization, MemberRole]]:
    """Return every organisation `user` belongs to, with their role, by name."""
    with tenancy.all_tenants("a user's own memberships span organisations"):
        rows = db.session.execute(
            select(Organization, Membership.role)
            .join(Membership, Membership.org_id == Organization.id)
            .where(Membership.user_id == user.id)
            .order_by(func.lower(Organization.name))
        ).all()
    return [(org, role) for org, role in rows]


# The operator commands call these inside `tenancy.all_tenants(...)`: they span organisations.


def find_org(slug: str) -> Organization | None:
    """Return the organisation with `slug` (any case), or None."""
    return db.session.scalars(
        select(Organization).where(Organization.slug == slug.strip().lower())
    ).one_or_none()


def list_orgs() -> list[tuple[Organization, int]]:
    """Return every organisation with its number of members, by name."""
    rows = db.session.execute(
        select(Organization, func.count(Membership.id))
        .outerjoin(Membership, Membership.org_id == Organization.id)
        .group_by(Organization.id)
        .order_by(func.lower(Organization.name), Organization.slug)
    ).all()
    return [(org, members) for org, members in rows]
