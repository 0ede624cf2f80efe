"""The public API's endpoints: parse (schemas), call the pages' own queries and services, answer.

Every view runs with the key's organisation in scope (`api.auth`), so another org's
id is simply not found (404), in a path, a body or a filter alike. Lists page by
keyset (`next_cursor`); a damaged cursor is 400.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import abort, g, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError

from dashboard import keyset, tenancy
from dashboard.api import auth, generations_bp, idempotency, usage_bp, voices_bp
from dashboard.api.problems import ApiProblem
from dashboard.api.schemas import (
    GenerationCreate,
    GenerationListQuery,
    GenerationPage,
    GenerationSchema,
    IdempotencyHeader,
    UsageSchema,
    VoiceListQuery,
    VoicePage,
    VoiceSchema,
    audio_url_template,
    generation_json,
)
from dashboard.extensions import db
from dashboard.generations import ledger
from dashboard.generations import queries as generation_queries
from dashboard.generations import services as generation_services
from dashboard.generations.jobs import enqueue_generation
from dashboard.generations.routes import download_name
from dashboard.history import queries as history_queries
from dashboard.history import services as history_services
from dashboard.models import ApiScope, Generation, GenerationStatus, Voice, VoiceCategory
from dashboard.storage import StorageError, get_storage
from dashboard.storage.consistency import new_objects_removed_on_error
from dashboard.storage.media import send_stored_object
from dashboard.storage.uploads import FORM_OVERHEAD_BYTES, parse_body_within, upload_limit
from dashboard.tts import SynthesisParams
from dashboard.voices import queries as voice_queries
from dashboard.voices import reference_audio
from dashboard.voices import services as voice_services
from dashboard.voices.forms import NewVoiceForm
from dashboard.voices.manage import STORAGE_PROBLEM, too_large_problem
from dashboard.voices.routes import voice_audio

AUDIO_RESPONSE = {"description": "The audio, whole (200) or one byte range (206)."}
PARTIAL = {
    "description": "One byte range of the audio (`Range: bytes=…`).",
    "content_type": "audio/wav",
}


def needs(blueprint: Any, scope: ApiScope) -> Any:
    """Require `scope` (403 otherwise) and say so in the OpenAPI document's security."""

    def decorator(view: Any) -> Any:
        guarded = auth.require_scope(scope)(view)
        return blueprint.doc(security=[{"apiKey": [scope.value]}])(guarded)

    return decorator


def cursor_or_400(decode: Any, token: str | None, *args: Any) -> Any:
    try:
        return decode(token, *args)
    except keyset.InvalidCursor as exc:
        abort(400, f"{exc} Start again without `cursor`.")


def voice_or_404(voice_id: uuid.UUID) -> Voice:
    voice = tenancy.get_scoped(Voice, voice_id)
    if voice is None:
        raise ApiProblem(404, f"There is no voice {voice_id} this organisation can use.")
    return voice


def generation_or_404(generation_id: uuid.UUID) -> Generation:
    generation = tenancy.get_scoped(Generation, generation_id)
    if generation is None:
        raise ApiProblem(404, f"There is no generation {generation_id} in this organisation.")
    return generation


# ------------------------------------------------------------------------- voices


@voices_bp.route("", methods=["GET"])
@needs(voices_bp, ApiScope.VOICES_READ)
@voices_bp.arguments(VoiceListQuery, location="query", as_kwargs=True)
@voices_bp.response(200, VoicePage)
def list_voices(q: str, category: Any, language: str | None, cursor: str | None, limit: int):
    """List the voices the organisation can use, by name."""
    filters = voice_queries.LibraryFilters(
        q=" ".join(q.split()), category=category, language=language
    )
    after = cursor_or_400(voice_queries.decode_cursor, cursor, voice_queries.Order.NAME)
    page = voice_queries.visible_voices_page(filters, after, limit)
    return {"data": page.voices, "next_cursor": page.next_cursor}


@voices_bp.route("/<uuid:voice_id>", methods=["GET"], endpoint="get_voice")
@needs(voices_bp, ApiScope.VOICES_READ)
@voices_bp.response(200, VoiceSchema)
def get_voice(voice_id: uuid.UUID):
    """Show one voice."""
    return voice_or_404(voice_id)


@voices_bp.route("/<uuid:voice_id>/audio", methods=["GET"], endpoint="audio")
@needs(voices_bp, ApiScope.VOICES_READ)
@voices_bp.response(200, content_type="audio/wav", **AUDIO_RESPONSE)
@voices_bp.alt_response(206, success=True, **PARTIAL)
def voice_reference_audio(voice_id: uuid.UUID):
    """Stream a voice's reference audio, with Range and ETag."""
    return voice_audio(voice_or_404(voice_id))


