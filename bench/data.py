"""`python -m bench.data`: build the benchmark data set on PostgreSQL (idempotent).

What it makes (sizes in `settings.Spec`): 1,000 organisations, one of them (`big`)
holding 300,000 of the 1,000,000 generations, 2,000 custom voices in `big` plus a few
in the others, the 20 system voices (`flask seed`), members with memberships, and 90
days of analytics snapshots per organisation computed from the generations.

How:
- roles and database through the superuser URL; the schema with `flask db upgrade`
  and the web role's privileges with `flask rls grant`, both as the owner;
- one transaction as the owner (BYPASSRLS) loads everything with psycopg 3's COPY:
  generations are COPY FREEZE-d into the truncated table with its secondary indexes
  and foreign keys dropped, then both are re-created from their own definitions
  (`pg_get_indexdef`/`pg_get_constraintdef`, so the schema stays exactly the
  migrations'), and the snapshots are computed from the rows in SQL;
- the database's comment is set to `Spec.marker()` in that same transaction, so the
  data is either complete and marked or absent: a re-run that finds the marker skips.

Every row obeys the schema's CHECKs (ranges read from `dashboard.models.generations`).
Ids are UUIDv7 built from each row's created_at: 48-bit milliseconds, a 12-bit counter
within the millisecond (so ids are unique and sort like `(created_at, id)`) and 62
seeded random bits. A seeded RNG makes every run produce the same data.

Audio: only `audio_samples` succeeded generations of `big` (and `voice_audio_samples`
of its custom voices) have real objects, spoken by eSpeak NG and written under
bench/.data/objects by `LocalStorage`, plus one 50 MB object for the streaming
measurement. Every other succeeded row keeps its own server-made key
(`generations/orgs/{org}/{id}`) with no object behind it: no two rows share an object
(so deleting a row can never take another row's audio), and the audio endpoint
answers 404 for them, which the benchmark never asks for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench import settings
from bench.settings import Spec
from bench.textbank import CUT_SLACK, FAILURE_MESSAGES, TextBank, slugify
from dashboard.models.generations import REPETITION_PENALTY, TEMPERATURE, TEXT_MAX, TOP_K, TOP_P

TEXT_MIN_CHARS, TEXT_MAX_CHARS = 50, 500
assert TEXT_MAX_CHARS <= TEXT_MAX
DAY_US = 86_400_000_000
# Rough eSpeak figures for rows without real audio: ~15 characters per second of
# speech, 16-bit mono at 22,050 Hz, a 44-byte WAV header.
MS_PER_CHAR = 66
BYTES_PER_MS = 44.1
ENGINE_LABEL = "espeak-ng 1.52.0"
CUSTOM_LANGUAGES = ["en-US"] * 8 + ["en-GB", "en-AU", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR"]
CATEGORIES = [
    "AUDIOBOOK",
    "CONVERSATIONAL",
    "CUSTOMER_SERVICE",
    "GENERAL",
    "NARRATIVE",
    "CHARACTERS",
    "MEDITATION",
    "MOTIVATIONAL",
    "PODCAST",
    "ADVERTISING",
    "VOICEOVER",
    "CORPORATE",
]
DELETED_VOICE_NAMES = ["Old Narrator", "Trial Voice", "Holiday Promo", "Legacy IVR", "Pilot Host"]

GENERATION_COLUMNS = (
    "id",
    "org_id",
    "voice_id",
    "created_by",
    "text",
    "voice_name",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "status",
    "error",
    "character_count",
    "duration_ms",
    "engine",
    "audio_key",
    "audio_size",
    "audio_sha256",
    "peaks",
    "attempts",
    "started_at",
    "finished_at",
    "created_at",
    "updated_at",
)
ORG_COLUMNS = ("id", "slug", "name", "monthly_character_limit", "created_at", "updated_at")
USER_COLUMNS = (
    "id",
    "email",
    "password_hash",
    "display_name",
    "created_at",
    "updated_at",
)
MEMBERSHIP_COLUMNS = ("id", "user_id", "org_id", "role", "created_at", "updated_at")
VOICE_COLUMNS = (
    "id",
    "org_id",
    "name",
    "description",
    "category",
    "language",
    "variant",
    "audio_key",
    "audio_sha256",
    "audio_size",
    "audio_duration_ms",
    "audio_content_type",
    "created_at",
    "updated_at",
)


def log(message: str) -> None:
    """Print one progress line (the data generator is a script, not a Flask command)."""
    print(f"bench.data: {message}", flush=True)


# ----------------------------------------------------------------------- row builders


def dashed(hex32: str) -> str:
    """Return 32 hex digits in the canonical 8-4-4-4-12 form (as `str(uuid.UUID)`)."""
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_str(ms: int, counter: int, rand62: int) -> str:
    """Return a UUIDv7: `ms` timestamp, 12-bit `counter`, 62 random bits (canonical form)."""
    if not 0 <= counter < 4096:
        raise ValueError("more than 4096 ids in one millisecond")
    return dashed(f"{ms:012x}7{counter:03x}{(1 << 63) | (rand62 & ((1 << 62) - 1)):016x}")


def uuid7_at(when_us: int, rng: random.Random, counter: int = 0) -> str:
    """Return a UUIDv7 for a row created at `when_us` (epoch microseconds)."""
    return uuid7_str(when_us // 1000, counter, rng.getrandbits(62))


def ids_for(created_us: np.ndarray, rand62: np.ndarray) -> list[str]:
    """Return one UUIDv7 per timestamp of the sorted `created_us`, in the same order.

    Rows in one millisecond get counters 0, 1, 2…, so ids are unique and their order is
    the rows' (created_at, id) order. Same layout as `uuid7_str`, vectorised.
    """
    ms = (created_us // 1000).astype(np.uint64)
    starts = np.r_[0, np.flatnonzero(np.diff(ms)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(ms)]))
    counters = (np.arange(len(ms)) - run_start).astype(np.uint64)
    if counters.size and counters.max() >= 4096:
        raise ValueError("more than 4096 ids in one millisecond")
    high = (ms << np.uint64(16)) | np.uint64(0x7000) | counters
    low = np.uint64(1 << 63) | (rand62.astype(np.uint64) & np.uint64((1 << 62) - 1))
    raw = np.stack([high, low], axis=1).astype(">u8").tobytes().hex()
    return [
        f"{raw[k : k + 8]}-{raw[k + 8 : k + 12]}-{raw[k + 12 : k + 16]}-"
        f"{raw[k + 16 : k + 20]}-{raw[k + 20 : k + 32]}"
        for k in range(0, len(raw), 32)
    ]


def ts(when_us: int) -> str:
    """Return epoch microseconds as a timestamptz literal in UTC."""
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=when_us)).isoformat()


def sampling_params(rng: random.Random) -> tuple[float, float, int, float]:
    """Return (temperature, top_p, top_k, repetition_penalty): mostly defaults, all in range."""
    if rng.random() < 0.7:
        return TEMPERATURE[2], TOP_P[2], TOP_K[2], REPETITION_PENALTY[2]
    return (
        round(rng.uniform(TEMPERATURE[0], TEMPERATURE[1]), 2),
        round(rng.uniform(TOP_P[0], TOP_P[1]), 2),
        rng.randint(TOP_K[0], TOP_K[1]),
        round(rng.uniform(REPETITION_PENALTY[0], REPETITION_PENALTY[1]), 2),
    )


def peaks_pool(seed: int, size: int = 400, count: int = 160) -> list[str]:
    """Return `size` plausible waveform peak lists (JSON text, 0–100, loudest 100)."""
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(size):
        envelope = np.abs(np.cumsum(rng.normal(0, 8, count))) + rng.uniform(10, 40, count)
        envelope[rng.random(count) < 0.08] *= 0.1  # pauses between words
        envelope = np.round(100 * envelope / envelope.max()).astype(int)
        pool.append(json.dumps(envelope.tolist(), separators=(",", ":")))
    return pool


@dataclass(slots=True)
class Org:
    id: str
    slug: str
    name: str
    created_us: int
    members: list[str] = field(default_factory=list)  # user ids
    custom_voices: list[tuple[str, str]] = field(default_factory=list)  # (id, name)


@dataclass(frozen=True, slots=True)
class SystemVoice:
    id: str
    name: str


@dataclass(slots=True)
class Accounts:
    """Organisations, users, memberships and custom voices, as COPY rows."""

    orgs: list[Org]
    org_rows: list[tuple]
    user_rows: list[tuple]
    membership_rows: list[tuple]
    voice_rows: list[tuple]
    bench_user_id: str


def plan_accounts(
    spec: Spec, bank: TextBank, now_us: int, bench_hash: str, other_hash: str
) -> Accounts:
    """Plan organisations, users, memberships and custom voices.

    `big` is first, with `big_members` members (the benchmark user among them, role
    member) and `big_custom_voices` voices; the others get 1–6 members and 0–4 voices.
    The benchmark user also belongs to two other organisations, as people often do.
    Every other user shares one hash of a random password nobody knows (hashing
    thousands of Argon2 passwords would dominate the generator's time).
    """
    rng = random.Random(spec.seed)
    history_start = now_us - spec.days * DAY_US
    orgs, org_rows = [], []
    org_times = sorted(
        history_start - rng.randrange(30 * DAY_US, 400 * DAY_US) for _ in range(spec.orgs)
    )
    for index, created in enumerate(org_times):
        if index == 0:
            name, slug = "Big Audio Company", settings.BIG_SLUG
        else:
            name = bank.org_name(index)
            slug = f"{slugify(name)}"[:63]
        org = Org(uuid7_at(created, rng), slug, name, created)
        orgs.append(org)
        limit = None if rng.random() < 0.8 else rng.choice([100_000, 500_000, 2_000_000])
        if index == 0:
            limit = None
        org_rows.append((org.id, slug, name, limit, ts(created), ts(created)))

    user_rows, membership_rows = [], []
    bench_user_id = ""
    user_index = 0

    def add_user(email: str, name: str, created: int, password_hash: str) -> str:
        nonlocal user_index
        user_id = uuid7_at(created, rng, counter=user_index % 4096)
        user_index += 1
        user_rows.append((user_id, email, password_hash, name, ts(created), ts(created)))
        return user_id

    def join(org: Org, user_id: str, role: str, created: int) -> None:
        org.members.append(user_id)
        membership_rows.append(
            (uuid7_at(created, rng), user_id, org.id, role, ts(created), ts(created))
        )

    for index, org in enumerate(orgs):
        count = spec.big_members if index == 0 else rng.randint(1, 6)
        for member in range(count):
            created = org.created_us + member * 3_600_000_000
            if index == 0 and member == 1:
                user_id = add_user(settings.BENCH_EMAIL, "Bench Member", created, bench_hash)
                bench_user_id = user_id
            else:
                display = bank.person_name(user_index)
                email = f"{slugify(display)}.{user_index}@{org.slug}.example.test"
                user_id = add_user(email, display, created, other_hash)
            role = "owner" if member == 0 else ("admin" if member < 3 else "member")
            if user_id == bench_user_id:
                role = "member"
            join(org, user_id, role, created)
    for org in orgs[1:3]:
        join(org, bench_user_id, "member", org.created_us + DAY_US)

    voice_rows = []
    voice_index = 0
    for index, org in enumerate(orgs):
        count = spec.big_custom_voices if index == 0 else rng.choice([0, 0, 1, 2, 3, 4])
        times = sorted(rng.randrange(org.created_us, now_us - DAY_US) for _ in range(count))
        for created in times:
            name, description = bank.voice(voice_index if index == 0 else rng.randrange(10_000))
            if index != 0 and any(name == existing for _, existing in org.custom_voices):
                name = f"{name} {len(org.custom_voices) + 1}"
            voice_index += 1
            voice_id = uuid7_at(created, rng, counter=voice_index % 4096)
            org.custom_voices.append((voice_id, name))
            duration = rng.randint(12_000, 90_000)
            voice_rows.append(
                (
                    voice_id,
                    org.id,
                    name,
                    description,
                    rng.choice(CATEGORIES),
                    rng.choice(CUSTOM_LANGUAGES),
                    "CUSTOM",
                    f"voices/orgs/{org.id}/{voice_id}",
                    secrets.token_hex(32),
                    44 + round(duration * BYTES_PER_MS),
                    duration,
                    "audio/wav",
                    ts(created),
                    ts(created),
                )
            )
    return Accounts(orgs, org_rows, user_rows, membership_rows, voice_rows, bench_user_id)


@dataclass(slots=True)
class GenerationPlan:
    """Per-row choices for every generation, drawn at once with numpy (seeded).

    Times are epoch microseconds; `started_us`/`finished_us` are -1 where NULL.
    """

    created_us: np.ndarray  # sorted
    ids: list[str]
    org: np.ndarray  # index into Accounts.orgs
    status: np.ndarray  # index into STATUS_NAMES
    length: np.ndarray
    duration_ms: np.ndarray
    started_us: np.ndarray
    finished_us: np.ndarray
    voice_u: np.ndarray
    system_rank: np.ndarray
    custom_rank: np.ndarray
    member_u: np.ndarray
    peaks: np.ndarray
    samples: dict[int, SampleAudio] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SampleAudio:
    """A generation whose audio is a real object (eSpeak WAV)."""

    text: str
    size: int
    sha256: str
    duration_ms: int
    peaks: str
    engine: str


STATUS_NAMES = ("succeeded", "failed", "queued", "running")
SUCCEEDED, FAILED, QUEUED, RUNNING = range(4)


def plan_generations(spec: Spec, n_orgs: int, now_us: int) -> GenerationPlan:
    """Draw times, organisations, statuses, lengths and voice choices for every row.

    Traffic grows over the period (twice as busy at the end as at the start) and
    follows the working day (UTC), so pages and snapshot days differ as real ones do.
    `big` gets exactly `big_generations`; the others share the rest unevenly
    (log-normal weights), each at least one. The last ten minutes hold the queued and
    running rows, as a live system would.
    """
    total = spec.generations
    rng = np.random.default_rng(spec.seed)
    span = spec.days * DAY_US
    draws, accepted = [], 0
    while accepted < total:
        t = rng.integers(0, span, size=int(total * 2.2) + 100)
        hour = ((now_us - span + t) % DAY_US) / DAY_US
        weight = (1 + t / span) / 2 * (0.55 + 0.45 * np.sin(2 * math.pi * (hour - 0.3)))
        keep = t[rng.random(t.size) < weight]
        draws.append(keep)
        accepted += keep.size
    created = np.sort(np.concatenate(draws)[:total]) + (now_us - span)

    big = min(spec.big_generations, total)
    rest = total - big
    if n_orgs > 1 and rest >= n_orgs - 1:
        weights = rng.lognormal(0, 1.2, n_orgs - 1)
        counts = 1 + rng.multinomial(rest - (n_orgs - 1), weights / weights.sum())
        org = np.repeat(np.arange(n_orgs), np.r_[big, counts])
    else:
        org = np.zeros(total, dtype=np.int64)
    rng.shuffle(org)

    status = np.where(rng.random(total) < 0.045, FAILED, SUCCEEDED)
    recent = created > now_us - 10 * 60_000_000
    status[recent & (rng.random(total) < 0.3)] = QUEUED
    status[recent & (rng.random(total) < 0.05)] = RUNNING

    length = np.clip(
        np.round(rng.lognormal(math.log(170), 0.55, total)),
        TEXT_MIN_CHARS + CUT_SLACK,
        TEXT_MAX_CHARS,
    ).astype(np.int64)
    duration = length * MS_PER_CHAR + rng.integers(0, 900, total)
    started = np.where(status == QUEUED, -1, created + rng.integers(50_000, 2_000_000, total))
    finished = np.select(
        [status == SUCCEEDED, status == FAILED],
        [started + duration * 2000, started + 120_000_000],
        -1,
    )
    return GenerationPlan(
        created_us=created,
        ids=ids_for(created, rng.integers(0, 1 << 62, size=total, dtype=np.int64)),
        org=org,
        status=status,
        length=length,
        duration_ms=duration,
        started_us=started,
        finished_us=finished,
        voice_u=rng.random(total),
        system_rank=np.minimum(rng.zipf(1.6, total) - 1, 19),
        custom_rank=rng.zipf(1.15, total) - 1,
        member_u=rng.random(total),
        peaks=rng.integers(0, 400, total),
    )


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    id: str | None
    name: str


def choose_voice(
    u: float, custom_rank: int, system_rank: int, org: Org, system: Sequence[SystemVoice]
) -> VoiceChoice:
    """Pick a row's voice: a popular system voice, one of the org's, or a deleted one."""
    if u < 0.015:
        return VoiceChoice(None, DELETED_VOICE_NAMES[int(u * 1e6) % len(DELETED_VOICE_NAMES)])
    if org.custom_voices and u > 0.55:
        voice_id, name = org.custom_voices[custom_rank % len(org.custom_voices)]
        return VoiceChoice(voice_id, name)
    voice = system[system_rank]
    return VoiceChoice(voice.id, voice.name)


def plan_voice(
    plan: GenerationPlan, i: int, org: Org, system: Sequence[SystemVoice]
) -> VoiceChoice:
    """Return row `i`'s voice."""
    return choose_voice(
        float(plan.voice_u[i]), int(plan.custom_rank[i]), int(plan.system_rank[i]), org, system
    )


def timestamps(values: np.ndarray) -> list[str | None]:
    """Return epoch microseconds as UTC timestamp literals; -1 becomes None."""
    texts = np.datetime_as_string(values.astype("datetime64[us]"), unit="us", timezone="UTC")
    return [None if v < 0 else t for v, t in zip(values.tolist(), texts.tolist(), strict=True)]


def generation_rows(
    plan: GenerationPlan,
    accounts: Accounts,
    system: Sequence[SystemVoice],
    bank: TextBank,
    seed: int,
    start: int = 0,
    stop: int | None = None,
    chunk: int = 20_000,
) -> Iterator[tuple]:
    """Yield the COPY rows (GENERATION_COLUMNS order) of generations `start`…`stop`.

    Per-row values come from the plan's arrays a chunk at a time (numpy scalars are
    slow to index one by one); texts, parameters and hashes from a seeded `random`.
    """
    rng = random.Random(seed + start)
    pool = peaks_pool(seed)
    orgs = accounts.orgs
    defaults = (TEMPERATURE[2], TOP_P[2], TOP_K[2], REPETITION_PENALTY[2])
    stop = len(plan.ids) if stop is None else stop
    for first in range(start, stop, chunk):
        last = min(first + chunk, stop)
        window = slice(first, last)
        created = timestamps(plan.created_us[window])
        started = timestamps(plan.started_us[window])
        finished = timestamps(plan.finished_us[window])
        columns = zip(
            range(first, last),
            plan.ids[window],
            plan.org[window].tolist(),
            plan.status[window].tolist(),
            plan.length[window].tolist(),
            plan.duration_ms[window].tolist(),
            plan.voice_u[window].tolist(),
            plan.custom_rank[window].tolist(),
            plan.system_rank[window].tolist(),
            plan.member_u[window].tolist(),
            plan.peaks[window].tolist(),
            created,
            started,
            finished,
            strict=True,
        )
        for (
            i,
            gen_id,
            org_index,
            status,
            length,
            duration,
            voice_u,
            custom_rank,
            system_rank,
            member_u,
            peaks_index,
            created_at,
            started_at,
            finished_at,
        ) in columns:
            org = orgs[org_index]
            voice = choose_voice(voice_u, custom_rank, system_rank, org, system)
            members = org.members
            creator = members[int(member_u * len(members))] if members else None
            sample = plan.samples.get(i) if plan.samples else None
            if sample:
                text, params = sample.text, defaults  # spoken with the default parameters
            else:
                text, params = bank.text(length, rng), sampling_params(rng)
            error = audio_key = audio_size = sha = peaks = engine = None
            duration_ms = None
            attempts = 0 if status == QUEUED else 1
            if status == SUCCEEDED:
                audio_key = f"generations/orgs/{org.id}/{gen_id}"
                if sample:
                    duration_ms, audio_size, sha = sample.duration_ms, sample.size, sample.sha256
                    peaks, engine = sample.peaks, sample.engine
                else:
                    duration_ms = duration
                    audio_size = 44 + int(duration * BYTES_PER_MS)
                    sha = f"{rng.getrandbits(256):064x}"
                    peaks, engine = pool[peaks_index], ENGINE_LABEL
            elif status == FAILED:
                error = FAILURE_MESSAGES[peaks_index % len(FAILURE_MESSAGES)]
                attempts = 4
            yield (
                gen_id,
                org.id,
                voice.id,
                creator,
                text,
                voice.name,
                *params,
                STATUS_NAMES[status],
                error,
                len(text),
                duration_ms,
                engine,
                audio_key,
                audio_size,
                sha,
                peaks,
                attempts,
                started_at,
                finished_at,
                created_at,
                finished_at or started_at or created_at,
            )


# ------------------------------------------------------------------------ the loader


def run_flask(*args: str, database_url: str, extra_env: dict[str, str] | None = None) -> float:
    """Run `flask ARGS` against the bench database as the owner; return its wall time."""
    env = flask_env(database_url, extra_env)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=settings.PROJECT_ROOT, env=env, check=True
    )
    return time.perf_counter() - started


