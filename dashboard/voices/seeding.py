"""Seed the system voices: prepare each one's reference audio, then create or update its row
and upload the audio whose content changed. Functions here flush; the caller commits."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text

from dashboard.audio import AudioInfo, InvalidAudio, probe_audio
from dashboard.extensions import db
from dashboard.models import Voice, VoiceVariant, new_id
from dashboard.storage import ObjectNotFound, Storage, system_voice_key
from dashboard.tts import Engine, VoiceRef, sample_text
from dashboard.tts.catalog import SYSTEM_VOICES, SystemVoice

# Any constant works; it only has to be the same for every seeding process.
SEED_LOCK_ID = 0x766F78_5EED


class SeedError(Exception):
    """Seeding cannot proceed; the message names the problem."""


@dataclass(frozen=True, slots=True)
class ReferenceAudio:
    """A system voice's reference audio, ready to upload."""

    data: bytes
    sha256: str
    info: AudioInfo


@dataclass(slots=True)
class SeedReport:
    """What a seed run did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Tell whether the run changed anything at all."""
        return bool(self.created or self.updated or self.uploaded)


def prepare_reference_audio(
    specs: Sequence[SystemVoice],
    engine: Engine,
    audio_dir: Path | None = None,
    progress: Callable[[SystemVoice], None] | None = None,
) -> dict[str, ReferenceAudio]:
    """Read `{Name}.wav` from `audio_dir`, or synthesise a sample, for every voice."""
    if audio_dir is not None:
        missing = [s.name for s in specs if not (audio_dir / f"{s.name}.wav").is_file()]
        if missing:
            raise SeedError(f"{audio_dir} has no WAV file for: {', '.join(missing)}")
    prepared: dict[str, ReferenceAudio] = {}
    for spec in specs:
        if audio_dir is not None:
            path = audio_dir / f"{spec.name}.wav"
            data = path.read_bytes()
            source = str(path)
        else:
            voice = VoiceRef(name=spec.name, language=spec.language)
            data = engine.synthesize(sample_text(spec.language), voice).wav
            source = f"the {engine.name} engine"
        try:
            info = probe_audio(data)
        except InvalidAudio as exc:
            raise SeedError(f"reference audio for {spec.name} from {source}: {exc}") from exc
        prepared[spec.name] = ReferenceAudio(data, hashlib.sha256(data).hexdigest(), info)
        if progress:
            progress(spec)
    return prepared


def lock_system_voices() -> None:
    """Serialise seeders: two at once must still end with exactly one row per voice."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SEED_LOCK_ID})


def seed_system_voices(
    storage: Storage,
    audio: dict[str, ReferenceAudio],
    new_keys: list[str],
    specs: Sequence[SystemVoice] = SYSTEM_VOICES,
    progress: Callable[[str, str], None] | None = None,
) -> SeedReport:
    """Create or update the system voices and upload audio whose content changed.

    Keys of objects written for voices that did not exist yet are appended to
    `new_keys`, so the caller can remove them if the transaction fails to commit.
    """
    lock_system_voices()
    existing = {
        v.name: v
        for v in db.session.scalars(select(Voice).where(Voice.variant == VoiceVariant.SYSTEM))
    }
    report = SeedReport()
    for spec in specs:
        ref = audio[spec.name]
        voice = existing.get(spec.name)
        created = voice is None
        if voice is None:
            voice = Voice(id=new_id(), variant=VoiceVariant.SYSTEM, org_id=None, name=spec.name)
        key = system_voice_key(voice.id)
        if created or not _object_matches(storage, voice, key, ref):
            storage.put(key, io.BytesIO(ref.data), content_type=ref.info.content_type)
            report.uploaded.append(spec.name)
            if created:
                new_keys.append(key)
        changed = _apply(voice, spec, key, ref)
        if created:
            db.session.add(voice)
            report.created.append(spec.name)
            outcome = "created"
        elif changed or spec.name in report.uploaded:
            report.updated.append(spec.name)
            outcome = "updated"
        else:
            report.unchanged.append(spec.name)
            outcome = "unchanged"
        if progress:
            progress(spec.name, outcome)
    db.session.flush()
    return report


def _object_matches(storage: Storage, voice: Voice, key: str, ref: ReferenceAudio) -> bool:
    if voice.audio_key != key or voice.audio_sha256 != ref.sha256:
        return False
    try:
        return storage.stat(key).size == len(ref.data)
    except ObjectNotFound:
        return False


def _apply(voice: Voice, spec: SystemVoice, key: str, ref: ReferenceAudio) -> bool:
    """Copy the wanted state onto `voice`; return whether any field changed."""
    wanted = {
        "description": spec.description,
        "category": spec.category,
        "language": spec.language,
        "audio_key": key,
        "audio_sha256": ref.sha256,
        "audio_size": len(ref.data),
        "audio_duration_ms": ref.info.duration_ms,
        "audio_content_type": ref.info.content_type,
    }
    changed = False
    for name, value in wanted.items():
        if getattr(voice, name) != value:
            setattr(voice, name, value)
            changed = True
    return changed
