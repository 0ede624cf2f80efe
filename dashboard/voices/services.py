"""Write custom voices (create, edit, delete). Functions here flush; the caller commits.

Object first, row second: the audio is uploaded, then the row is flushed; the caller
commits inside `consistency.new_objects_removed_on_error` so a failed commit takes the new
object with it. Replaced or deleted audio is removed only after the commit
(`discard_object`), so a row never points at a missing object.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import (
    Generation,
    Voice,
    VoiceCategory,
    VoiceVariant,
    WebhookEventType,
    new_id,
)
from dashboard.storage import Storage, StorageError, custom_voice_key, custom_voice_revision_key
from dashboard.voices.reference_audio import CheckedAudio, VoiceInputError
from dashboard.webhooks import events as webhook_events
from dashboard.webhooks import payloads as webhook_payloads

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CustomVoiceFields:
    """What a person sets on a custom voice (everything but the audio)."""

    name: str
    description: str | None
    category: VoiceCategory
    language: str


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
    """Upload the reference audio, then add the voice's row (flushed, not committed).

    The `voice.created` webhook event goes in the same transaction (the outbox).
    """
    if custom_name_taken(fields.name, org_id):
        raise name_taken_error(fields.name)
    voice = Voice(id=new_id(), org_id=org_id, variant=VoiceVariant.CUSTOM)
    _apply_fields(voice, fields)
    _store_audio(storage, voice, custom_voice_key(org_id, voice.id), audio, new_keys)
    db.session.add(voice)
    db.session.flush()
    webhook_events.emit(
        org_id, WebhookEventType.VOICE_CREATED, lambda: webhook_payloads.voice_data(voice)
    )
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
    if voice.variant is not VoiceVariant.CUSTOM or voice.org_id is None:
        raise ValueError("system voices are read-only")
    key, org_id = voice.audio_key, voice.org_id
    # The voice as it was, for the `voice.deleted` event (its audio URL no longer answers).
    webhook_events.emit(
        org_id, WebhookEventType.VOICE_DELETED, lambda: webhook_payloads.voice_data(voice)
    )
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
