"""Create, edit and delete custom voices (admins and owners).

Every route answers in the same order: an organisation the caller isn't in, or a voice
that isn't this organisation's custom voice (another org's, a system voice's, none),
is 404; a role that may not manage voices is 403; then the body: CSRF (400), size
(413), fields and audio (422). A storage failure re-renders the form with 502 and
changes nothing. Success flashes and redirects to the library (303, or `HX-Redirect`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, flash, g, render_template, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from dashboard import htmx, tenancy
from dashboard.extensions import db
from dashboard.formatting import megabytes
from dashboard.models import Voice
from dashboard.storage import StorageError, get_storage
from dashboard.storage.consistency import new_objects_removed_on_error
from dashboard.storage.uploads import body_too_large, receives_upload, upload_limit
from dashboard.voices import library_bp, reference_audio, services
from dashboard.voices.forms import DeleteVoiceForm, EditVoiceForm, NewVoiceForm, VoiceForm
from dashboard.voices.languages import language_choices

FORM_PAGE = "voices/form.html"
FORM_BLOCK = "voice_form"
UPLOAD_SETTING = "VOICE_UPLOAD_MAX_BYTES"
STORAGE_PROBLEM = (
    "We couldn't save the audio right now, so nothing was changed. Please try again in a minute."
)


def too_large_problem() -> str:
    limit = megabytes(upload_limit(UPLOAD_SETTING))
    return (
        f"That upload is larger than {limit}, so it was refused before it was read. "
        "Choose a smaller file: MP3, FLAC or OGG hold the same audio in far fewer bytes."
    )


def custom_voice(view: Callable[..., Any]) -> Callable[..., Any]:
    """Replace the URL's `voice_id` by this organisation's custom voice, or answer 404.

    Applied outside `require_role`, so another organisation's voice is 404 to every
    caller before any question of role; system voices are read-only, so 404 as well.
    """

    @wraps(view)
    def wrapped(voice_id: Any, **kwargs: Any) -> Any:
        voice = tenancy.get_scoped_or_404(Voice, voice_id)
        if voice.is_system:
            abort(404)
        return view(voice=voice, **kwargs)

    return wrapped


def form_page(
    form: VoiceForm, voice: Voice | None = None, status: int = 200, problem: str | None = None
) -> Response:
    """Render the voice form (the page, or its block for htmx) with `status`."""
    response = htmx.render_page(
        FORM_PAGE,
        FORM_BLOCK,
        org=g.org,
        form=form,
        voice=voice,
        problem=problem,
        languages=language_choices(),
        max_bytes=upload_limit(UPLOAD_SETTING),
        limits={
            "size": megabytes(upload_limit(UPLOAD_SETTING)),
            "min_seconds": reference_audio.MIN_REFERENCE_MS // 1000,
            "max_minutes": reference_audio.MAX_REFERENCE_MS // 60_000,
        },
    )
    response.status_code = status
    return response


# ------------------------------------------------------------------------------ views


@library_bp.route("/new", methods=["GET", "POST"])
@receives_upload(UPLOAD_SETTING)
@tenancy.require_role(*tenancy.MANAGERS)
def new():
    """Show the new-voice form (GET); create a voice from an upload or a recording (POST)."""
    if body_too_large():
        return form_page(NewVoiceForm(formdata=None), status=413, problem=too_large_problem())
    form = NewVoiceForm()
    if not form.validate_on_submit():
        return form_page(form, status=422 if request.method == "POST" else 200)
    return save(form)


@library_bp.route("/<uuid:voice_id>/edit", methods=["GET", "POST"])
@receives_upload(UPLOAD_SETTING)
@custom_voice
@tenancy.require_role(*tenancy.MANAGERS)
def edit(voice: Voice):
    """Show a custom voice's form (GET); change its details and maybe its audio (POST)."""
    if body_too_large():
        form = EditVoiceForm(formdata=None, obj=voice)
        return form_page(form, voice, status=413, problem=too_large_problem())
    form = EditVoiceForm(obj=voice)
    if not form.validate_on_submit():
        return form_page(form, voice, status=422 if request.method == "POST" else 200)
    return save(form, voice)


@library_bp.route("/<uuid:voice_id>/delete", methods=["GET", "POST"])
@custom_voice
@tenancy.require_role(*tenancy.MANAGERS)
def delete(voice: Voice):
    """Confirm (GET, works without JavaScript) and delete (POST) a custom voice.

    The row goes first: if the database fails, the audio is still there for the voice
    that still exists. If storage fails after the commit, the voice is deleted all the
    same and the object is left for a sweep (logged, not shown).
    """
    if request.method == "GET":
        return render_template(
            "voices/delete.html",
            org=g.org,
            voice=voice,
            used_by=services.generations_using(voice.id),
            form=DeleteVoiceForm(),
        )
    name = voice.name
    key = services.delete_custom_voice(voice)
    db.session.commit()
    services.discard_object(get_storage(), key)
    flash(f"{name} was deleted.", "success")
    return htmx.redirect_to(url_for("library.index"))


# ----------------------------------------------------------------------------- saving


def save(form: VoiceForm, voice: Voice | None = None) -> Response:
    """Check the audio, write object then row, commit; answer the form on any refusal."""
    storage = get_storage()
    fields = form.values()
    try:
        audio = None
        if form.has_audio:
            audio = reference_audio.check_reference_audio(
                form.audio.data.stream, upload_limit(UPLOAD_SETTING)
            )
        with new_objects_removed_on_error(storage) as new_keys:
            if voice is None:
                services.create_custom_voice(storage, g.org.id, fields, audio, new_keys)
                replaced = None
            else:
                replaced = services.update_custom_voice(storage, voice, fields, audio, new_keys)
            db.session.commit()
    except reference_audio.VoiceInputError as exc:
        db.session.rollback()
        return refused(form, voice, exc)
    except IntegrityError:
        # Another request took the name between our check and our commit.
        db.session.rollback()
        if not services.custom_name_taken(fields.name, g.org.id, voice.id if voice else None):
            raise
        return refused(form, voice, services.name_taken_error(fields.name))
    except StorageError as exc:
        db.session.rollback()
        current_app.logger.warning("voice audio upload failed in %s: %s", g.org.slug, exc)
        return form_page(form, voice, status=502, problem=STORAGE_PROBLEM)
    services.discard_object(storage, replaced)
    if voice is None:
        flash(f"{fields.name} was added to your voices.", "success")
    else:
        flash(f"{fields.name} was saved{' with its new audio' if audio else ''}.", "success")
    return htmx.redirect_to(url_for("library.index"))


def refused(
    form: VoiceForm, voice: Voice | None, error: reference_audio.VoiceInputError
) -> Response:
    """Show a refusal next to its field (or above the form) with its status."""
    if error.field:
        getattr(form, error.field).errors.append(error.message)
        return form_page(form, voice, status=error.status)
    return form_page(form, voice, status=error.status, problem=error.message)
