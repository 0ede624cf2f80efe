"""The public API's webhook endpoints (`webhooks:manage`): add, list, show and delete.

Thin over `dashboard.webhooks.services`, which checks a URL and the event types with
the rules deliveries apply and keeps the signing secret encrypted. The secret is
answered once, by the POST that made it, and never again: the endpoint's schema has
no field for it. Lists are newest first, paged by keyset on `(created_at, id)` (the
index `ix_webhook_endpoints_org_id_created_at`): no OFFSET and no COUNT.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import g, jsonify, url_for
from marshmallow import fields, validate
from sqlalchemy import select, tuple_

from dashboard import keyset
from dashboard.api import auth, webhooks_bp
from dashboard.api.problems import ApiProblem
from dashboard.api.routes import cursor_or_400, needs
from dashboard.api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Holdable, Strict
from dashboard.extensions import db
from dashboard.models import ApiScope, WebhookEndpoint, WebhookEventType
from dashboard.models.webhooks import DESCRIPTION_MAX, URL_MAX
from dashboard.webhooks import queries, services
from dashboard.webhooks.delivery import DISABLE_AFTER_FAILURES

EVENT_TYPES = [t.value for t in WebhookEventType]


# ------------------------------------------------------------------------ schemas


def event_type_field() -> fields.String:
    return fields.String(validate=validate.OneOf(EVENT_TYPES))


class WebhookEndpointSchema(ma.Schema):
    """A webhook endpoint: where the organisation's events of the chosen types are sent."""

    id = fields.UUID(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    event_types = fields.List(event_type_field(), required=True)
    enabled = fields.Boolean(
        required=True, metadata={"description": "false once disabled: nothing is sent."}
    )
    disabled_reason = fields.String(
        allow_none=True, required=True, metadata={"description": "Why it was disabled."}
    )
    consecutive_failures = fields.Integer(
        required=True,
        metadata={
            "description": "Failed attempts in a row since the last success; "
            f"{DISABLE_AFTER_FAILURES} spanning a day or more disable it."
        },
    )
    created_at = fields.DateTime(required=True)


class NewWebhookEndpointSchema(WebhookEndpointSchema):
    """A webhook endpoint just added, with its signing secret (shown only this once)."""

    secret = fields.String(
        required=True,
        metadata={
            "description": "The signing secret (`whsec_…`) to verify deliveries with. "
            "Only this answer shows it: store it now."
        },
    )


class WebhookEndpointCreate(Strict):
    url = Holdable(
        required=True, validate=validate.Length(min=1, max=URL_MAX),
        metadata={
            "description": "Where to POST the events: `https://` (`http://` outside "
            "production), with no user name or password in it.",
            # Documented, not enforced here: `services.check_url` says what is wrong.
            "pattern": r"^https?://\S+$",
        },
    )  # fmt: skip
    description = Holdable(
        load_default="", validate=validate.Length(max=DESCRIPTION_MAX),
        metadata={"description": "What it is for, for the people who manage it."},
    )  # fmt: skip
    event_types = fields.List(
        event_type_field(), required=True, validate=validate.Length(min=1),
        metadata={"description": "The events to send it: one or more."},
    )  # fmt: skip


class WebhookListQuery(Strict):
    cursor = fields.String(
        load_default=None, metadata={"description": "`next_cursor` of the previous page."}
    )
    limit = fields.Integer(
        load_default=LIMIT_DEFAULT, validate=validate.Range(min=1, max=LIMIT_MAX)
    )


class WebhookEndpointPage(ma.Schema):
    data = fields.List(fields.Nested(WebhookEndpointSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "null on the last page."}
    )


# -------------------------------------------------------------------------- reads
#
# The paged read belongs with the area's reads (`dashboard.webhooks.queries`, whose
# `list_endpoints` gives the settings page the whole list); it stays here until that
# module has a paged list to share.

CURSORS = keyset.Keyset("next page", {None: (keyset.TIMESTAMP, keyset.ROW_ID)})


@dataclass(frozen=True, slots=True)
class EndpointPage:
    endpoints: Sequence[WebhookEndpoint]
    next_cursor: str | None = None


def decode_cursor(token: str | None) -> tuple[Any, ...] | None:
    """Return the (created_at, id) in `token`, None without one; raise keyset.InvalidCursor."""
    return CURSORS.decode(token)


def endpoints_page(org_id: uuid.UUID, after: tuple[Any, ...] | None, limit: int) -> EndpointPage:
    """Return one page of the org's endpoints, newest first, and the next page's cursor."""
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.org_id == org_id)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    )
    if after is not None:
        stmt = stmt.where(tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) < tuple_(*after))
    endpoints = db.session.scalars(stmt.limit(limit + 1)).all()
    if len(endpoints) <= limit:
        return EndpointPage(endpoints)
    last = endpoints[limit - 1]
    return EndpointPage(endpoints[:limit], CURSORS.encode((last.created_at, last.id)))


