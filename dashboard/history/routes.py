"""History pages: list and filter an org's generations, delete them, download them as a ZIP.

Every member of the organisation may delete its generations, one or in bulk: members
generate, so they tidy up too, and history is shared by the whole organisation.
Another organisation's generation is 404, like everywhere under /o/<slug>/.

Answers: plain forms get a 303 back to the history (filters kept) with a flash; htmx
gets the affected part of the page — nothing in place of a deleted row, the results
block after a bulk delete — and an `HX-Trigger` event saying what changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from dashboard import htmx, keyset, tenancy
from dashboard.extensions import db
from dashboard.history import bp, queries, services
from dashboard.history.forms import BulkForm, DeleteGenerationForm
from dashboard.history.queries import HistoryFilters, Selection
from dashboard.models import Generation, utcnow
from dashboard.storage import StorageError, get_storage
from dashboard.storage.media import content_disposition

INDEX = "history/index.html"
DELETED_EVENT = "generation-deleted"
BULK_DELETED_EVENT = "generations-deleted"
CHOOSE_ACTION = "Choose whether to download or to delete the selected generations."
NOTHING_SELECTED = (
    "Nothing was selected. Tick the generations you want, "
    "or choose “all generations matching these filters”."
)


@bp.get("/", endpoint="index")
def index():
    """List the org's generations, newest first, 50 at a time, filtered by the query string.

    htmx gets the results block for a filter change, or only the next rows when the
    end of the list scrolls into view (`?after=`).
    """
    filters = HistoryFilters.from_args(request.args)
    try:
        after = queries.decode_cursor(request.args.get("after"))
    except keyset.InvalidCursor as exc:
        abort(400, f"{exc} Start again from the newest generations.")
    if filters.problem:
        return listing(filters, None, status=400)
    return listing(filters, queries.history_page(g.org.id, filters, after))


@bp.route("/<uuid:generation_id>/delete", methods=["GET", "POST"])
def delete(generation_id: uuid.UUID):
    """Confirm (GET, works without JavaScript) and delete (POST) one generation.

    The row goes first; if storage then fails, the object is left for the sweep.
    """
    generation = tenancy.get_scoped_or_404(Generation, generation_id)
    filters = HistoryFilters.from_args(request.args)
    if request.method == "GET":
        form = DeleteGenerationForm()
        return render_template(
            "history/delete.html", org=g.org, generation=generation, filters=filters, form=form
        )
    key = services.delete_generation(generation)
    db.session.commit()
    services.discard_objects(get_storage(), [key])
    return deleted("The generation was deleted.", filters, DELETED_EVENT)


@bp.post("/bulk")
def bulk():
    """Download as a ZIP, or delete, the ticked generations or all matching the filters."""
    form = BulkForm()
    if not form.validate_on_submit():
        # A filter (hidden field) no database can hold says so; anything else is the action.
        abort(400, form.refusal or CHOOSE_ACTION)
    filters = HistoryFilters.from_args(request.form)
    selection = form.selection(request.form)
    if selection.empty:
        return refused(filters, NOTHING_SELECTED)
    if selection.all_matching and filters.problem:
        return listing(filters, None, status=400)
    if form.action.data == "download":
        return download(filters, selection)
    if not form.confirmed.data:
        return confirm_bulk_delete(filters, selection, form)
    return delete_selection(filters, selection)


# --------------------------------------------------------------------------- helpers


def listing(
    filters: HistoryFilters,
    page: queries.HistoryPage | None,
    status: int = 200,
    notice: tuple[str, str] | None = None,
) -> Response:
    """Render the history page, its results block, or (continuing a list) its next rows."""
    context: dict[str, Any] = {
        "org": g.org,
        "filters": filters,
        "page": page,
        "notice": notice,
        "status_choices": queries.STATUS_CHOICES,
        "upto": utcnow().isoformat(),
    }
    if not htmx.wants_fragment():
        context["voices"] = queries.voice_options(g.org.id, filters.voice_id)
    block = "rows" if page is not None and page.after is not None else "results"
    response = htmx.render_page(INDEX, block, **context)
    response.status_code = status
    return response


def first_page(filters: HistoryFilters) -> queries.HistoryPage | None:
    """Return the first page for `filters`, or None when their dates need fixing."""
    return None if filters.problem else queries.history_page(g.org.id, filters)


def deleted(message: str, filters: HistoryFilters, event: str, results: bool = False) -> Response:
    """Answer a delete: flash and 303 back to the history, or tell htmx what changed."""
    if not htmx.wants_fragment():
        flash(message, "success")
        return redirect(url_for(".index", **filters.args()), code=303)
    if results:
        response = listing(filters, first_page(filters), notice=("success", message))
    else:
        response = Response(status=200)  # nothing takes the deleted row's place
    return htmx.trigger(response, event)


def refused(filters: HistoryFilters, message: str) -> Response:
    """Say why a bulk action did nothing: a flash and 303, or the results block with 400."""
    if htmx.wants_fragment():
        return listing(filters, first_page(filters), status=400, notice=("error", message))
    flash(message, "error")
    return redirect(url_for(".index", **filters.args()), code=303)


def download(filters: HistoryFilters, selection: Selection) -> Response:
    """Stream the selection's finished audio and a manifest as one ZIP attachment."""
    try:
        chunks = services.zip_stream(get_storage(), g.org.id, selection)
    except services.NothingToDownload as exc:
        return refused(filters, f"{exc} Only finished generations can be downloaded.")
    except StorageError as exc:
        current_app.logger.warning("history ZIP for %s: storage failed: %s", g.org.slug, exc)
        abort(502, "Audio storage is unavailable right now, so nothing was zipped. Try again soon.")
    name = f"{g.org.slug}-generations-{utcnow():%Y%m%d-%H%M%S}.zip"
    return Response(
        stream_with_context(chunks),
        mimetype="application/zip",
        headers={
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "private, no-store",
        },
    )


def confirm_bulk_delete(filters: HistoryFilters, selection: Selection, form: BulkForm) -> str:
    """Show what a bulk delete will remove, with a button that confirms it (no-JS path)."""
    preview = queries.preview(g.org.id, selection)
    voice = queries.voice_name(filters.voice_id) if selection.all_matching else None
    return render_template(
        "history/bulk_delete.html",
        org=g.org,
        filters=filters,
        selection=selection,
        preview=preview,
        voice=voice,
        upto=form.upto.data or "",
    )


def delete_selection(filters: HistoryFilters, selection: Selection) -> Response:
    """Delete the selection a batch per transaction; discard each batch's objects after it."""
    storage, count = get_storage(), 0
    for batch in services.delete_selected(g.org.id, selection):
        db.session.commit()
        services.discard_objects(storage, batch.keys)
        count += batch.count
    if count == 0:
        message = "Nothing was deleted: the selected generations were already gone."
    else:
        message = f"{count:,} generation{'' if count == 1 else 's'} deleted."
    return deleted(message, filters, BULK_DELETED_EVENT, results=True)