VOICE_UPLOAD = "VOICE_UPLOAD_MAX_BYTES"
# The multipart body of POST /voices, as the new-voice form takes it.
NEW_VOICE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["name", "audio", "consent"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "description": {"type": "string", "maxLength": 500},
                    "category": {"type": "string", "enum": [c.value for c in VoiceCategory]},
                    "language": {"type": "string", "description": "BCP 47, e.g. en-GB"},
                    "audio": {
                        "type": "string",
                        "format": "binary",
                        "description": "WAV, MP3, FLAC or OGG; 10 s to 5 min; at most 20 MB",
                    },
                    "consent": {
                        "type": "string",
                        "enum": ["y", "true", "on", "1"],
                        "description": "You have the right to use this voice.",
                    },
                },
            }
        }
    },
}
FORM_PART = {"audio": "files"}


def form_problem(form: NewVoiceForm) -> ApiProblem:
    """Turn the form's errors into a validation problem, one entry per message."""
    errors = [
        {"path": name, "in": FORM_PART.get(name, "form"), "message": message}
        for name, messages in form.errors.items()
        for message in messages
    ]
    summary = "; ".join(f"{e['path']}: {e['message'].rstrip('.')}" for e in errors[:3])
    return ApiProblem(422, f"The voice wasn't created: {summary}.", "validation", errors)


@voices_bp.route("", methods=["POST"])
@needs(voices_bp, ApiScope.VOICES_WRITE)
@voices_bp.doc(requestBody=NEW_VOICE_BODY)
@voices_bp.response(201, VoiceSchema, description="Created, with its reference audio.")
def create_voice():
    """Create a custom voice from reference audio: the same checks and consent as the form."""
    if not parse_body_within(upload_limit(VOICE_UPLOAD) + FORM_OVERHEAD_BYTES):
        raise ApiProblem(413, too_large_problem())
    form = NewVoiceForm(meta={"csrf": False})
    if not form.validate():
        raise form_problem(form)
    storage = get_storage()
    fields = form.values()
    try:
        audio = reference_audio.check_reference_audio(
            form.audio.data.stream, upload_limit(VOICE_UPLOAD)
        )
        with new_objects_removed_on_error(storage) as new_keys:
            voice = voice_services.create_custom_voice(storage, g.org.id, fields, audio, new_keys)
            voice_id = voice.id
            # Dumped before the commit: the voice as created, without reading it back.
            body = VoiceSchema().dump(voice)
            db.session.commit()
    except reference_audio.VoiceInputError as exc:
        db.session.rollback()
        where = {"path": exc.field, "in": FORM_PART.get(exc.field, "form")} if exc.field else None
        errors = [{**where, "message": exc.message}] if where else None
        raise ApiProblem(
            exc.status, exc.message, "validation" if errors else None, errors
        ) from None
    except IntegrityError:
        db.session.rollback()  # another request took the name between check and commit
        if not voice_services.custom_name_taken(fields.name, g.org.id):
            raise
        taken = voice_services.name_taken_error(fields.name)
        raise ApiProblem(
            422,
            taken.message,
            "validation",
            [{"path": "name", "in": "form", "message": taken.message}],
        ) from None
    except StorageError:
        db.session.rollback()
        raise ApiProblem(502, STORAGE_PROBLEM) from None
    location = url_for("api_voices.get_voice", voice_id=voice_id)
    return jsonify(body), 201, {"Location": location}


@voices_bp.route("/<uuid:voice_id>", methods=["DELETE"])
@needs(voices_bp, ApiScope.VOICES_WRITE)
@voices_bp.response(204, description="Deleted; its generations keep the voice's name.")
def delete_voice(voice_id: uuid.UUID):
    """Delete one of the organisation's custom voices and its audio (not a system voice)."""
    voice = voice_or_404(voice_id)
    if voice.is_system:
        raise ApiProblem(403, "System voices are shared by every organisation and read-only.")
    key = voice_services.delete_custom_voice(voice)
    db.session.commit()
    voice_services.discard_object(get_storage(), key)
    return None


# -------------------------------------------------------------------- generations


@generations_bp.route("", methods=["POST"])
@needs(generations_bp, ApiScope.GENERATIONS_WRITE)
@generations_bp.arguments(IdempotencyHeader, location="headers", as_kwargs=True)
@generations_bp.arguments(GenerationCreate, as_kwargs=True)
@generations_bp.response(
    202, GenerationSchema, description="Accepted and queued; poll `Location` for the status."
)
def create_generation(idempotency_key: str | None, text: str, voice_id: uuid.UUID, **params: Any):
    """Submit text to speak in a voice; counts against the quotas."""
    key = auth.current_key()
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = idempotency.fingerprint(request.method, request.path, request.get_json())
        earlier = idempotency.recall(key, idempotency_key)
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise ApiProblem(
                    422,
                    "This Idempotency-Key was already used with a different request. "
                    "Use a new key for a new request.",
                    "idempotency-mismatch",
                )
            return accepted(generation_or_404(earlier.generation_id))
    voice = voice_or_404(voice_id)
    try:
        generation = generation_services.submit_generation(
            g.org, None, voice, text, SynthesisParams(**params), api_key=key
        )
    except generation_services.QuotaExceeded as exc:
        db.session.rollback()
        raise ApiProblem(422, str(exc), "quota-exceeded") from None
    if idempotency_key is not None and fingerprint is not None:
        idempotency.remember(key, idempotency_key, fingerprint, generation.id)
    generation_id, characters, org_id = generation.id, generation.character_count, g.org.id
    # Written before the commit: the generation as accepted (queued), without reading
    # it back afterwards.
    body, status, headers = accepted(generation)
    response = jsonify(generation_json(body))
    db.session.commit()
    g.api_characters = characters
    enqueue_generation(generation_id, org_id)
    return response, status, headers


