"""Factories that insert rows directly (not through HTTP); each returns the new object."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
from typing import Any

from dashboard.audio import waveform_peaks
from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.models import (
    Generation,
    GenerationStatus,
    MemberRole,
    Membership,
    Organization,
    User,
    Voice,
    VoiceCategory,
    VoiceVariant,
)

_seq = itertools.count(1)


def make_org(**kw: Any) -> Organization:
    n = next(_seq)
    org = Organization(slug=kw.pop("slug", f"org-{n}"), name=kw.pop("name", f"Org {n}"), **kw)
    db.session.add(org)
    db.session.flush()
    return org


def make_user(**kw: Any) -> User:
    n = next(_seq)
    user = User(
        email=kw.pop("email", f"user{n}@example.com"),
        display_name=kw.pop("display_name", f"User {n}"),
        password_hash=kw.pop("password_hash", "not-a-real-hash"),
        **kw,
    )
    db.session.add(user)
    db.session.flush()
    return user


def make_membership(user: User, org: Organization, role: MemberRole = MemberRole.MEMBER):
    membership = Membership(user=user, org=org, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def make_voice(org: Organization | None = None, **kw: Any) -> Voice:
    n = next(_seq)
    voice = Voice(
        org_id=org.id if org else None,
        variant=VoiceVariant.CUSTOM if org else VoiceVariant.SYSTEM,
        name=kw.pop("name", f"Voice {n}"),
        category=kw.pop("category", VoiceCategory.GENERAL),
        **kw,
    )
    db.session.add(voice)
    db.session.flush()
    return voice


def make_generation(org: Organization, voice: Voice | None = None, **kw: Any) -> Generation:
    text = kw.pop("text", "Hello from Voxboard.")
    generation = Generation(
        org_id=org.id,
        voice_id=voice.id if voice else None,
        voice_name=kw.pop("voice_name", voice.name if voice else "Gone"),
        text=text,
        character_count=kw.pop("character_count", len(text)),
        **kw,
    )
    db.session.add(generation)
    db.session.flush()
    accepted = GenerationStatus(generation.status) is not GenerationStatus.FAILED
    if accepted and generation.character_count > 0:
        # What the app does when it accepts a submission: a failed one was refunded.
        ledger.charge(generation, counted_at=generation.created_at)
    return generation


@functools.cache
def speech_sample(text: str = "Hello from Voxboard.") -> tuple[bytes, int]:
    """Return (WAV bytes, duration in ms) of `text` spoken by eSpeak (cached per text)."""
    from dashboard.tts import VoiceRef, get_engine

    result = get_engine("espeak").synthesize(text, VoiceRef(name="Aaron"))
    return result.wav, result.duration_ms


def finish_generation(generation: Generation, storage, wav: bytes | None = None) -> Generation:
    """Store real audio for `generation` and mark it succeeded, as a finished job would."""
    from dashboard.storage import generation_key

    if wav is None:
        wav, duration_ms = speech_sample(generation.text[:200])
    else:
        duration_ms = None
    key = generation_key(generation.org_id, generation.id, "t1")
    storage.put(key, io.BytesIO(wav), content_type="audio/wav")
    if duration_ms is None:
        from dashboard.audio import probe_audio

        duration_ms = probe_audio(wav).duration_ms
    generation.status = GenerationStatus.SUCCEEDED
    generation.audio_key = key
    generation.audio_size = len(wav)
    generation.audio_sha256 = hashlib.sha256(wav).hexdigest()
    generation.duration_ms = duration_ms
    generation.engine = "espeak-ng (test)"
    generation.peaks = waveform_peaks(wav)
    generation.attempts = max(generation.attempts or 0, 1)
    db.session.flush()
    return generation


def detach(obj):
    """Load `obj`'s columns and detach it, so tests can use it after the app context ends."""
    db.session.refresh(obj)
    db.session.expunge(obj)
    return obj


def make_api_key(org: Organization, scopes=None, **kw: Any):
    """Add an API key to `org` (every scope unless told); return (key, secret)."""
    from dashboard.api.services import create_key
    from dashboard.models import ApiScope

    return create_key(
        org.id,
        kw.pop("created_by", None),
        kw.pop("name", f"Key {next(_seq)}"),
        list(ApiScope) if scopes is None else scopes,
        **kw,
    )
