"""The demo organisation that `flask seed --demo` creates, with documented logins.

Development only: the passwords are published in the README and printed by the seed,
so the command refuses to run in production.

The demo history (`_ensure_history`) is 300 generations over the last 90 days, planned
by a seeded random generator so every run plans the same rows. Every succeeded row has
a real, playable object of its own: the 12 newest are spoken in full, exactly as a job
would speak them; older ones hold only their opening words (the engine column says
"demo excerpt"), because speaking every text in full would store about 190 MB of WAV
(instead of under 40 MB) for rows nobody plays, and double the seed's time.

The demo analytics (`_ensure_snapshots`) are the daily snapshots of the 90 days before
today, computed from that history exactly as `flask analytics snapshot` computes them.
So that those days count the studio's members and voices, a run that creates the
organisation, a membership or a voice dates it from the start of the history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from dashboard.analytics.snapshots import UpsertReport, figures_for_day, upsert_snapshots
from dashboard.api.services import create_key
from dashboard.audio import waveform_peaks
from dashboard.auth.passwords import verify_password
from dashboard.auth.queries import find_user
from dashboard.auth.services import AccountError, create_user
from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.members.queries import role_in
from dashboard.members.services import add_member
from dashboard.models import (
    ApiKey,
    ApiScope,
    Generation,
    GenerationStatus,
    MemberRole,
    Membership,
    Organization,
    Voice,
    VoiceCategory,
    VoiceVariant,
    utcnow,
)
from dashboard.orgs.queries import find_org
from dashboard.orgs.services import create_org
from dashboard.storage import Storage, generation_key, get_storage
from dashboard.storage.consistency import new_objects_removed_on_error
from dashboard.tts import Engine, SynthesisParams, VoiceRef, get_engine, sample_text
from dashboard.voices import reference_audio
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
class HistoryReport:
    """What the demo history seed found and did."""

    created: int = 0  # generations added by this run
    succeeded: int = 0
    failed: int = 0
    spoken_in_full: int = 0  # succeeded rows whose object is their whole text
    excerpts: int = 0  # succeeded rows whose object is their opening words
    audio_bytes: int = 0  # stored by this run
    existing: int = 0  # rows of an earlier run found (then nothing is added)


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What `seed_demo` found and did."""

    org_name: str
    org_slug: str
    org_created: bool
    logins: tuple[DemoLogin, ...]
    voices_created: tuple[str, ...] = ()  # custom voices (with audio) added by this run
    history: HistoryReport = HistoryReport()
    # The daily analytics snapshots; not part of `changed`: each new day adds one.
    snapshots: UpsertReport = UpsertReport()

    @property
    def changed(self) -> bool:
        return (
            self.org_created
            or bool(self.voices_created)
            or bool(self.history.created)
            or any(login.created or login.joined for login in self.logins)
        )


