"""Voice pages and the system voices' preview audio."""

from __future__ import annotations

import uuid

from flask import abort, current_app

from dashboard.extensions import db
from dashboard.htmx import render_page
from dashboard.media import send_stored_object
from dashboard.storage import get_storage
from dashboard.voices import bp, queries


@bp.get("/")
def index():
    """List the system voices with a player for each."""
    voices = db.session.scalars(queries.system_voices()).all()
    return render_page("voices/system.html", voices=voices)


@bp.get("/voices/<uuid:voice_id>/audio")
def system_voice_audio(voice_id: uuid.UUID):
    """Stream a system voice's reference audio (Range-capable)."""
    voice = queries.get_system_voice(voice_id)
    if voice is None or voice.audio_key is None:
        abort(404, "No such voice.")
    return send_stored_object(
        get_storage(),
        voice.audio_key,
        size=voice.audio_size or 0,
        etag=voice.audio_sha256 or str(voice.id),
        content_type=voice.audio_content_type or "audio/wav",
        max_age=current_app.config["SYSTEM_AUDIO_MAX_AGE"],
    )
