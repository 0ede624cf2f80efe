"""The webhooks page of an organisation's settings (admins and owners).

Order of answers, as on every manager page: an org the caller isn't in, or an endpoint
(or a delivery) that isn't this org's, is 404; a member is 403; then the form (CSRF
400, fields 422 inline).

A signing secret is shown once, in the answer to the POST that made it (adding an
endpoint: 201; rotating: 200), with `Cache-Control: no-store`; it is never flashed,
put in the session or shown again, exactly like a new API key. Every other write
commits and answers 303 with a flash (`HX-Redirect` for htmx). Deliveries a write
made (a test event, a redelivery) are queued after the commit by `events.init_app`'s
teardown hook, so the views don't enqueue anything themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import abort, flash, g, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from dashboard import htmx, tenancy
from dashboard.extensions import db
from dashboard.models import WebhookDelivery, WebhookEndpoint, WebhookEventType, utcnow
from dashboard.models.webhooks import TEST_EVENT
from dashboard.webhooks import queries, services, signing, webhooks_bp
from dashboard.webhooks.forms import EndpointForm

PAGE = "webhooks/index.html"
BLOCK = "endpoints"
# What the pages call each event type (the log also shows the test event).
EVENT_NAMES = {event.value: event.label for event in WebhookEventType} | {TEST_EVENT: "Test event"}
PREVIOUS_SECRET_HOURS = int(signing.PREVIOUS_SECRET_VALID.total_seconds() // 3600)


@dataclass(frozen=True, slots=True)
class NewSecret:
    """What a page shows of a signing secret it just made, this once."""

    url: str
    secret: str
    snippet: str


def page(
    status: int = 200, form: EndpointForm | None = None, new: NewSecret | None = None
) -> Response:
    """Render the list (or its `endpoints` block for htmx): the new secret, the list, the form."""
    response = htmx.render_page(
        PAGE,
        BLOCK,
        org=g.org,
        rows=queries.list_endpoints(g.org.id),
        form=form or EndpointForm(formdata=None),
        new=new,
        event_names=EVENT_NAMES,
    )
    response.status_code = status
    if new is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


def org_endpoint(view: Callable[..., Any]) -> Callable[..., Any]:
    """Replace the URL's `endpoint_id` (and `delivery_id`) by this org's rows, or answer 404.

    Before any role check, so a member learns nothing of another org's ids either.
    """

    @wraps(view)
    def wrapped(endpoint_id: Any, **kwargs: Any) -> Any:
        endpoint = queries.find_endpoint(endpoint_id) or abort(404)
        if "delivery_id" in kwargs:
            found = queries.find_delivery(endpoint.id, kwargs.pop("delivery_id"))
            kwargs["found"] = found or abort(404)
        return view(endpoint=endpoint, **kwargs)

    return wrapped


def back_to(endpoint: WebhookEndpoint) -> Response:
    return htmx.redirect_to(url_for(".detail", endpoint_id=endpoint.id))


# ------------------------------------------------------------------------------ views


@webhooks_bp.get("/")
@tenancy.require_role(*tenancy.MANAGERS)
def index():
    """List the org's endpoints, with the form that adds one."""
    return page()


@webhooks_bp.post("/")
@tenancy.require_role(*tenancy.MANAGERS)
def create():
    """Add an endpoint and show its signing secret, once, in this answer."""
    form = EndpointForm()
    if not form.validate_on_submit():
        return page(422, form)
    try:
        made = services.create_endpoint(
            g.org.id, current_user.id, form.url.data, form.description.data, form.chosen_events
        )
    except services.EndpointError as error:
        getattr(form, error.field or "url").errors.append(error.message)
        return page(422, form)
    db.session.commit()
    new = NewSecret(made.endpoint.url, made.secret, verify_snippet(made.secret))
    return htmx.trigger(page(201, new=new), "webhook-endpoint-created")


