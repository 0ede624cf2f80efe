"""The analytics tests' fixtures: an org with snapshots (world), a member looking at it,
a winter of daily snapshots, and the hand-worked studio day of the snapshot tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask

from dashboard.extensions import db
from dashboard.models import (
    GenerationStatus,
    MemberRole,
    VoiceCategory,
    utcnow,
)
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.analytics.helpers import (
    D_END,
    D_START,
    FAILED,
    GONE_ID,
    MS,
    RIVAL_CHARACTERS,
    ROLES,
    Studio,
    add_generation,
    add_snapshot,
    ago,
    at,
    backdate,
    tally,
)
from tests.http import login


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """Org "acme" with a week of snapshots (one day missing), generations today and a
    week before that; org "rival" with huge, distinctive figures on the same days."""
    with app.app_context(), operator_access("test setup"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        acme.created_at = utcnow() - dt.timedelta(days=400)
        rival = factories.make_org(slug="rival", name="Rival Sound")
        users = {role: factories.make_user(email=f"{role.value}@acme.example") for role in ROLES}
        users[MemberRole.MEMBER].display_name = "Zoë Member"
        users[MemberRole.OWNER].display_name = "Olive Owner"
        for role, user in users.items():
            factories.make_membership(user, acme, role)
        left = factories.make_user(
            email="left@acme.example", display_name="Lee Left"
        )  # not a member
        rival_user = factories.make_user(email="rival@rival.example", display_name="Rival Person")
        factories.make_membership(rival_user, rival)
        narrator = factories.make_voice(acme, name="Narrator")
        aaron = factories.make_voice(name="Aaron")
        rival_voice = factories.make_voice(rival, name="Rival Secret Voice")
        n, a = str(narrator.id), str(aaron.id)
        owner, member = str(users[MemberRole.OWNER].id), str(users[MemberRole.MEMBER].id)

        def voice(name: str, variant: str | None, *args: int, **kw: int):
            return tally(*args, name=name, variant=variant, **kw)

        # The last 7 days: today-6 … today-1 in snapshots (today-3 missing), today live.
        add_snapshot(
            acme.id,
            ago(1),
            by_voice={n: voice("Narrator", "CUSTOM", 3, 300, 30_000, failed=1)},
            by_category={"GENERAL": tally(3, 300, 30_000, failed=1)},
            by_member={owner: tally(3, 300, 30_000, failed=1, name="Olive Owner")},
        )
        add_snapshot(
            acme.id,
            ago(2),
            by_voice={a: voice("Aaron", "SYSTEM", 2, 100, 12_000)},
            by_category={"NARRATIVE": tally(2, 100, 12_000)},
            by_member={member: tally(2, 100, 12_000, name="Zoë Member")},
        )
        add_snapshot(
            acme.id,
            ago(4),
            by_voice={GONE_ID: voice("Gone Voice", "CUSTOM", 1, 50, 6_000)},
            by_category={"PODCAST": tally(1, 50, 6_000)},
            by_member={str(left.id): tally(1, 50, 6_000, name="Lee Left")},
        )
        add_snapshot(
            acme.id,
            ago(5),
            by_voice={"deleted:Gone Voice": voice("Gone Voice", None, 1, 40, 4_000)},
            by_category={"DELETED": tally(1, 40, 4_000)},
            by_member={"former": tally(1, 40, 4_000, name="Former member")},
        )
        add_snapshot(
            acme.id,
            ago(6),
            by_voice={n: voice("Narrator", "CUSTOM", 1, 10, 2_000)},
            by_category={"GENERAL": tally(1, 10, 2_000)},
            by_member={owner: tally(1, 10, 2_000, name="Olive Owner")},
        )
        # The 7 days before: only today-8 has anything (the other six have no row).
        add_snapshot(
            acme.id,
            ago(8),
            by_voice={n: voice("Narrator", "CUSTOM", 2, 200, 20_000)},
            by_category={"GENERAL": tally(2, 200, 20_000)},
            by_member={owner: tally(2, 200, 20_000, name="Olive Owner")},
        )
        # Today: two succeeded (25 characters each, 3 s each) and one failed, by the owner.
        for words, status in (
            ("Twenty-five characters A.", GenerationStatus.SUCCEEDED),
            ("Twenty-five characters B.", GenerationStatus.SUCCEEDED),
            ("This one failed.", GenerationStatus.FAILED),
        ):
            factories.make_generation(
                acme,
                narrator,
                text=words,
                created_by=users[MemberRole.OWNER].id,
                status=status,
                audio_key="x" if status is GenerationStatus.SUCCEEDED else None,
                duration_ms=3_000 if status is GenerationStatus.SUCCEEDED else None,
                error="engine down" if status is GenerationStatus.FAILED else None,
            )
        # The rival's figures on the same days, voice and member names and all.
        rv = str(rival_voice.id)
        for days in range(0, 15):
            add_snapshot(
                rival.id,
                ago(days),
                by_voice={rv: voice("Rival Secret Voice", "CUSTOM", 7, RIVAL_CHARACTERS, 5)},
                by_category={"ADVERTISING": tally(7, RIVAL_CHARACTERS, 5)},
                by_member={str(rival_user.id): tally(7, RIVAL_CHARACTERS, 5, name="Rival Person")},
            )
        factories.make_generation(
            rival, rival_voice, text="Rival's live secret.", status="failed", error="nope"
        )
        db.session.commit()
        return {
            "acme": acme.id,
            "rival": rival.id,
            "narrator": narrator.id,
            "users": {role: factories.detach(user) for role, user in users.items()},
            "rival user": factories.detach(rival_user),
        }


@pytest.fixture
def as_member(client, world):
    login(client, world["users"][MemberRole.MEMBER])
    return client


@pytest.fixture
def winter(app: Flask, world) -> None:
    """Snapshots around new year 2026, for a fixed custom range."""
    with app.app_context(), operator_access("test setup"):
        for day, count in (
            (dt.date(2025, 12, 27), 1),  # Saturday
            (dt.date(2025, 12, 29), 2),  # Monday
            (dt.date(2026, 1, 31), 4),  # Saturday
            (dt.date(2026, 2, 1), 8),  # Sunday
            (dt.date(2026, 2, 3), 16),  # Tuesday
        ):
            add_snapshot(
                world["acme"],
                day,
                by_voice={
                    str(world["narrator"]): tally(
                        count, 10 * count, 1000 * count, name="Narrator", variant="CUSTOM"
                    )
                },
            )
        db.session.commit()


@pytest.fixture
def studio(app: Flask) -> Studio:
    """Three orgs on day D (and a fourth created after it).

    acme, day D: members Ada and Bob (Cy joins on D+1, Dee's account is deleted later);
    custom voices Narrator (NARRATIVE), Jingle (ADVERTISING; deleted after use) and Later
    (created on D+2); system voices Aaron (GENERAL) and Brian (PODCAST).

        at              voice     by    status     chars  audio_ms
        D 00:00:00.000  Narrator  Ada   succeeded     10      1000
        D 09:00         Jingle    Ada   succeeded     40      4000
        D 10:00         Jingle    —     failed         5         —   (created_by NULL)
        D 11:00         Aaron     Dee   succeeded     50      5000   (Dee deleted: NULL)
        D 12:00         Narrator  Bob   succeeded     20      2000
        D 13:00         Brian     Bob   failed         7         —
        D 14:00         Narrator  Bob   queued / running             (not counted)
        D 23:59:59.999  Aaron     Bob   succeeded     30      3000
        D-1 23:59:59.999 and D+1 00:00:00.000: Narrator by Ada, 11 and 12 characters.

    globex: member Gus, custom voice Globe (CORPORATE), one succeeded generation on D.
    initech: member Ivy and a custom voice, nothing generated. newco: created on D+2.
    """
    with app.app_context(), operator_access("test setup spans organisations"):
        acme, globex, initech = (
            factories.make_org(slug=slug, name=slug.title(), created_at=at(-30))
            for slug in ("acme", "globex", "initech")
        )
        newco = factories.make_org(slug="newco", name="Newco", created_at=at(2))
        ada, bob, cy, dee, gus, ivy = (
            factories.make_user(display_name=name)
            for name in ("Ada", "Bob", "Cy", "Dee", "Gus", "Ivy")
        )
        for user, org, joined in (
            (ada, acme, -5),
            (bob, acme, -5),
            (cy, acme, 1),
            (dee, acme, -5),
            (gus, globex, -5),
            (ivy, initech, -5),
        ):
            backdate(factories.make_membership(user, org, MemberRole.MEMBER), at(joined))
        narrator = backdate(
            factories.make_voice(acme, name="Narrator", category=VoiceCategory.NARRATIVE), at(-5)
        )
        jingle = backdate(
            factories.make_voice(acme, name="Jingle", category=VoiceCategory.ADVERTISING), at(-5)
        )
        backdate(factories.make_voice(acme, name="Later"), at(2, hours=0.5))
        globe = backdate(
            factories.make_voice(globex, name="Globe", category=VoiceCategory.CORPORATE), at(-5)
        )
        backdate(factories.make_voice(initech, name="Quiet"), at(-5))
        aaron = factories.make_voice(name="Aaron", category=VoiceCategory.GENERAL)
        brian = factories.make_voice(name="Brian", category=VoiceCategory.PODCAST)

        add_generation(acme, narrator, ada, D_START, chars=10, audio_ms=1000)
        add_generation(acme, jingle, ada, at(0, 9), chars=40, audio_ms=4000)
        add_generation(acme, jingle, None, at(0, 10), FAILED, chars=5)
        add_generation(acme, aaron, dee, at(0, 11), chars=50, audio_ms=5000)
        add_generation(acme, narrator, bob, at(0, 12), chars=20, audio_ms=2000)
        add_generation(acme, brian, bob, at(0, 13), FAILED, chars=7)
        add_generation(acme, narrator, bob, at(0, 14), GenerationStatus.QUEUED)
        add_generation(acme, narrator, bob, at(0, 14), GenerationStatus.RUNNING)
        add_generation(acme, aaron, bob, D_END - MS, chars=30, audio_ms=3000)
        add_generation(acme, narrator, ada, D_START - MS, chars=11, audio_ms=1100)
        add_generation(acme, narrator, ada, D_END, chars=12, audio_ms=1200)
        add_generation(globex, globe, gus, at(0, 8), chars=8, audio_ms=800)

        db.session.delete(jingle)  # its generations keep voice_name "Jingle"
        db.session.delete(dee)  # their generation's created_by becomes NULL
        db.session.commit()
        return Studio(
            acme.id,
            globex.id,
            initech.id,
            newco.id,
            ada.id,
            bob.id,
            narrator.id,
            aaron.id,
            brian.id,
            gus.id,
            globe.id,
        )
