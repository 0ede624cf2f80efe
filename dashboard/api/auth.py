"""How an API request is let in: its bearer key, its org in scope, its rate limit, its count.

In order, for every request to an API blueprint:

1. `authenticate` (an app-wide before_request registered ahead of Flask-Limiter's, so
   the limit can count per key): the `Authorization: Bearer vxb_…` header is read
   strictly; its keyed hash goes into the tenant scope (`tenancy.present_api_key`),
   which on PostgreSQL lets the one matching row of `api_keys` be read; an unknown,
   expired or revoked key is 401. Then the key's organisation enters scope exactly
   as a session membership's does (`tenancy.enter_org`): the application filter and
   row-level security bind every later statement. Cookies are never read here, so
   the API needs no CSRF token, and a session cookie alone gets 401.
2. Flask-Limiter checks `API_RATE_LIMIT` against the key (`rate_limit_key`), shared by
   every API endpoint; `rate_limit_headers` adds `RateLimit-*` (IETF draft) to the
   answer.
3. The view checks its scope (`require_scope`: 403 naming the scope).
4. `count_request` (after_request) adds the request, whether it failed, and the
   characters it submitted to the key's day (`api.counters`: written every few
   seconds, not on every request), and commits.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import DBAPIError

from dashboard import tenancy
from dashboard.api import API_BLUEPRINT_NAMES, API_BLUEPRINTS, counters, keys, queries, services
from dashboard.api.problems import ApiProblem
from dashboard.extensions import csrf, db, limiter
from dashboard.models import ApiKey, ApiScope, utcnow

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="voxboard-api"'}


def is_api_request() -> bool:
    """Tell whether the request is routed to one of the API's endpoints."""
    return request.blueprint in API_BLUEPRINT_NAMES


def invalid_key(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, "invalid-key", headers=WWW_AUTHENTICATE)


def authenticate() -> None:
    """Let the request in with its API key, or answer 401 (see the module doc)."""
    if not is_api_request():
        return
    g.cookieless = True  # `tenancy.claim_session_user` leaves the session cookie alone
    try:
        secret = keys.parse_authorization(request.headers.get("Authorization"))
    except keys.MalformedKey as exc:
        raise invalid_key(str(exc)) from None
    secret_hash = keys.secret_hash(secret)
    tenancy.present_api_key(secret_hash)
    found = queries.key_for_request(secret_hash)
    if found is None:
        raise invalid_key(
            "This API key isn't known: it may be mistyped, or its organisation was deleted."
        )
    key, org = found
    now = utcnow()
    if refusal := key.refusal(now):
        raise invalid_key(refusal)
    tenancy.enter_org(org.id, None)
    g.org, g.api_key = org, key
    # Plain values for the hooks after the view: the objects expire when a write commits,
    # and reading them again would cost a statement.
    g.api_key_ids = (key.id, org.id)
    g.api_wrote = services.note_use(key, request.remote_addr, now)


def current_key() -> ApiKey:
    """Return the key the request came with (only inside API views)."""
    return g.api_key


def require_scope(scope: ApiScope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let the view run only for keys given `scope` (403 naming it otherwise)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_key().has_scope(scope):
                raise ApiProblem(
                    403,
                    f"This API key doesn't have the “{scope.value}” scope this needs. "
                    "Create a key with it in the organisation's settings, under API keys.",
                    "missing-scope",
                )
            return view(*args, **kwargs)

        wrapped.required_scope = scope  # type: ignore[attr-defined]  # read by the tests
        return wrapped

    return decorator


def rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def rate_limit_key() -> str:
    """Count the limit per key (authentication already ran: see the module doc)."""
    ids = g.get("api_key_ids")
    return f"api-key:{ids[0]}" if ids is not None else f"api-address:{request.remote_addr}"


def rate_limit_headers(response: Response) -> Response:
    """Add RateLimit-Limit, -Remaining and -Reset (seconds) for the tightest limit."""
    current = limiter.current_limit
    if current is not None:
        response.headers["RateLimit-Limit"] = str(current.limit.amount)
        response.headers["RateLimit-Remaining"] = str(max(0, current.remaining))
        # reset_at is whole seconds, so the rounding can overshoot the window by one.
        left = math.ceil(current.reset_at - time.time())
        response.headers["RateLimit-Reset"] = str(max(0, min(left, current.limit.get_expiry())))
    return response


def count_request(response: Response) -> Response:
    """Count the request on its key's day; write due counts and commit (`api.counters`).

    The counts a write couldn't store are kept for the next one; a failed write never
    fails the request.
    """
    ids = g.get("api_key_ids")
    if ids is None:
        return response
    key_id, org_id = ids
    counters.add(
        key_id,
        org_id,
        utcnow().date(),
        failed=response.status_code >= 400,
        characters=g.get("api_characters", 0),
    )
    due = counters.take_due()
    if not due:
        if g.pop("api_wrote", False):
            db.session.commit()  # the moved "last used"; a read-only request commits nothing
        return response
    try:
        counters.write(due)
        db.session.commit()
    except DBAPIError:
        log.warning("could not write API request counters; kept for later", exc_info=True)
        db.session.rollback()
        counters.put_back(due)
    return response


def init_app(app: Flask) -> None:
    """Register `authenticate` (call before `limiter.init_app`, see the module doc)."""
    app.before_request(authenticate)


# Once, when this module loads (the blueprints are module-level objects shared by every
# app the process builds): no CSRF (no cookies either), one limit shared by every API
# endpoint, and the two after_request hooks.
for _blueprint in API_BLUEPRINTS:
    csrf.exempt(_blueprint)
    limiter.shared_limit(rate_limit, scope="api", key_func=rate_limit_key)(_blueprint)
    _blueprint.after_request(rate_limit_headers)
    _blueprint.after_request(count_request)