@webhooks_bp.get("/<uuid:endpoint_id>", endpoint="detail")
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def show(endpoint: WebhookEndpoint):
    """Show an endpoint: its settings, its actions and its delivery log."""
    return render_template(
        "webhooks/endpoint.html",
        org=g.org,
        endpoint=endpoint,
        attempts=queries.recent_attempts(endpoint.id),
        event_names=EVENT_NAMES,
        now=utcnow(),
    )


@webhooks_bp.post("/<uuid:endpoint_id>/test")
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def send_test(endpoint: WebhookEndpoint):
    """Queue a test event for this endpoint alone."""
    if not endpoint.enabled:
        flash("The endpoint is disabled, so nothing is sent to it: enable it first.", "error")
        return back_to(endpoint)
    services.send_test_event(endpoint)
    db.session.commit()
    flash("A test event was sent; its attempt is at the top of the log.", "success")
    return back_to(endpoint)


@webhooks_bp.post("/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver")
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def redeliver(endpoint: WebhookEndpoint, found: WebhookDelivery):
    """Send one of the endpoint's deliveries again, now."""
    if not endpoint.enabled:
        flash("The endpoint is disabled, so nothing is sent to it: enable it first.", "error")
        return back_to(endpoint)
    services.redeliver(found)
    db.session.commit()
    flash("The event was sent again; the new attempt is at the top of the log.", "success")
    return back_to(endpoint)


@webhooks_bp.route("/<uuid:endpoint_id>/rotate", methods=["GET", "POST"])
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def rotate(endpoint: WebhookEndpoint):
    """Confirm (GET), then give the endpoint a new secret and show it, once (POST)."""
    context = {"org": g.org, "endpoint": endpoint, "hours": PREVIOUS_SECRET_HOURS}
    if request.method == "GET":
        return render_template("webhooks/rotate.html", **context)
    secret = services.rotate_secret(endpoint)
    db.session.commit()
    new = NewSecret(endpoint.url, secret, verify_snippet(secret))
    response = Response(
        render_template("webhooks/rotate.html", new=new, **context), mimetype="text/html"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@webhooks_bp.post("/<uuid:endpoint_id>/disable")
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def disable(endpoint: WebhookEndpoint):
    """Stop sending to the endpoint; what was waiting to be sent is cancelled."""
    if not endpoint.enabled:
        flash("The endpoint was already disabled.", "info")
        return back_to(endpoint)
    services.disable(endpoint, f"Disabled by {current_user.display_name}.")
    db.session.commit()
    flash("The endpoint is disabled: nothing is sent to it until it is enabled.", "success")
    return back_to(endpoint)


@webhooks_bp.post("/<uuid:endpoint_id>/enable")
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def enable(endpoint: WebhookEndpoint):
    """Send to the endpoint again, from the next event on."""
    if endpoint.enabled:
        flash("The endpoint was already enabled.", "info")
        return back_to(endpoint)
    services.enable(endpoint)
    db.session.commit()
    flash("The endpoint is enabled: events from now on are sent to it.", "success")
    return back_to(endpoint)


@webhooks_bp.route("/<uuid:endpoint_id>/delete", methods=["GET", "POST"])
@org_endpoint
@tenancy.require_role(*tenancy.MANAGERS)
def delete(endpoint: WebhookEndpoint):
    """Confirm (GET, works without JavaScript) and delete (POST) an endpoint and its log."""
    if request.method == "GET":
        return render_template("webhooks/delete.html", org=g.org, endpoint=endpoint)
    url = endpoint.url
    services.delete_endpoint(endpoint)
    db.session.commit()
    flash(f"The endpoint {url} was deleted with its delivery log.", "success")
    return htmx.redirect_to(url_for(".index"))


# ---------------------------------------------------------------------------- helpers


def verify_snippet(secret: str) -> str:
    """Return a few lines of Python that check a delivery's signature with `secret`."""
    return "\n".join(
        [
            "from standardwebhooks import Webhook",
            "",
            f'webhook = Webhook("{secret}")',
            "# body: the request's raw bytes; headers: its webhook-* headers",
            "event = webhook.verify(body, headers)  # raises if forged",
        ]
    )
