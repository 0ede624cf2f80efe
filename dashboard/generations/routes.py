"""The generation page, a generation's detail page, its status widget, audio and retry.

Order of answers, as everywhere: an organisation the caller isn't in, or a generation
or voice it can't see, is 404; then CSRF (400), then the form (422 with the errors
inline, including an exceeded quota), then 303 (or the htmx fragment).
"""

from __future__ import annotations

import re
import uuid

from flask import abort, current_app, g, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from dashboard import htmx, tenancy
from dashboard.extensions import db, limiter
from dashboard.generations import bp, generate_bp, queries, services
from dashboard.generations.forms import PARAMETERS, GenerateForm, prefill_from_args
from dashboard.generations.jobs import enqueue_generation, reset_for_retry
from dashboard.models import Generation, GenerationStatus
from dashboard.storage import get_storage
from dashboard.storage.media import send_stored_object

GENERATE_PAGE = "generations/generate.html"
DETAIL_PAGE = "generations/detail.html"
STATUS_PAGE = "generations/status.html"
DOWNLOAD_NAME_WORDS = 8
FINISHED = (GenerationStatus.SUCCEEDED, GenerationStatus.FAILED)


def generation_limit() -> str:
    return current_app.config["GENERATION_RATE_LIMIT"]


def user_key() -> str:
    # The user, not the login id: that names one session, and a second login is free.
    return f"generate:{current_user.id if current_user.is_authenticated else 'anon'}"


@generate_bp.route("/", methods=["GET", "POST"], endpoint="index")
@limiter.limit(
    generation_limit,
    key_func=user_key,
    methods=["POST"],
    error_message="You have started too many generations in a short time. "
    "Wait a minute, then press Generate again.",
)
def generate():
    """Show the generation form (GET, prefilled by `?voice=`, `?text=`, `?from=`); submit it."""
    if request.method == "GET":
        form = GenerateForm(formdata=None, data=prefill(request.args))
        return generate_page(form)
    form = GenerateForm()
    if not form.validate_on_submit():
        return generate_page(form, status=422)
    voice = queries.visible_voice(form.voice_id)
    if voice is None:
        abort(404, "That voice doesn't exist or isn't available to this organisation.")
    try:
        generation = services.submit_generation(
            g.org, current_user.id, voice, form.text.data, form.params()
        )
    except services.QuotaExceeded as exc:
        db.session.rollback()
        form.text.errors.append(str(exc))
        return generate_page(form, status=422)
    generation_id = generation.id
    db.session.commit()
    enqueue_generation(generation_id, g.org.id)
    if htmx.wants_fragment():
        # Read the row again (the commit expired it; touching it before the job would
        # load it while still queued): a quick worker may have finished it already.
        generation = tenancy.get_scoped_or_404(Generation, generation_id)
        return htmx.trigger(generate_page(form, generation=generation), "generation-queued")
    return htmx.redirect_to(url_for("generations.detail", generation_id=generation_id))


def prefill(args) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Form data for a GET: a generation to regenerate (`?from=`), then explicit arguments."""
    data: dict[str, str] = {}
    source = args.get("from")
    if source:
        original = tenancy.get_scoped(Generation, source)
        if original is None:
            abort(404, "The generation to start from doesn't exist (it may have been deleted).")
        data = {"text": original.text, "voice": str(original.voice_id or "")}
        data.update({p.name: f"{getattr(original, p.name):g}" for p in PARAMETERS})
    data.update(prefill_from_args(args))
    return data


def generate_page(
    form: GenerateForm, status: int = 200, generation: Generation | None = None
) -> Response:
    """Render the generation page, or its `generator` block for htmx."""
    selected = None
    try:
        selected = uuid.UUID(form.voice.data) if form.voice.data else None
    except ValueError:
        selected = None
    response = htmx.render_page(
        GENERATE_PAGE,
        "generator",
        org=g.org,
        form=form,
        parameters=PARAMETERS,
        voices=queries.voice_choices(g.org.id, selected),
        selected_voice=selected,
        usage=queries.usage(g.org),
        generation=generation,
    )
    response.status_code = status
    return response


@bp.get("/<uuid:generation_id>", endpoint="detail")
def show(generation_id: uuid.UUID):
    """Show one generation: its player (or live status), text, voice, parameters, actions."""
    return htmx.render_page(DETAIL_PAGE, org=g.org, detail=queries.load_detail(generation_id))


@bp.get("/<uuid:generation_id>/status")
def status(generation_id: uuid.UUID):
    """Show a generation's status widget; htmx polls it until the audio is ready."""
    generation = tenancy.get_scoped_or_404(Generation, generation_id)
    response = htmx.render_page(STATUS_PAGE, "status", org=g.org, generation=generation)
    response.headers["Cache-Control"] = "no-store"
    if generation.status in FINISHED:
        # Pages around the widget (the detail page) refresh what depends on the outcome.
        htmx.trigger(response, "generation-finished")
    return response


@bp.post("/<uuid:generation_id>/retry")
def retry(generation_id: uuid.UUID):
    """Queue a failed generation again (same row, fresh retry budget)."""
    generation = tenancy.get_scoped_or_404(Generation, generation_id)
    if generation.status is not GenerationStatus.FAILED:
        abort(409, f"Only a failed generation can be retried; this one is {generation.status}.")
    try:
        services.check_quota(g.org, generation.character_count)
    except services.QuotaExceeded as exc:
        db.session.rollback()
        abort(422, str(exc))
    reset_for_retry(generation)
    db.session.commit()
    enqueue_generation(generation.id, g.org.id)
    if htmx.wants_fragment():
        return status(generation_id)
    return htmx.redirect_to(url_for("generations.detail", generation_id=generation_id))


@bp.get("/<uuid:generation_id>/audio")
def audio(generation_id: uuid.UUID):
    """Stream a generation's audio (Range, ETag); `?download=1` saves it under a text name."""
    generation = tenancy.get_scoped_or_404(Generation, generation_id)
    if generation.status is not GenerationStatus.SUCCEEDED or not generation.audio_key:
        abort(409, f"This generation has no audio yet (it is {generation.status}).")
    return send_stored_object(
        get_storage(),
        generation.audio_key,
        size=generation.audio_size or 0,
        etag=generation.audio_sha256 or str(generation.id),
        content_type="audio/wav",
        download_name=download_name(generation),
        inline=request.args.get("download") != "1",
    )


def download_name(generation: Generation) -> str:
    """Name the file after the start of its text: "hello-from-voxboard-0f3a9c.wav"."""
    words = re.findall(r"\w+", generation.text.casefold())[:DOWNLOAD_NAME_WORDS]
    stem = "-".join(words)[:60].strip("-") or "speech"
    return f"{stem}-{generation.id.hex[-6:]}.wav"