def accepted(generation: Generation) -> tuple[Generation, int, dict[str, str]]:
    location = url_for("api_generations.get_generation", generation_id=generation.id)
    return generation, 202, {"Location": location}


@generations_bp.route("", methods=["GET"])
@needs(generations_bp, ApiScope.GENERATIONS_READ)
@generations_bp.arguments(GenerationListQuery, location="query", as_kwargs=True)
@generations_bp.response(200, GenerationPage)
def list_generations(
    voice_id: uuid.UUID | None,
    status: GenerationStatus | None,
    from_: Any,
    to: Any,
    q: str,
    cursor: str | None,
    limit: int,
):
    """List the organisation's generations, newest first."""
    filters = history_queries.HistoryFilters(
        q=q.strip(), voice_id=voice_id, status=status, date_from=from_, date_to=to
    )
    after = cursor_or_400(history_queries.decode_cursor, cursor)
    page = history_queries.history_page(g.org.id, filters, after, limit)
    if voice_id is not None and not page.rows:
        # Rows in this voice prove it is the org's (or a system voice); an empty page
        # is 404 when the voice is another org's, as in a path.
        voice_or_404(voice_id)
    # Written by `generation_json`, not dumped by the schema: marshmallow would cost more
    # than the page's SQL (the schema still documents the rows, and a test holds the two equal).
    template = audio_url_template()
    rows = [generation_json(row, template) for row in page.rows]
    return jsonify({"data": rows, "next_cursor": page.next_cursor})


@generations_bp.route("/<uuid:generation_id>", methods=["GET"], endpoint="get_generation")
@needs(generations_bp, ApiScope.GENERATIONS_READ)
@generations_bp.response(200, GenerationSchema)
def get_generation(generation_id: uuid.UUID):
    """Show one generation: its status, timings and, once ready, `audio_url`."""
    return generation_or_404(generation_id)


@generations_bp.route("/<uuid:generation_id>/audio", methods=["GET"], endpoint="audio")
@needs(generations_bp, ApiScope.GENERATIONS_READ)
@generations_bp.response(200, content_type="audio/wav", **AUDIO_RESPONSE)
@generations_bp.alt_response(206, success=True, **PARTIAL)
def generation_audio(generation_id: uuid.UUID):
    """Stream a generation's audio with Range and ETag; 409 until it is ready."""
    generation = generation_or_404(generation_id)
    if generation.status is not GenerationStatus.SUCCEEDED or not generation.audio_key:
        raise ApiProblem(
            409,
            f"This generation has no audio yet (it is {generation.status}). "
            "Poll it until its status is succeeded.",
            "not-ready",
        )
    return send_stored_object(
        get_storage(),
        generation.audio_key,
        size=generation.audio_size or 0,
        etag=generation.audio_sha256 or str(generation.id),
        content_type="audio/wav",
        download_name=download_name(generation),
        inline=True,
    )


@generations_bp.route("/<uuid:generation_id>", methods=["DELETE"])
@needs(generations_bp, ApiScope.GENERATIONS_WRITE)
@generations_bp.response(204, description="Deleted; its characters still count (the ledger).")
def delete_generation(generation_id: uuid.UUID):
    """Delete a generation and its audio; the usage it was charged stays charged."""
    key = history_services.delete_generation(generation_or_404(generation_id))
    db.session.commit()
    history_services.discard_objects(get_storage(), [key])
    return None


# ------------------------------------------------------------------------- usage


@usage_bp.route("", methods=["GET"])
@needs(usage_bp, ApiScope.GENERATIONS_READ)
@usage_bp.response(200, UsageSchema)
def usage():
    """This month's characters (UTC) for the organisation and the calling key."""
    start = generation_queries.month_start()
    key = auth.current_key()
    org_used, key_used = ledger.characters_used_by_org_and_key(g.org.id, key.id, start)
    return {
        "organization": figures(org_used, g.org.monthly_character_limit),
        "key": figures(key_used, key.monthly_character_limit),
        "period_start": start,
        "resets_at": dt.datetime.combine(
            generation_queries.next_month(start), dt.time.min, tzinfo=dt.UTC
        ),
    }


def figures(used: int, limit: int | None) -> dict[str, int | None]:
    return {
        "used": used,
        "limit": limit,
        "remaining": None if limit is None else max(0, limit - used),
    }
