"""Write voices. Functions here flush; the caller commits."""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import soundfile
from sqlalchemy import func, select, text

from dashboard.audio import AudioInfo, InvalidAudio, probe_audio
from dashboard.extensions import db
from dashboard.formatting import megabytes
from dashboard.models import Generation, Voice, VoiceCategory, VoiceVariant, new_id
from dashboard.storage import (
    ObjectNotFound,
    Storage,
    StorageError,
    custom_voice_key,
    custom_voice_revision_key,
    system_voice_key,
)
from dashboard.storage.uploads import read_chunks, stream_size
from dashboard.tts import Engine, VoiceRef
from dashboard.tts.espeak import sample_text
from dashboard.voices.catalog import SYSTEM_VOICES, SystemVoiceSpec

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
    specs: Sequence[SystemVoiceSpec],
    engine: Engine,
    audio_dir: Path | None = None,
    progress: Callable[[SystemVoiceSpec], None] | None = None,
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
    specs: Sequence[SystemVoiceSpec] = SYSTEM_VOICES,
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


def _apply(voice: Voice, spec: SystemVoiceSpec, key: str, ref: ReferenceAudio) -> bool:
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


# ------------------------------------------------------------------ custom voices
#
# An organisation's own voices. Object first, row second: the audio is uploaded, then
# the row is flushed; the caller commits inside `consistency.new_objects_removed_on_error`
# so a failed commit takes the new object with it. Replaced or deleted audio is removed
# only after the commit (`discard_object`), so a row never points at a missing object.

log = logging.getLogger(__name__)

MIN_REFERENCE_MS = 10_000
MAX_REFERENCE_MS = 5 * 60_000
WAV_FORMATS = {"WAV", "WAVEX"}
_DECODE_BLOCK = 64 * 1024


class VoiceInputError(Exception):
    """Input the rules refuse; `message` is for the person, `field` names the input.

    `status` is the HTTP answer: 422 for what they typed or chose, 413 for a file over
    the size limit.
    """

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(frozen=True, slots=True)
class CustomVoiceFields:
    """What a person sets on a custom voice (everything but the audio)."""

    name: str
    description: str | None
    category: VoiceCategory
    language: str


@dataclass(frozen=True, slots=True)
class CheckedAudio:
    """Reference audio that passed every check, still in its (temporary, seekable) stream."""

    stream: BinaryIO
    size: int
    sha256: str
    info: AudioInfo


def _seconds(ms: int) -> str:
    if ms < 60_000:
        return f"{ms / 1000:.1f} seconds"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def check_reference_audio(stream: BinaryIO, max_bytes: int) -> CheckedAudio:
    """Decode `stream` all the way through and return what to store, or raise VoiceInputError.

    The format comes from decoding (soundfile), never from the file name or the declared
    type; the duration is counted from the decoded frames, and a WAV whose header
    announces more audio than the file holds is refused as incomplete.
    """
    size = stream_size(stream)
    if size == 0:
        raise VoiceInputError("The file is empty. Choose the audio file again.", "audio")
    if size > max_bytes:
        raise VoiceInputError(
            f"This file is {megabytes(size)}; the limit is {megabytes(max_bytes)}. "
            "MP3, FLAC or OGG hold the same audio in far fewer bytes than WAV.",
            "audio",
            status=413,
        )
    try:
        info = probe_audio(stream)
    except InvalidAudio:
        raise VoiceInputError(
            "This file could not be read as audio. Upload a WAV, MP3, FLAC or OGG recording.",
            "audio",
        ) from None
    if info.format in WAV_FORMATS:
        _refuse_incomplete_wav(stream, size)
    _check_duration(info.duration_ms)  # the header's claim: refuse hour-long files unread
    frames = _decoded_frames(stream)
    info = AudioInfo(info.format, info.content_type, info.sample_rate, info.channels, frames)
    _check_duration(info.duration_ms)
    digest = hashlib.sha256()
    for chunk in read_chunks(stream):
        digest.update(chunk)
    return CheckedAudio(stream, size, digest.hexdigest(), info)


def _check_duration(duration_ms: int) -> None:
    if duration_ms <= 0:
        raise VoiceInputError("This file contains no audio.", "audio")
    if duration_ms < MIN_REFERENCE_MS:
        raise VoiceInputError(
            f"This recording is only {_seconds(duration_ms)} long. A voice needs at least "
            f"{MIN_REFERENCE_MS // 1000} seconds of speech.",
            "audio",
        )
    if duration_ms > MAX_REFERENCE_MS:
        raise VoiceInputError(
            f"This recording is {_seconds(duration_ms)} long; a voice can use at most "
            f"{MAX_REFERENCE_MS // 60_000} minutes. Trim it and upload it again.",
            "audio",
        )


def _decoded_frames(stream: BinaryIO) -> int:
    """Decode every frame (headers can lie) and return how many there were."""
    stream.seek(0)
    frames = 0
    try:
        with soundfile.SoundFile(stream) as audio:
            while block := len(audio.read(_DECODE_BLOCK, dtype="int16")):
                frames += block
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise VoiceInputError(
            "This file is damaged: its audio can't be decoded all the way through. "
            "Export or record it again.",
            "audio",
        ) from exc
    finally:
        stream.seek(0)
    return frames


