"""What the API answers with: voices and generations as JSON, and their URLs.

Apart from the request schemas (`schemas.py`) because webhook payloads
(`dashboard.webhooks.payloads`) say exactly the same, and are built where forms and
request parsing have no business (workers, the voices area's services).
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import url_for
from marshmallow import fields

from dashboard.models import Generation, GenerationStatus, Voice, VoiceCategory, VoiceVariant


class VoiceSchema(ma.Schema):
    """A voice: a shared system voice (`org_id` null) or one of the organisation's own."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True, required=True)
    category = fields.Enum(VoiceCategory, by_value=True, required=True)
    language = fields.String(required=True, metadata={"description": "BCP 47 tag, e.g. en-US"})
    variant = fields.Enum(VoiceVariant, by_value=True, required=True)
    audio_url = fields.Method(
        "_audio_url", required=True, allow_none=True,
        metadata={"type": "string", "description": "Its reference audio (Range)."},
    )  # fmt: skip
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)

    def _audio_url(self, voice: Voice) -> str | None:
        if voice.audio_key is None:
            return None
        return url_for("api_voices.audio", voice_id=voice.id, _external=True)


class GenerationSchema(ma.Schema):
    """A generation: its status until the audio is ready, then where to fetch it."""

    id = fields.UUID(required=True)
    status = fields.Enum(GenerationStatus, by_value=True, required=True)
    voice_id = fields.UUID(
        allow_none=True, required=True, metadata={"description": "null once deleted."}
    )
    voice_name = fields.String(required=True)
    text = fields.String(required=True)
    characters = fields.Integer(attribute="character_count", required=True)
    temperature = fields.Float(required=True)
    top_p = fields.Float(required=True)
    top_k = fields.Integer(required=True)
    repetition_penalty = fields.Float(required=True)
    error = fields.String(allow_none=True, required=True)
    duration_ms = fields.Integer(allow_none=True, required=True)
    audio_size = fields.Integer(allow_none=True, required=True)
    audio_url = fields.Method(
        "_audio_url", required=True, allow_none=True,
        metadata={"type": "string", "description": "Set once `status` is succeeded."},
    )  # fmt: skip
    source = fields.Method(
        "_source", required=True,
        metadata={"type": "string", "enum": ["web", "api"]},
    )  # fmt: skip
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True, required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)

    def _audio_url(self, generation: Generation) -> str | None:
        if generation.status is not GenerationStatus.SUCCEEDED or not generation.audio_key:
            return None
        return url_for("api_generations.audio", generation_id=generation.id, _external=True)

    def _source(self, generation: Generation) -> str:
        return "web" if generation.api_key_id is None else "api"


def generation_json(generation: Generation, audio_url: str | None = None) -> dict[str, Any]:
    """Return what `GenerationSchema().dump(generation)` returns, several times faster.

    A page of 50 spends more time in marshmallow than in its SQL, so the list writes
    rows with this; a test holds it equal to the schema's dump for every kind of row.
    `audio_url`: the audio URL with `{id}` for the generation's id (`audio_url_template`).
    """
    ready = generation.status is GenerationStatus.SUCCEEDED and bool(generation.audio_key)
    template = audio_url or audio_url_template()
    started, finished = generation.started_at, generation.finished_at
    return {
        "id": str(generation.id),
        "status": generation.status.value,
        "voice_id": None if generation.voice_id is None else str(generation.voice_id),
        "voice_name": generation.voice_name,
        "text": generation.text,
        "characters": generation.character_count,
        "temperature": float(generation.temperature),
        "top_p": float(generation.top_p),
        "top_k": int(generation.top_k),
        "repetition_penalty": float(generation.repetition_penalty),
        "error": generation.error,
        "duration_ms": generation.duration_ms,
        "audio_size": generation.audio_size,
        "audio_url": template.replace("{id}", str(generation.id)) if ready else None,
        "source": "web" if generation.api_key_id is None else "api",
        "created_at": generation.created_at.isoformat(),
        "started_at": None if started is None else started.isoformat(),
        "finished_at": None if finished is None else finished.isoformat(),
    }


_ID_SLOT = "00000000-0000-0000-0000-000000000000"


def audio_url_template() -> str:
    """Return the generation audio URL with `{id}` where the generation's id goes."""
    url = url_for("api_generations.audio", generation_id=uuid.UUID(_ID_SLOT), _external=True)
    return url.replace(_ID_SLOT, "{id}")