def endpoint_or_404(endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = queries.find_endpoint(endpoint_id)
    if endpoint is None:
        raise ApiProblem(404, f"There is no webhook endpoint {endpoint_id} in this organisation.")
    return endpoint


def refused(exc: services.EndpointError) -> ApiProblem:
    """Turn a refused URL or choice of events into a validation problem naming the field."""
    if exc.field is None:
        return ApiProblem(422, exc.message)
    return ApiProblem(
        422,
        f"The webhook endpoint wasn't added: {exc.field}: {exc.message.rstrip('.')}.",
        "validation",
        [{"path": exc.field, "in": "body", "message": exc.message}],
    )


# -------------------------------------------------------------------------- views


@webhooks_bp.route("", methods=["GET"])
@needs(webhooks_bp, ApiScope.WEBHOOKS_MANAGE)
@webhooks_bp.arguments(WebhookListQuery, location="query", as_kwargs=True)
@webhooks_bp.response(200, WebhookEndpointPage)
def list_webhooks(cursor: str | None, limit: int):
    """List the organisation's webhook endpoints, newest first (never their secrets)."""
    page = endpoints_page(g.org.id, cursor_or_400(decode_cursor, cursor), limit)
    return {"data": page.endpoints, "next_cursor": page.next_cursor}


@webhooks_bp.route("/<uuid:endpoint_id>", methods=["GET"], endpoint="get_webhook")
@needs(webhooks_bp, ApiScope.WEBHOOKS_MANAGE)
@webhooks_bp.response(200, WebhookEndpointSchema)
def get_webhook(endpoint_id: uuid.UUID):
    """Show one webhook endpoint: its events and whether deliveries are failing."""
    return endpoint_or_404(endpoint_id)


@webhooks_bp.route("", methods=["POST"])
@needs(webhooks_bp, ApiScope.WEBHOOKS_MANAGE)
@webhooks_bp.arguments(WebhookEndpointCreate, as_kwargs=True)
@webhooks_bp.response(
    201, NewWebhookEndpointSchema, description="Added; `secret` is shown in this answer only."
)
def create_webhook(url: str, description: str, event_types: list[str]):
    """Add a webhook endpoint for some event types; the answer holds its signing secret."""
    created_by = auth.current_key().created_by
    try:
        new = services.create_endpoint(g.org.id, created_by, url, description, event_types)
    except services.EndpointError as exc:
        db.session.rollback()
        raise refused(exc) from None
    # Dumped before the commit, without reading the row back; the secret is the plain
    # one `create_endpoint` returns (the row holds only its encrypted token).
    body = {**WebhookEndpointSchema().dump(new.endpoint), "secret": new.secret}
    location = url_for("api_webhooks.get_webhook", endpoint_id=new.endpoint.id)
    db.session.commit()
    return jsonify(body), 201, {"Location": location}


@webhooks_bp.route("/<uuid:endpoint_id>", methods=["DELETE"])
@needs(webhooks_bp, ApiScope.WEBHOOKS_MANAGE)
@webhooks_bp.response(204, description="Deleted, with its pending deliveries and its log.")
def delete_webhook(endpoint_id: uuid.UUID):
    """Delete a webhook endpoint: nothing more is sent to it."""
    services.delete_endpoint(endpoint_or_404(endpoint_id))
    db.session.commit()
    return None