def _refuse_incomplete_wav(stream: BinaryIO, size: int) -> None:
    """Refuse a WAV cut short: its `data` chunk announces more bytes than the file has.

    libsndfile quietly plays what is there, which would store a clipped sample and
    report a misleading duration. Writers that stream (size 0 or 0xFFFFFFFF) are let
    through: they never knew the size.
    """
    stream.seek(0)
    try:
        head = stream.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # RF64 and friends: sizes live elsewhere; decoding still checks them
        order = "<" if head[:4] == b"RIFF" else ">"
        offset = 12
        while offset + 8 <= size:
            stream.seek(offset)
            chunk_id, chunk_size = struct.unpack(f"{order}4sI", stream.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    share = max(1, min(99, available * 100 // chunk_size))
                    raise VoiceInputError(
                        f"This WAV file is incomplete: only {share}% of the audio its "
                        "header announces is there. It was probably cut off while being "
                        "copied or exported; export it again.",
                        "audio",
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)
    finally:
        stream.seek(0)


def custom_name_taken(name: str, org_id: uuid.UUID, except_id: uuid.UUID | None = None) -> bool:
    """Tell whether the organisation has another custom voice called `name` (any case).

    The database's UNIQUE (org_id, name) is exact; people read "Narrator" and
    "narrator" as the same voice, so the form refuses both. The org is named rather
    than left to the tenant filter, so the answer is the same inside `all_tenants`.
    """
    stmt = select(Voice.id).where(
        Voice.org_id == org_id,
        Voice.variant == VoiceVariant.CUSTOM,
        func.lower(Voice.name) == name.lower(),
    )
    if except_id is not None:
        stmt = stmt.where(Voice.id != except_id)
    return db.session.scalar(stmt.limit(1)) is not None


def name_taken_error(name: str) -> VoiceInputError:
    """Return the inline error for a name another voice of the org already has."""
    return VoiceInputError(
        f"Your organisation already has a voice called “{name}”. Choose another name.", "name"
    )


def create_custom_voice(
    storage: Storage,
    org_id: uuid.UUID,
    fields: CustomVoiceFields,
    audio: CheckedAudio,
    new_keys: list[str],
) -> Voice:
    """Upload the reference audio, then add the voice's row (flushed, not committed)."""
    if custom_name_taken(fields.name, org_id):
        raise name_taken_error(fields.name)
    voice = Voice(id=new_id(), org_id=org_id, variant=VoiceVariant.CUSTOM)
    _apply_fields(voice, fields)
    _store_audio(storage, voice, custom_voice_key(org_id, voice.id), audio, new_keys)
    db.session.add(voice)
    db.session.flush()
    return voice


def update_custom_voice(
    storage: Storage,
    voice: Voice,
    fields: CustomVoiceFields,
    audio: CheckedAudio | None,
    new_keys: list[str],
) -> str | None:
    """Change a custom voice, uploading replacement audio under a new key; flush.

    Return the key of the audio that was replaced (None when the audio stayed), for the
    caller to remove with `discard_object` once the change is committed.
    """
    if voice.variant is not VoiceVariant.CUSTOM or voice.org_id is None:
        raise ValueError("system voices are read-only")
    renamed = fields.name.lower() != voice.name.lower()
    if renamed and custom_name_taken(fields.name, voice.org_id, except_id=voice.id):
        raise name_taken_error(fields.name)
    _apply_fields(voice, fields)
    replaced = None
    if audio is not None:
        replaced = voice.audio_key
        key = custom_voice_revision_key(voice.org_id, voice.id, new_id().hex)
        _store_audio(storage, voice, key, audio, new_keys)
    db.session.flush()
    return replaced


def delete_custom_voice(voice: Voice) -> str | None:
    """Delete a custom voice's row (flush); return its audio key to discard after the commit.

    Generations made with it keep their `voice_name` and lose only the link: the
    database sets their `voice_id` to NULL.
    """
    if voice.variant is not VoiceVariant.CUSTOM:
        raise ValueError("system voices are read-only")
    key = voice.audio_key
    db.session.delete(voice)
    db.session.flush()
    return key


def generations_using(voice_id: uuid.UUID) -> int:
    """Count the org's generations made with a voice (the delete page says what happens)."""
    return db.session.scalar(select(func.count()).where(Generation.voice_id == voice_id)) or 0


def discard_object(storage: Storage, key: str | None) -> bool:
    """Delete an object no committed row points at any more; log a failure, never raise.

    Called after the commit: the change stands whatever storage says, and an object left
    behind is only wasted space, which a storage sweep reclaims.
    """
    if key is None:
        return True
    try:
        storage.delete(key)
    except StorageError as exc:
        log.warning("could not delete unused audio %s (%s); left for a sweep", key, exc)
        return False
    return True


def _apply_fields(voice: Voice, fields: CustomVoiceFields) -> None:
    voice.name = fields.name
    voice.description = fields.description
    voice.category = fields.category
    voice.language = fields.language


def _store_audio(
    storage: Storage, voice: Voice, key: str, audio: CheckedAudio, new_keys: list[str]
) -> None:
    # Recorded before the upload: a put that fails after the bytes landed (a lost
    # answer, a timeout) may still have left an object for the cleanup to remove.
    new_keys.append(key)
    audio.stream.seek(0)
    storage.put(key, audio.stream, content_type=audio.info.content_type)
    voice.audio_key = key
    voice.audio_sha256 = audio.sha256
    voice.audio_size = audio.size
    voice.audio_duration_ms = audio.info.duration_ms
    voice.audio_content_type = audio.info.content_type
