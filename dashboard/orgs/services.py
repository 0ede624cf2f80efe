"""Write organisations: their address (slug) and creating one with its first owner.

Functions flush; the caller (the request or the CLI command) commits.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select

from dashboard import tenancy
from dashboard.auth.services import AccountError
from dashboard.extensions import db
from dashboard.members.services import add_member
from dashboard.models import MemberRole, Organization, User

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset({"new", "admin", "api", "static", "login", "logout", "signup"})


def slugify(name: str) -> str:
    """Turn an organisation name into a URL slug ("Acme Audio, Ltd." → "acme-audio-ltd")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")
    return slug if len(slug) >= 2 else f"org-{slug}".strip("-")


def slug_problem(slug: str) -> str | None:
    """Return why `slug` can't be used, or None."""
    if not SLUG_RE.match(slug):
        return "Use 2–63 lower-case letters, digits and hyphens (not at either end)."
    if slug in RESERVED_SLUGS:
        return "That address is reserved."
    if db.session.scalar(select(Organization.id).where(Organization.slug == slug)):
        return "That address is taken."
    return None


def unique_slug(name: str) -> str:
    """Return a free slug derived from `name`, adding -2, -3… when needed."""
    base = slugify(name)
    candidate, n = base, 1
    while slug_problem(candidate) is not None:
        n += 1
        candidate = f"{base[:58]}-{n}"
    return candidate


def create_org(name: str, owner: User | None = None, slug: str | None = None) -> Organization:
    """Create an organisation (and make `owner` its owner)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("An organisation name needs 1–100 characters.")
    if slug is None:
        slug = unique_slug(name)
    elif problem := slug_problem(slug):
        raise AccountError(problem)
    org = Organization(name=name, slug=slug)
    db.session.add(org)
    db.session.flush()
    if owner is not None:
        with tenancy.org_scope(org.id, owner.id):
            add_member(org, owner, MemberRole.OWNER)
    return org