def flask_env(database_url: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment the bench's `flask` and gunicorn processes run with."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DIRECT_URL", "OPERATOR_", "STORAGE_", "S3_", "R2_"))
    }
    env.update(
        FLASK_APP="wsgi",
        DATABASE_URL=database_url,
        STORAGE_BACKEND="local",
        STORAGE_LOCAL_ROOT=str(settings.OBJECTS_DIR),
        SECRET_KEY=settings.SECRET_KEY,
        DASHBOARD_ENV="development",
        RLS_REQUIRED="0",
        JOBS_URL=f"sqlite:///{settings.DATA_DIR / 'jobs.db'}",
        PYTHONPATH=str(settings.PROJECT_ROOT),
    )
    env.update(extra_env or {})
    return env


def ensure_roles_and_database(rebuild: bool) -> None:
    """Create the owner and web roles and the database (superuser URL); drop it on `rebuild`."""
    import psycopg

    with psycopg.connect(settings.admin_url(), autocommit=True) as conn:
        for role, options in (
            (settings.OWNER_ROLE, "LOGIN BYPASSRLS"),
            (settings.WEB_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS"),
        ):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f'CREATE ROLE "{role}" {options}')
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.DB_NAME,)
        ).fetchone()
        if exists and rebuild:
            log(f"--rebuild: dropping database {settings.DB_NAME}")
            conn.execute(f'DROP DATABASE "{settings.DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{settings.DB_NAME}" OWNER "{settings.OWNER_ROLE}"')