def seed_demo(
    storage: Storage | None = None,
    engine: Engine | None = None,
    new_keys: list[str] | None = None,
) -> DemoReport:
    """Create whatever is missing of the demo org: logins, voices, history, snapshots.

    Flush only. Never overwrites what a person changed since (a password, a role, a
    voice they edited): the report says so instead. Runs inside `tenancy.all_tenants`,
    since memberships, voices and generations are tenant rows. Audio objects are
    written before their rows; a flush that fails removes them, and their keys are
    appended to `new_keys` so a caller can remove them too when its commit fails.
    """
    org = find_org(DEMO_ORG_SLUG)
    org_created = org is None
    if org is None:
        org = create_org(DEMO_ORG_NAME, slug=DEMO_ORG_SLUG)
    else:
        _refuse_foreign_org(org)
    logins = tuple(_ensure_login(org, account) for account in DEMO_ACCOUNTS)
    storage = storage or get_storage()
    new_keys = new_keys if new_keys is not None else []
    engine = engine or get_engine("espeak")
    voices = _ensure_voices(org, DEMO_VOICES, storage, engine, new_keys)
    history = _ensure_history(org, storage, engine, new_keys)
    _date_from_history_start(
        org,
        org_created,
        [login.account.email for login in logins if login.joined],
        voices,
    )
    snapshots = _ensure_snapshots(org)
    return DemoReport(org.name, org.slug, org_created, logins, voices, history, snapshots)


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
            audio = reference_audio.check_reference_audio(
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


# --------------------------------------------------------------------------- history

HISTORY_SIZE = 300
HISTORY_DAYS = 90
HISTORY_FAILED = 12  # 4 % of the history
HISTORY_SPOKEN_IN_FULL = 12  # the newest succeeded rows; older ones get an excerpt
HISTORY_SEED = 20_260_301  # the same plan on every run and every machine
EXCERPT_WORDS = 6
# Generation ids are derived from the org and the row's number, so a rerun recognises
# the rows of an earlier one (and another demo org would get ids of its own).
HISTORY_NAMESPACE = uuid.UUID("6f1d7f38-2a55-4c1e-9b55-0d3b8c1f2a90")
# The studio's website submits some of its generations through an API key of the
# admin's, so the analytics' "Characters by source" and the API keys page have
# something to show. Its secret is never shown (it isn't stored): create a key of your
# own to call the API.
DEMO_API_KEY_NAME = "Website widget"
DEMO_API_KEY_SCOPES = (ApiScope.GENERATIONS_READ, ApiScope.GENERATIONS_WRITE)
DEMO_API_EVERY = 5  # every fifth planned row came through it

# A custom voice the studio used for a spring campaign and deleted since: its rows keep
# only the snapshot of its name (voice_id NULL), as after a real deletion.
DELETED_VOICE = DemoVoice(
    "Launch Trailer",
    VoiceCategory.ADVERTISING,
    "en-US",
    "Big, punchy trailer read recorded for the spring product launch.",
)
DELETED_VOICE_ROWS = 6

# What the studio writes, by kind; a generation speaks one to three lines of one kind.
DEMO_LINES: dict[str, tuple[str, ...]] = {
    "announcement": (
        "Introducing Voxboard Teams: shared voice libraries, one bill, and a history "
        "everyone in your studio can search.",
        "Starting Monday, every plan includes ten thousand extra characters a month, at "
        "no extra cost. Thank you for building with us.",
        "Our spring release is here. Custom voices now learn from as little as ten "
        "seconds of clean audio, and generations finish up to twice as fast as before. "
        "Update the app today and try it on your next script.",
        "We're opening a new data centre in Frankfurt this quarter, so European teams "
        "can keep every recording and every generated file inside the EU.",
        "Scheduled maintenance: on Saturday between two and four in the morning UTC, "
        "new generations will wait in the queue for a few minutes. Nothing you have "
        "already made is affected.",
        "Meet the Harbor headphones. Forty hours of battery, noise cancelling that "
        "actually works on a train, and a case that fits in the smallest pocket.",
        "This autumn, the Northside Farmers Market moves indoors. Same growers, same "
        "bread, same terrible coffee we all secretly love, every Sunday from nine.",
        "Limited time only: bring an old phone to any of our stores and take fifty "
        "pounds off a new one. Terms apply; see the website for details.",
        "A message from our chief executive. This year we shipped more than we have in "
        "any year before, and we did it while answering your support requests faster "
        "than ever. None of that happens without the people behind it, so thank you, to "
        "every engineer, designer, writer and advisor on the team. Next year we want to "
        "go further: more languages, more voices, and tools that make a first draft "
        "sound like a finished recording.",
    ),
    "audiobook": (
        "Chapter One. The lighthouse keeper had not spoken to another person in "
        "eleven days, and he had begun to enjoy it.",
        "The rain came sideways off the estuary, and by the time Mara reached the "
        "ferry, the last boat was already a smudge of yellow light on the grey water. "
        "She sat down on her suitcase and laughed, because there was nothing else to do.",
        "Nobody in the village remembered who had planted the orchard, only that the "
        "apples tasted of cinnamon in a good year and of nothing at all in a bad one.",
        "He folded the letter twice, then a third time, as if making it smaller might "
        "make what it said smaller too.",
        "The train slowed, shuddered and stopped in the middle of a field of sunflowers. "
        "For a long moment no one said anything. Then the conductor's voice crackled "
        "over the speakers, apologising for a cow on the line.",
        "In the archive beneath the old library, the air smelled of dust and vinegar, "
        "and the only sound was the slow tick of a clock that had been wrong since 1962.",
        "Grandmother kept her recipes in a biscuit tin, written on the backs of bus "
        "tickets and envelopes, and none of them mentioned quantities.",
        "It was the kind of summer that made promises it had no intention of keeping.",
        "By the third week of the voyage the crew had stopped arguing about the map. "
        "They argued instead about the stars, which were the wrong stars, and about the "
        "sea, which had turned the colour of weak tea, and about the captain, who had "
        "not left his cabin since Tuesday. Only the cook seemed untroubled. He sang "
        "while he peeled potatoes, the same three verses over and over, and when anyone "
        "asked him where they were going, he smiled and said that they would know it "
        "when they saw it.",
    ),
    "support": (
        "Thank you for calling Northwind support. Your call may be recorded to help us "
        "improve our service.",
        "For billing questions, press one. To report a problem with your order, press "
        "two. For anything else, stay on the line and the next available advisor will "
        "help you.",
        "All of our advisors are busy helping other customers right now. You are "
        "number three in the queue, and we expect to answer in about four minutes.",
        "To reset your password, visit the sign-in page and choose Forgot password. "
        "We'll email you a link that works for the next thirty minutes.",
        "Your parcel has left our warehouse and should arrive within two working days. "
        "You can follow it at any time from the tracking link in your confirmation email.",
        "We're sorry, that extension isn't recognised. Please enter the four-digit "
        "extension again, followed by the hash key.",
        "Our offices are now closed. We're open Monday to Friday from eight in the "
        "morning until six in the evening. Please leave a message after the tone.",
        "Before we begin, please have your account number ready. You'll find it at the "
        "top of any invoice or in the settings page of the app.",
    ),
    "podcast": (
        "Hello and welcome back to the Morning Show, the podcast about the small "
        "decisions that shape a working life. I'm your host, and it is good to have "
        "you here.",
        "This week we're talking to a baker who gets up at three every morning, and "
        "who says it's the best decision she ever made.",
        "Before we start, a quick thank you to everyone who wrote in after last week's "
        "episode. We read every message, even the ones about my singing.",
        "This episode is brought to you by Fieldnote, the notebook app that stays out "
        "of your way until you need it. Try it free for a month at fieldnote dot app.",
        "Coming up after the break: why your to-do list keeps growing, and three "
        "honest ways to make it shrink.",
        "That's all for today. If you enjoyed the show, tell one friend about it. "
        "That's genuinely how podcasts grow. See you next Tuesday.",
        "Welcome to Deep Dive, where every week we take one ordinary object and follow "
        "it all the way back to where it came from. Today: the humble paperclip.",
    ),
    "meditation": (
        "Find a comfortable position, and let your eyes close when you're ready. "
        "There's nothing you need to do right now.",
        "Breathe in slowly through your nose, counting to four. Hold for a moment. "
        "And breathe out through your mouth, counting to six.",
        "Notice the weight of your body resting on the chair or the floor. Let the "
        "ground hold you. You don't have to hold yourself up.",
        "If your mind wanders, that's fine. Gently bring your attention back to the "
        "breath, as many times as you need to.",
        "Imagine a warm light at the top of your head, moving slowly down through your "
        "face, your shoulders, your arms, softening everything it touches.",
        "Let the sounds around you come and go, like cars passing on a distant road.",
        "Now bring your attention to your hands. Notice the temperature of the air on "
        "your palms, the small pulse in your fingertips, the way they rest without "
        "effort. With each breath out, let them grow a little heavier. Let that "
        "heaviness travel up through your wrists and your forearms, into your elbows "
        "and your shoulders, until your whole upper body feels settled and supported, "
        "like a stone resting on the bed of a slow, clear river.",
        "In a moment, we'll return to the room. Wiggle your fingers and toes, take one "
        "deeper breath, and open your eyes whenever you feel ready.",
    ),
    "coaching": (
        "You don't have to feel ready to start. You only have to start, and the "
        "feeling usually follows a few steps behind.",
        "Every expert you admire was once a beginner who refused to quit on a bad day.",
        "Today, pick one thing that would make tomorrow easier, and do just that one "
        "thing before lunch.",
        "Progress is rarely a straight line. Some weeks you'll move forward, some "
        "weeks you'll hold your ground, and both of those count.",
    ),
}
# Ivan speaks Russian: the studio uses him for its Russian trailer voice-overs.
RUSSIAN_LINES = (
    "Этой зимой всё изменится. Одна ночь, один город и одна тайна, которую никто не "
    "должен был узнать.",
    "Добро пожаловать в Северную студию. Сегодня мы расскажем историю старого маяка на краю света.",
    "Премьера в эту пятницу, только в кино. Не пропустите главный фильм зимы.",
)

KINDS_BY_CATEGORY: dict[VoiceCategory, tuple[str, ...]] = {
    VoiceCategory.AUDIOBOOK: ("audiobook", "meditation"),
    VoiceCategory.NARRATIVE: ("audiobook",),
    VoiceCategory.CHARACTERS: ("audiobook", "podcast"),
    VoiceCategory.CUSTOMER_SERVICE: ("support",),
    VoiceCategory.CONVERSATIONAL: ("podcast", "support"),
    VoiceCategory.PODCAST: ("podcast",),
    VoiceCategory.MEDITATION: ("meditation",),
    VoiceCategory.MOTIVATIONAL: ("coaching", "meditation"),
    VoiceCategory.ADVERTISING: ("announcement",),
    VoiceCategory.VOICEOVER: ("announcement", "audiobook"),
    VoiceCategory.CORPORATE: ("announcement", "support"),
    VoiceCategory.GENERAL: tuple(DEMO_LINES),
}

# How often the studio picks each voice: its own voices most, a few system favourites.
VOICE_WEIGHTS = {
    "Studio Narrator": 16, "Help Desk": 14, "Morning Show": 12,
    "Aaron": 5, "Madison": 5, "Gavin": 4, "Brian": 4, "Ethan": 4, "Marisol": 4,
    "Chloe": 3, "Walter": 3, "Ivan": 1,
}  # fmt: skip
OTHER_VOICE_WEIGHT = 2
# owner, admin, member: who presses Generate.
CREATOR_WEIGHTS = (15, 35, 50)

# Failures as the job leaves them: the message, and how many attempts it took.
FAILURES: tuple[tuple[str, int], ...] = (
    (
        "The speech service at http://tts.internal:8000 did not answer within 120 s "
        "(tried 3 times). (gave up after 4 attempts)",
        4,
    ),
    (
        "The speech service at http://tts.internal:8000 answered 503 Service Unavailable: "
        "model is loading (tried 3 times). (gave up after 4 attempts)",
        4,
    ),
    (
        "The audio could not be saved to storage: cannot reach the S3 endpoint "
        "https://storage.internal for bucket 'voxboard-audio' (gave up after 4 attempts)",
        4,
    ),
    ("The worker stopped while speaking this (it may have been restarted) "
     "(gave up after 4 attempts).", 4),
    (
        "The speech service at http://tts.internal:8000 rejected the request with "
        "422 Unprocessable Entity: text contains no speakable words.",
        1,
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Speaker:
    """A voice as a generation saw it: its row (None once deleted) and what the engine needs."""

    voice_id: uuid.UUID | None
    name: str
    language: str
    category: VoiceCategory
    variant: VoiceVariant

    @classmethod
    def of(cls, voice: Voice) -> Speaker:
        return cls(voice.id, voice.name, voice.language, voice.category, voice.variant)

    @property
    def ref(self) -> VoiceRef:
        return VoiceRef(name=self.name, language=self.language, variant=self.variant.value)


@dataclass(frozen=True, slots=True)
class PlannedGeneration:
    """One row of the demo history before anything is spoken or stored."""

    id: uuid.UUID
    speaker: Speaker
    created_by: uuid.UUID | None
    text: str
    params: SynthesisParams
    created_at: dt.datetime
    wait_seconds: float  # in the queue before a worker started on it
    failure: tuple[str, int] | None = None  # (message, attempts)


def history_ids(org_id: uuid.UUID) -> list[uuid.UUID]:
    """Return the ids the demo history of `org_id` uses, row 0 first."""
    namespace = uuid.uuid5(HISTORY_NAMESPACE, str(org_id))
    return [uuid.uuid5(namespace, f"generation-{n}") for n in range(HISTORY_SIZE)]


def plan_history(
    org_id: uuid.UUID,
    voices: Sequence[Speaker],
    user_ids: Sequence[uuid.UUID | None],
    now: dt.datetime,
) -> list[PlannedGeneration]:
    """Plan the demo history, oldest first; the same inputs always give the same plan.

    Busier towards today (three times as many a day now as 90 days ago), quieter at
    weekends, mostly in working hours (UTC); members generate most, the owner least.
    """
    rng = random.Random(HISTORY_SEED)
    times = sorted(_created_times(rng, now))
    speakers = _pick_speakers(rng, voices, times, now)
    # Failures anywhere but among the three newest rows, so the top of the list plays.
    failed = set(rng.sample(range(HISTORY_SIZE - 3), HISTORY_FAILED))
    plan = []
    for n, (row_id, created_at, speaker) in enumerate(
        zip(history_ids(org_id), times, speakers, strict=True)
    ):
        plan.append(
            PlannedGeneration(
                id=row_id,
                speaker=speaker,
                created_by=rng.choices(list(user_ids), weights=CREATOR_WEIGHTS)[0],
                text=_compose_text(rng, speaker),
                params=_vary_params(rng, speaker),
                created_at=created_at,
                wait_seconds=round(rng.uniform(0.2, 3.0), 3),
                failure=rng.choice(FAILURES) if n in failed else None,
            )
        )
    return plan


def _created_times(rng: random.Random, now: dt.datetime) -> list[dt.datetime]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = range(HISTORY_DAYS)
    weights = [
        (1 + 2 * (HISTORY_DAYS - 1 - d) / (HISTORY_DAYS - 1))
        * (0.4 if (today - dt.timedelta(days=d)).weekday() >= 5 else 1.0)
        for d in days
    ]
    times = []
    for d in rng.choices(days, weights=weights, k=HISTORY_SIZE):
        hours = min(22.9, max(6.0, rng.gauss(14.0, 3.2)))
        created = today - dt.timedelta(days=d) + dt.timedelta(hours=hours)
        if created > now - dt.timedelta(minutes=2):  # later today: earlier today instead
            created = now - dt.timedelta(minutes=rng.uniform(3, 6 * 60))
        times.append(created)
    return times


def _pick_speakers(
    rng: random.Random, voices: Sequence[Speaker], times: Sequence[dt.datetime], now: dt.datetime
) -> list[Speaker]:
    weights = [VOICE_WEIGHTS.get(v.name, OTHER_VOICE_WEIGHT) for v in voices]
    speakers = rng.choices(list(voices), weights=weights, k=len(times))
    deleted = Speaker(
        None,
        DELETED_VOICE.name,
        DELETED_VOICE.language,
        DELETED_VOICE.category,
        VoiceVariant.CUSTOM,
    )
    campaign = [n for n, t in enumerate(times) if now - t > dt.timedelta(days=50)]
    for n in rng.sample(campaign, min(DELETED_VOICE_ROWS, len(campaign))):
        speakers[n] = deleted
    return speakers


def _compose_text(rng: random.Random, speaker: Speaker) -> str:
    if speaker.language.lower().startswith("ru"):
        return rng.choice(RUSSIAN_LINES)
    kinds = KINDS_BY_CATEGORY.get(speaker.category, tuple(DEMO_LINES))
    kind = rng.choice(kinds) if rng.random() < 0.85 else rng.choice(tuple(DEMO_LINES))
    count = rng.choices((1, 2, 3), weights=(55, 35, 10))[0]
    lines = rng.sample(DEMO_LINES[kind], min(count, len(DEMO_LINES[kind])))
    return rng.choice((" ", "\n\n")).join(lines)


def _vary_params(rng: random.Random, speaker: Speaker) -> SynthesisParams:
    if rng.random() < 0.45:
        return SynthesisParams()
    calm = speaker.category is VoiceCategory.MEDITATION
    temperature = rng.choice((0.3, 0.4, 0.5, 0.6) if calm else (0.5, 0.7, 0.9, 1.0, 1.2, 1.5))
    return SynthesisParams(
        temperature=temperature,
        top_p=rng.choice((0.8, 0.85, 0.9, 0.95, 0.95, 1.0)),
        top_k=rng.choice((250, 500, 1000, 1000, 1000, 2000, 4000)),
        repetition_penalty=rng.choice((1.0, 1.1, 1.2, 1.2, 1.3, 1.5)),
    )


def excerpt(text: str) -> str:
    """Return the opening words of `text`: its first sentence, at most EXCERPT_WORDS words."""
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return " ".join(first.split()[:EXCERPT_WORDS])


@dataclass(frozen=True, slots=True)
class StoredAudio:
    key: str
    size: int
    sha256: str
    duration_ms: int
    engine: str
    peaks: list[int]


def _ensure_history(
    org: Organization, storage: Storage, engine: Engine, new_keys: list[str]
) -> HistoryReport:
    """Add the demo history unless a run before added it (any of its rows is there).

    A history someone pruned is left pruned: only when none of its rows is left is it
    planned afresh.
    """
    ids = history_ids(org.id)
    existing = db.session.scalar(
        select(func.count()).select_from(Generation).where(Generation.id.in_(ids))
    )
    if existing:
        return HistoryReport(existing=existing)
    plan = plan_history(org.id, _history_voices(org), _demo_user_ids(), utcnow())
    api_key = _demo_api_key(org, plan[0].created_at if plan else utcnow())
    succeeded = [p for p in plan if p.failure is None]
    in_full = {p.id for p in succeeded[-HISTORY_SPOKEN_IN_FULL:]}
    rows, stored = [], 0
    with new_objects_removed_on_error(storage) as written:
        for planned in plan:
            audio = None
            if planned.failure is None:
                audio = _speak(storage, engine, org.id, planned, planned.id in in_full)
                written.append(audio.key)
                stored += audio.size
            row = _history_row(org.id, planned, audio)
            if api_key is not None and len(rows) % DEMO_API_EVERY == DEMO_API_EVERY - 1:
                row.api_key_id, row.created_by = api_key.id, api_key.created_by
            rows.append(row)
        db.session.add_all(rows)
        db.session.flush()
        for row in rows:
            if row.status is not GenerationStatus.FAILED:
                # Charged as the app charges a submission (a failed one was refunded).
                ledger.charge(row, counted_at=row.created_at)
    new_keys.extend(written)
    return HistoryReport(
        created=len(rows),
        succeeded=len(succeeded),
        failed=len(rows) - len(succeeded),
        spoken_in_full=len(in_full),
        excerpts=len(succeeded) - len(in_full),
        audio_bytes=stored,
    )


def _history_voices(org: Organization) -> list[Speaker]:
    """Every system voice and the org's custom voices, in a stable order."""
    voices = db.session.scalars(
        select(Voice)
        .where((Voice.variant == VoiceVariant.SYSTEM) | (Voice.org_id == org.id))
        .order_by(Voice.variant, Voice.name, Voice.id)
    )
    return [Speaker.of(v) for v in voices]


def _demo_api_key(org: Organization, since: dt.datetime) -> ApiKey | None:
    """Return the demo's API key, added (by the admin, dated `since`) unless it is there.

    None when the admin login is not the demo's (nobody to have created it).
    """
    key = db.session.scalar(
        select(ApiKey).where(ApiKey.org_id == org.id, ApiKey.name == DEMO_API_KEY_NAME)
    )
    if key is not None:
        return key
    admin = find_user(DEMO_ACCOUNTS[1].email)
    if admin is None:
        return None
    key, _secret = create_key(org.id, admin.id, DEMO_API_KEY_NAME, DEMO_API_KEY_SCOPES)
    key.created_at = key.updated_at = since
    db.session.flush()
    return key


def _demo_user_ids() -> list[uuid.UUID | None]:
    users = [find_user(account.email) for account in DEMO_ACCOUNTS]
    return [user.id if user else None for user in users]


def _speak(
    storage: Storage, engine: Engine, org_id: uuid.UUID, planned: PlannedGeneration, full: bool
) -> StoredAudio:
    """Speak and store one row's audio as a job does (same engine call, key and peaks)."""
    text = planned.text if full else excerpt(planned.text)
    result = engine.synthesize(text, planned.speaker.ref, planned.params)
    key = generation_key(org_id, planned.id, "demo")
    storage.put(key, io.BytesIO(result.wav), content_type="audio/wav")
    label = result.engine if full else f"{result.engine} (demo excerpt)"
    return StoredAudio(
        key=key,
        size=len(result.wav),
        sha256=hashlib.sha256(result.wav).hexdigest(),
        duration_ms=result.duration_ms,
        engine=label[:64],
        peaks=waveform_peaks(result.wav),
    )


def _history_row(
    org_id: uuid.UUID, planned: PlannedGeneration, audio: StoredAudio | None
) -> Generation:
    # Speaking takes the worker about a second per 250 characters.
    started = planned.created_at + dt.timedelta(seconds=planned.wait_seconds)
    finished = started + dt.timedelta(seconds=0.8 + len(planned.text) / 250)
    params = planned.params
    row = Generation(
        id=planned.id,
        org_id=org_id,
        voice_id=planned.speaker.voice_id,
        created_by=planned.created_by,
        text=planned.text,
        voice_name=planned.speaker.name,
        character_count=len(planned.text),
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        repetition_penalty=params.repetition_penalty,
        started_at=started,
        finished_at=finished,
        created_at=planned.created_at,
        updated_at=finished,
    )
    if planned.failure is not None:
        message, attempts = planned.failure
        row.status, row.error, row.attempts = GenerationStatus.FAILED, message, attempts
        return row
    assert audio is not None, "a succeeded row needs its audio"
    row.status, row.attempts = GenerationStatus.SUCCEEDED, 1
    row.audio_key, row.audio_size, row.audio_sha256 = audio.key, audio.size, audio.sha256
    row.duration_ms, row.engine, row.peaks = audio.duration_ms, audio.engine, audio.peaks
    return row


# ------------------------------------------------------------------------- analytics

SNAPSHOT_DAYS = HISTORY_DAYS  # the days before today; today is computed live


def history_start(now: dt.datetime) -> dt.datetime:
    """Return midnight (UTC) of the first day the demo snapshots cover."""
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=SNAPSHOT_DAYS)


def _date_from_history_start(
    org: Organization, org_created: bool, joined_emails: Sequence[str], voice_names: Sequence[str]
) -> None:
    """Date the rows this run created from the start of the history; flush.

    As if the studio had been there all along: otherwise every past snapshot would
    count no members and no custom voices next to generations made by them, with them.
    """
    start = history_start(utcnow())
    if org_created:
        org.created_at = start
    user_ids = [user.id for email in joined_emails if (user := find_user(email)) is not None]
    rows: list[Membership | Voice] = []
    if user_ids:
        rows += db.session.scalars(
            select(Membership).where(Membership.org_id == org.id, Membership.user_id.in_(user_ids))
        )
    if voice_names:
        rows += db.session.scalars(
            select(Voice).where(Voice.org_id == org.id, Voice.name.in_(voice_names))
        )
    for row in rows:
        row.created_at = start
    db.session.flush()


def _ensure_snapshots(org: Organization) -> UpsertReport:
    """Store the demo org's snapshots of the SNAPSHOT_DAYS days before today; flush only.

    Idempotent (a re-run finds every row unchanged); a few statements per day.
    """
    today = utcnow().date()
    report = UpsertReport()
    for back in range(SNAPSHOT_DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        report += upsert_snapshots(day, figures_for_day(day, [org.id]))
    return report
