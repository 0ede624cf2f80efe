"""Voice pages: the public system-voice page, and each organisation's library to browse."""

from __future__ import annotations

import uuid

from flask import abort, current_app, g, redirect, request
from werkzeug.wrappers import Response

from dashboard import htmx, keyset, tenancy
from dashboard.extensions import db
from dashboard.models import Voice
from dashboard.storage import S3Storage, StorageError, get_storage
from dashboard.storage.media import send_stored_object
from dashboard.voices import bp, library_bp, queries

LIBRARY = "voices/library.html"
# A presigned audio link only has to outlive the player's first requests.
PRESIGNED_SECONDS = 300
MANAGE_ENDPOINTS = ("library.edit", "library.delete")


@bp.get("/")
def index():
    """List the system voices with a player for each."""
    voices = db.session.scalars(queries.system_voices()).all()
    return htmx.render_page("voices/system.html", voices=voices)


@bp.get("/voices/<uuid:voice_id>/audio")
def system_voice_audio(voice_id: uuid.UUID):
    """Stream a system voice's reference audio (Range-capable)."""
    voice = queries.get_system_voice(voice_id)
    if voice is None or voice.audio_key is None:
        abort(404, "No such voice.")
    return voice_audio(voice)


@library_bp.get("/", endpoint="index")
def browse():
    """Browse the org's custom voices (keyset pages) and the system voices, filtered.

    htmx gets the results block for a search, or the next page of cards for "Load more".
    """
    filters = queries.LibraryFilters.from_args(request.args)
    try:
        after = queries.decode_cursor(request.args.get("after"), filters.order)
    except keyset.InvalidCursor as exc:
        abort(400, f"{exc} Start again from the first page of the voice library.")
    whole_page = after is None or not htmx.wants_fragment()
    page = queries.custom_voices_page(g.org.id, filters, after, with_system=whole_page)
    context: dict = {"org": g.org, "filters": filters, "page": page, "cards": card_options()}
    if whole_page:
        context.update(
            library=queries.library(g.org.id, filters, page),
            category_choices=queries.CATEGORY_CHOICES,
            sort_choices=queries.SORT_CHOICES,
        )
    return htmx.render_page(LIBRARY, "custom_page" if after else "results", **context)


@library_bp.get("/<uuid:voice_id>/audio")
def audio(voice_id: uuid.UUID):
    """Stream a voice's reference audio to members of the org that can see the voice."""
    return voice_audio(tenancy.get_scoped_or_404(Voice, voice_id))


def card_options() -> dict[str, bool]:
    """Say which actions voice cards offer the caller (endpoints may not exist yet)."""
    endpoints = current_app.view_functions
    manager = tenancy.is_manager()
    return {
        "generate": "generate.index" in endpoints,
        "manage": manager and all(e in endpoints for e in MANAGE_ENDPOINTS),
        "create": manager and "library.new" in endpoints,
    }


def voice_audio(voice: Voice) -> Response:
    """Answer with `voice`'s audio: streamed with Range, or a presigned S3 redirect.

    System audio never changes under an id, so browsers may keep it a while; a custom
    voice's audio can be replaced, so it is revalidated (cheaply, by ETag) every time.
    """
    if voice.audio_key is None:
        # The voice exists (so not 404); uploading audio resolves it.
        abort(409, "This voice has no preview audio yet.")
    storage = get_storage()
    if current_app.config.get("S3_PRESIGNED_REDIRECTS") and isinstance(storage, S3Storage):
        try:
            url = storage.presigned_url(voice.audio_key, expires_in=PRESIGNED_SECONDS)
        except StorageError:
            abort(502, "Audio storage is unavailable right now; please try again shortly.")
        if url is not None:
            response = redirect(url, code=302)
            response.headers["Cache-Control"] = "private, no-store"  # the link expires
            return response
    return send_stored_object(
        storage,
        voice.audio_key,
        size=voice.audio_size or 0,
        etag=voice.audio_sha256 or str(voice.id),
        content_type=voice.audio_content_type or "audio/wav",
        max_age=current_app.config["SYSTEM_AUDIO_MAX_AGE"] if voice.is_system else 0,
    )