def current_marker() -> str | None:
    """Return the bench database's comment (the completeness marker), if any."""
    import psycopg

    with psycopg.connect(settings.admin_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (settings.DB_NAME,),
        ).fetchone()
    return row[0] if row else None


def has_generations() -> bool:
    """Tell whether the bench database already has a generations table with rows."""
    import psycopg

    with psycopg.connect(settings.owner_url(), autocommit=True) as conn:
        table = conn.execute("SELECT to_regclass('generations')").fetchone()[0]
        return bool(table) and bool(conn.execute("SELECT 1 FROM generations LIMIT 1").fetchone())


def password_hashes() -> tuple[str, str]:
    """Hash the benchmark user's password (and one unknown password) as the app does."""
    from dashboard import create_app
    from dashboard.auth.passwords import hash_password

    app = create_app({"SECRET_KEY": settings.SECRET_KEY, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        return hash_password(settings.BENCH_PASSWORD), hash_password(secrets.token_urlsafe(24))


def speak_samples(
    spec: Spec, plan: GenerationPlan, accounts: Accounts, system: Sequence[SystemVoice]
) -> tuple[int, int]:
    """Give `audio_samples` succeeded rows of `big` real eSpeak audio (and the 50 MB one).

    Samples are spread over the last 30 days, none on the first page; their texts are
    short (50–150 characters) to keep the objects small. Returns the index of the
    row holding the 50 MB object and the number of bytes written.
    """
    from dashboard.audio import waveform_peaks
    from dashboard.storage import LocalStorage, generation_key
    from dashboard.tts import SynthesisParams, VoiceRef, get_engine

    rng = random.Random(spec.seed + 7)
    bank = TextBank(spec.seed + 7, sentences=400)
    engine = get_engine("espeak")
    storage = LocalStorage(settings.OBJECTS_DIR)
    big = plan.org == 0
    candidates = np.flatnonzero(
        big & (plan.status == 0) & (plan.created_us > plan.created_us[-1] - 30 * DAY_US)
    )[:-100]
    chosen = sorted(rng.sample(candidates.tolist(), min(spec.audio_samples + 1, len(candidates))))
    stream_index, written = chosen.pop(len(chosen) // 2), 0
    for i in [*chosen, stream_index]:
        org = accounts.orgs[0]
        voice = plan_voice(plan, i, org, system)
        text = bank.text(rng.randint(TEXT_MIN_CHARS + CUT_SLACK, 150), rng)
        variant = "SYSTEM" if any(v.id == voice.id for v in system) else "CUSTOM"
        result = engine.synthesize(text, VoiceRef(voice.name, variant=variant), SynthesisParams())
        wav = result.wav
        if i == stream_index:
            wav = stretch_wav(wav, spec.stream_object_mb * 1024 * 1024)
        key = generation_key(org.id, plan.ids[i])
        storage.put(key, io.BytesIO(wav), content_type="audio/wav")
        written += len(wav)
        duration = frames_ms(wav)
        peaks = json.dumps(waveform_peaks(wav), separators=(",", ":"))
        plan.samples[i] = SampleAudio(
            text, len(wav), hashlib.sha256(wav).hexdigest(), duration, peaks, result.engine
        )
    return stream_index, written


def stretch_wav(wav: bytes, size: int) -> bytes:
    """Return a WAV of about `size` bytes: `wav`'s speech repeated (same format)."""
    with wave.open(io.BytesIO(wav)) as source:
        params, pcm = source.getparams(), source.readframes(source.getnframes())
    repeats = max(1, (size - 44) // len(pcm))
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(pcm * repeats + pcm[: (size - 44 - repeats * len(pcm)) // 2 * 2])
    return out.getvalue()


def frames_ms(wav: bytes) -> int:
    with wave.open(io.BytesIO(wav)) as source:
        return round(source.getnframes() * 1000 / source.getframerate())


def speak_voice_samples(spec: Spec, accounts: Accounts) -> None:
    """Give `voice_audio_samples` of big's custom voices real reference audio (≥ 10 s)."""
    from dashboard.audio import probe_audio
    from dashboard.storage import LocalStorage
    from dashboard.tts import VoiceRef, get_engine

    rng = random.Random(spec.seed + 11)
    bank = TextBank(spec.seed + 11, sentences=200)
    engine = get_engine("espeak")
    storage = LocalStorage(settings.OBJECTS_DIR)
    big_rows = [k for k, row in enumerate(accounts.voice_rows) if row[1] == accounts.orgs[0].id]
    for k in rng.sample(big_rows, min(spec.voice_audio_samples, len(big_rows))):
        row = list(accounts.voice_rows[k])
        wav = engine.synthesize(bank.text(260, rng), VoiceRef(row[2], row[5], "CUSTOM")).wav
        storage.put(row[7], io.BytesIO(wav), content_type="audio/wav")
        info = probe_audio(wav)
        row[8], row[9], row[10] = hashlib.sha256(wav).hexdigest(), len(wav), info.duration_ms
        accounts.voice_rows[k] = tuple(row)


SNAPSHOTS_SQL = """
WITH days AS (
    SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') d
), g AS (
    SELECT g.org_id, (g.created_at AT TIME ZONE 'UTC')::date AS day, g.status,
           g.character_count, COALESCE(g.duration_ms, 0) AS audio_ms, g.voice_id,
           g.voice_name, g.created_by, v.variant, v.category
    FROM generations g LEFT JOIN voices v ON v.id = g.voice_id
    WHERE g.created_at >= %(first)s::date AND g.created_at < %(last)s::date + 1
), ok AS (SELECT * FROM g WHERE status = 'succeeded'),
per_voice AS (
    SELECT org_id, day, jsonb_object_agg(k, jsonb_build_object(
               'name', name, 'variant', variant, 'generations', n, 'characters', c,
               'audio_ms', a)) AS by_voice, count(*) AS voices_used
    FROM (SELECT org_id, day, COALESCE(voice_id::text, 'deleted:' || voice_name) AS k,
                 min(voice_name) AS name, min(variant) AS variant, count(*) AS n,
                 sum(character_count) AS c, sum(audio_ms) AS a
          FROM ok GROUP BY 1, 2, 3) x
    GROUP BY 1, 2
), per_category AS (
    SELECT org_id, day, jsonb_object_agg(k, jsonb_build_object(
               'generations', n, 'characters', c, 'audio_ms', a)) AS by_category
    FROM (SELECT org_id, day, COALESCE(category, 'DELETED') AS k, count(*) AS n,
                 sum(character_count) AS c, sum(audio_ms) AS a
          FROM ok GROUP BY 1, 2, 3) x
    GROUP BY 1, 2
), per_member AS (
    SELECT x.org_id, x.day, jsonb_object_agg(x.k, jsonb_build_object(
               'name', COALESCE(u.display_name, 'Former member'), 'generations', x.n,
               'characters', x.c, 'audio_ms', x.a)) AS by_member
    FROM (SELECT org_id, day, COALESCE(created_by::text, 'former') AS k, count(*) AS n,
                 sum(character_count) AS c, sum(audio_ms) AS a
          FROM ok GROUP BY 1, 2, 3) x
    LEFT JOIN users u ON u.id::text = x.k
    GROUP BY 1, 2
), totals AS (
    SELECT org_id, day, count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           COALESCE(sum(character_count) FILTER (WHERE status = 'succeeded'), 0) AS characters,
           COALESCE(sum(audio_ms) FILTER (WHERE status = 'succeeded'), 0) AS audio_ms,
           -- What the ledger bills (LEDGER_SQL: a charge per generation that did not
           -- fail), all of it from the dashboard.
           count(*) FILTER (WHERE status <> 'failed') AS submissions,
           COALESCE(sum(character_count) FILTER (WHERE status <> 'failed'), 0) AS billed
    FROM g GROUP BY 1, 2
)
INSERT INTO analytics_snapshots (
    id, org_id, day, generations_succeeded, generations_failed, characters, audio_ms,
    voices_used, custom_voices, members, by_voice, by_category, by_member,
    characters_billed, by_source, created_at, updated_at)
SELECT
    -- UUIDv7 from the time the snapshot was taken (five past midnight the next day).
    encode(set_byte(overlay(uuid_send(gen_random_uuid()) PLACING
        substring(int8send((extract(epoch FROM d.day + 1) * 1000)::bigint + 300000) FROM 3)
        FROM 1 FOR 6), 6, 112 + (random() * 15)::int), 'hex')::uuid,
    o.id, d.day, COALESCE(t.succeeded, 0), COALESCE(t.failed, 0), COALESCE(t.characters, 0),
    COALESCE(t.audio_ms, 0), COALESCE(pv.voices_used, 0),
    (SELECT count(*) FROM voices v WHERE v.org_id = o.id AND v.created_at < d.day + 1),
    (SELECT count(*) FROM memberships m WHERE m.org_id = o.id AND m.created_at < d.day + 1),
    COALESCE(pv.by_voice, '{}')::json, COALESCE(pc.by_category, '{}')::json,
    COALESCE(pm.by_member, '{}')::json,
    COALESCE(t.billed, 0),
    CASE WHEN COALESCE(t.billed, 0) > 0 THEN json_build_object('web', json_build_object(
        'name', 'Dashboard', 'kind', 'web', 'submissions', t.submissions,
        'characters', t.billed)) ELSE '{}'::json END,
    (d.day + 1)::timestamp AT TIME ZONE 'UTC' + interval '5 minutes',
    (d.day + 1)::timestamp AT TIME ZONE 'UTC' + interval '5 minutes'
FROM organizations o CROSS JOIN days d
LEFT JOIN totals t ON t.org_id = o.id AND t.day = d.day
LEFT JOIN per_voice pv ON pv.org_id = o.id AND pv.day = d.day
LEFT JOIN per_category pc ON pc.org_id = o.id AND pc.day = d.day
LEFT JOIN per_member pm ON pm.org_id = o.id AND pm.day = d.day
"""


def copy_rows(cursor, table: str, columns: Sequence[str], rows, freeze: bool = False) -> int:
    """COPY `rows` into `table`; return how many."""
    options = " WITH (FREEZE)" if freeze else ""
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


class Phases:
    """Time the loader's phases and print each as it ends."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.clock = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.clock, 2)
        self.clock = now
        log(f"{name}: {self.timings[name]:.1f} s")


LEDGER_SQL = (
    "INSERT INTO usage_ledger "
    "(id, org_id, generation_id, user_id, source, kind, characters, counted_at, created_at) "
    "SELECT gen_random_uuid(), org_id, id, created_by, 'web', 'charge', character_count, "
    "created_at, created_at FROM generations WHERE status <> 'failed'"
)


def load(spec: Spec) -> dict[str, float]:
    """Load the data set as the owner; return phase timings.

    One transaction holds the rows (generations COPY FREEZE-d with their secondary
    indexes and foreign keys dropped). Then two connections rebuild in parallel, one
    core each: the trigram GIN index (the single slowest step) on one; the B-tree
    indexes and the snapshots on the other; then the foreign keys are checked and
    the marker is set last.
    """
    import threading

    import psycopg
    from psycopg import sql

    phases = Phases()
    now_us = int(time.time() * 1_000_000)
    bank = TextBank(spec.seed)
    bench_hash, other_hash = password_hashes()
    accounts = plan_accounts(spec, bank, now_us, bench_hash, other_hash)
    plan = plan_generations(spec, len(accounts.orgs), now_us)
    phases.done("plan rows")

    with psycopg.connect(settings.owner_url(), autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        cur.execute("SET LOCAL synchronous_commit = off")
        system = [
            SystemVoice(str(r[0]), r[1])
            for r in cur.execute("SELECT id, name FROM voices WHERE org_id IS NULL ORDER BY name")
        ]
        if len(system) != 20:
            raise SystemExit(f"bench.data: expected 20 system voices, found {len(system)}")
        speak_voice_samples(spec, accounts)
        stream_index, written = speak_samples(spec, plan, accounts, system)
        phases.done(f"speak {len(plan.samples)} sample objects ({written / 1e6:.0f} MB)")

        copy_rows(cur, "organizations", ORG_COLUMNS, accounts.org_rows)
        copy_rows(cur, "users", USER_COLUMNS, accounts.user_rows)
        copy_rows(cur, "memberships", MEMBERSHIP_COLUMNS, accounts.membership_rows)
        copy_rows(cur, "voices", VOICE_COLUMNS, accounts.voice_rows)
        phases.done("copy organisations, users, memberships, voices")

        indexes = cur.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), am.amname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE i.indrelid = 'generations'::regclass AND NOT i.indisprimary"
        ).fetchall()
        foreign_keys = cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'generations'::regclass AND contype = 'f'"
        ).fetchall()
        for name, _ in foreign_keys:
            cur.execute(f'ALTER TABLE generations DROP CONSTRAINT "{name}"')
        for name, _, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        # TRUNCATE in this transaction is what lets COPY FREEZE write frozen, all-visible
        # rows: no hint-bit rewrite on first read, no VACUUM needed for index-only scans.
        cur.execute("TRUNCATE generations")
        count = copy_rows(
            cur,
            "generations",
            GENERATION_COLUMNS,
            generation_rows(plan, accounts, system, bank, spec.seed),
            freeze=True,
        )
        conn.commit()
        phases.done(f"copy {count:,} generations")

    def build(definitions: Sequence[tuple[str, str, str]], then: str | None = None) -> None:
        with psycopg.connect(settings.owner_url(), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '1GB'")
            # JIT would spend seconds compiling the one-off snapshot query.
            conn.execute("SET jit = off")
            conn.execute("SET TIME ZONE 'UTC'")
            for name, definition, method in definitions:
                started = time.perf_counter()
                # GIN builds slower with a huge accumulator (its posting lists outgrow
                # the CPU caches): 64 MB, the server default, beat 1 GB by 40 % here.
                conn.execute(f"SET maintenance_work_mem = '{'64MB' if method == 'gin' else '1GB'}'")
                conn.execute(definition)
                log(f"  index {name}: {time.perf_counter() - started:.1f} s")
            if then:
                started = time.perf_counter()
                result = conn.execute(then, {"first": first, "last": last})
                log(
                    f"  {result.rowcount:,} analytics snapshots: "
                    f"{time.perf_counter() - started:.1f} s"
                )

    last = dt.datetime.fromtimestamp(now_us / 1e6, dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=spec.days - 1)
    gin = [i for i in indexes if i[2] == "gin"]
    failures: list[BaseException] = []

    def gin_thread() -> None:
        try:
            build(gin)
        except BaseException as exc:  # reported below, after the other side finishes
            failures.append(exc)

    worker = threading.Thread(target=gin_thread, name="gin-index")
    worker.start()
    build([i for i in indexes if i[2] != "gin"], then=SNAPSHOTS_SQL)
    worker.join()
    if failures:
        raise failures[0]
    phases.done("indexes and analytics snapshots (two connections)")

    with psycopg.connect(settings.owner_url(), autocommit=True) as conn:
        for name, definition in foreign_keys:
            conn.execute(f'ALTER TABLE generations ADD CONSTRAINT "{name}" {definition}')
        phases.done("re-create and check foreign keys")
        # What the app writes when it accepts a submission (`generations.ledger.charge`):
        # the quota and the analytics quota bar sum these lines, not the generations.
        conn.execute(LEDGER_SQL)
        phases.done("usage ledger: a charge per generation that did not fail")
        conn.execute("VACUUM (ANALYZE)")
        phases.done("vacuum and analyze")
        marker = f"{spec.marker()} stream={plan.ids[stream_index]}"
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(settings.DB_NAME), sql.Literal(marker)
            )
        )
    return phases.timings


def stream_generation_id() -> str | None:
    """Return the id of the generation whose audio is the 50 MB object."""
    marker = current_marker() or ""
    _, _, stream = marker.partition(" stream=")
    return str(uuid.UUID(stream)) if stream else None


def write_timings(timings: dict[str, float], total: float) -> None:
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "total_seconds": round(total, 1),
        "phases": timings,
    }
    (settings.DATA_DIR / "generation-time.json").write_text(json.dumps(record, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rebuild", action="store_true", help="drop the bench database first")
    args = parser.parse_args(argv)
    spec = Spec.from_env()
    started = time.perf_counter()
    ensure_roles_and_database(args.rebuild)
    marker = current_marker()
    if not marker and has_generations():
        log("the bench database holds data from an interrupted run; rebuilding it")
        ensure_roles_and_database(rebuild=True)
    if marker and marker.startswith(spec.marker()):
        log(f"data present in {settings.DB_NAME} ({spec.generations:,} generations); skipping")
        return 0
    if marker:
        raise SystemExit(
            f"bench.data: {settings.DB_NAME} holds another data set ({marker}); "
            "run `python -m bench.data --rebuild`"
        )
    # A fresh load: objects of an earlier data set belong to rows that are gone.
    shutil.rmtree(settings.OBJECTS_DIR, ignore_errors=True)
    owner = settings.owner_url()
    timings = {"flask db upgrade": round(run_flask("db", "upgrade", database_url=owner), 2)}
    timings["flask rls grant"] = round(
        run_flask("rls", "grant", settings.WEB_ROLE, database_url=owner), 2
    )
    timings["flask seed"] = round(run_flask("seed", database_url=owner), 2)
    log(f"schema, grant and system voices: {sum(timings.values()):.1f} s")
    timings |= load(spec)
    total = time.perf_counter() - started
    write_timings(timings, total)
    log(f"done in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
