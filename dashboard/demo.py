"""The demo organisation that `flask seed --demo` creates, with documented logins.

Development only: the passwords are published in the README and printed by the seed,
so the command refuses to run in production. Later issues add the demo's history and
snapshots to `seed_demo`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from dashboard.consistency import new_objects_removed_on_error
from dashboard.extensions import db
from dashboard.models import MemberRole, Organization, Voice, VoiceCategory, VoiceVariant
from dashboard.orgs.services import (
    AccountError,
    add_member,
    create_org,
    create_user,
    find_org,
    find_user,
    role_in,
)
from dashboard.passwords import verify_password
from dashboard.storage import Storage, get_storage
from dashboard.tts import Engine, VoiceRef, get_engine, sample_text
from dashboard.voices import services as voice_services

DEMO_ORG_NAME = "Demo Studio"
DEMO_ORG_SLUG = "demo"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A demo login as the README documents it."""

    role: MemberRole
    email: str
    display_name: str
    password: str


DEMO_ACCOUNTS = (
    DemoAccount(MemberRole.OWNER, "owner@demo.voxboard.test", "Demo Owner", "demo-owner-2026"),
    DemoAccount(MemberRole.ADMIN, "admin@demo.voxboard.test", "Demo Admin", "demo-admin-2026"),
    DemoAccount(MemberRole.MEMBER, "member@demo.voxboard.test", "Demo Member", "demo-member-2026"),
)


@dataclass(frozen=True, slots=True)
class DemoVoice:
    """A custom voice of the demo organisation; its reference audio is synthesised."""

    name: str
    category: VoiceCategory
    language: str
    description: str


DEMO_VOICES = (
    DemoVoice(
        "Studio Narrator",
        VoiceCategory.NARRATIVE,
        "en-GB",
        "The studio's house narrator: unhurried and warm, for audiobooks and documentaries.",
    ),
    DemoVoice(
        "Help Desk",
        VoiceCategory.CUSTOMER_SERVICE,
        "en-US",
        "Patient and clear, recorded for the support line's menus and call-backs.",
    ),
    DemoVoice(
        "Morning Show",
        VoiceCategory.PODCAST,
        "en-AU",
        "Bright and chatty co-host for the weekly podcast's intros and sponsor reads.",
    ),
)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """What one demo account looks like after the seed."""

    account: DemoAccount
    role: MemberRole  # the role it has now (someone may have changed it since)
    created: bool
    joined: bool  # (re-)added to the demo organisation by this run
    password_works: bool  # False: changed since it was seeded, and left alone


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What `seed_demo` found and did."""

    org_name: str
    org_slug: str
    org_created: bool
    logins: tuple[DemoLogin, ...]
    voices_created: tuple[str, ...] = ()  # custom voices (with audio) added by this run

    @property
    def changed(self) -> bool:
        return (
            self.org_created
            or bool(self.voices_created)
            or any(login.created or login.joined for login in self.logins)
        )


def seed_demo(
    storage: Storage | None = None,
    engine: Engine | None = None,
    new_keys: list[str] | None = None,
) -> DemoReport:
    """Create whatever is missing of the demo organisation, its logins and voices; flush only.

    Never overwrites what a person changed since (a password, a role, a voice they
    edited): the report says so instead. Runs inside `tenancy.all_tenants`, since
    memberships and voices are tenant rows. Audio objects are written before their
    rows; a flush that fails removes them, and their keys are appended to `new_keys`
    so a caller can remove them too when its commit fails.
    """
    org = find_org(DEMO_ORG_SLUG)
    org_created = org is None
    if org is None:
        org = create_org(DEMO_ORG_NAME, slug=DEMO_ORG_SLUG)
    else:
        _refuse_foreign_org(org)
    logins = tuple(_ensure_login(org, account) for account in DEMO_ACCOUNTS)
    voices = _ensure_voices(
        org, DEMO_VOICES, storage or get_storage(), engine, new_keys if new_keys is not None else []
    )
    return DemoReport(org.name, org.slug, org_created, logins, voices)


def _ensure_voices(
    org: Organization,
    wanted: Sequence[DemoVoice],
    storage: Storage,
    engine: Engine | None,
    new_keys: list[str],
) -> tuple[str, ...]:
    """Add the demo voices the organisation has no voice of that name for."""
    existing = set(
        db.session.scalars(
            select(Voice.name).where(Voice.org_id == org.id, Voice.variant == VoiceVariant.CUSTOM)
        )
    )
    missing = [demo for demo in wanted if demo.name not in existing]
    if not missing:
        return ()
    engine = engine or get_engine("espeak")
    max_bytes = int(current_app.config["VOICE_UPLOAD_MAX_BYTES"])
    with new_objects_removed_on_error(storage) as written:
        for demo in missing:
            audio = voice_services.check_reference_audio(
                io.BytesIO(_reference_audio(engine, demo)), max_bytes
            )
            fields = voice_services.CustomVoiceFields(
                demo.name, demo.description, demo.category, demo.language
            )
            voice_services.create_custom_voice(storage, org.id, fields, audio, written)
        db.session.flush()
    new_keys.extend(written)
    return tuple(demo.name for demo in missing)


def _reference_audio(engine: Engine, demo: DemoVoice) -> bytes:
    """Speak the language's sample and the voice's own description: over the 10 s minimum."""
    text = f"{sample_text(demo.language)} {demo.description}"
    voice = VoiceRef(name=demo.name, language=demo.language, variant=VoiceVariant.CUSTOM.value)
    return engine.synthesize(text, voice).wav


def _ensure_login(org: Organization, account: DemoAccount) -> DemoLogin:
    user = find_user(account.email)
    created = user is None
    if user is None:
        user = create_user(account.email, account.display_name, account.password)
    password_works = created or verify_password(user.password_hash, account.password)
    role = role_in(org, user)
    joined = role is None
    if role is None:
        add_member(org, user, account.role)
        role = account.role
    return DemoLogin(account, role, created, joined, password_works)


def _refuse_foreign_org(org: Organization) -> None:
    """Refuse to add the demo logins to someone's real organisation that took the slug."""
    member_emails = {m.user.email for m in org.memberships}
    if member_emails and not member_emails & {a.email for a in DEMO_ACCOUNTS}:
        raise AccountError(
            f"the slug {DEMO_ORG_SLUG!r} belongs to {org.name!r}, which isn't the demo "
            "(none of its members is a demo login); nothing was changed"
        )
