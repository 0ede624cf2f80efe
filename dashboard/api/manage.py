"""The API keys page of an organisation's settings (admins and owners).

Order of answers, as on every manager page: an org the caller isn't in, or a key that
isn't this org's, is 404; a member is 403; then the form (CSRF 400, fields 422 inline).

A new key's secret is shown once, in the answer to the POST that made it (201, with
`Cache-Control: no-store`): it is never flashed, put in the session or stored, so no
later request can show it. With htmx the form posts in place, so reloading the page
is a plain GET (the secret is gone, as promised); without JavaScript the browser
itself asks before sending the form again. Revoking answers 303 with a flash.
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
from dashboard.api import keys_bp, queries, services
from dashboard.api.forms import NewKeyForm
from dashboard.api.queries import key_status
from dashboard.extensions import db
from dashboard.models import ApiKey, ApiScope, utcnow
from dashboard.models.api_keys import SCOPE_LABELS

PAGE = "api/keys.html"
BLOCK = "keys"


@dataclass(frozen=True, slots=True)
class NewKey:
    """What the page shows of a key it just made, this once."""

    name: str
    secret: str
    curl: str


def page(
    status: int = 200, form: NewKeyForm | None = None, new_key: NewKey | None = None
) -> Response:
    """Render the page (or its `keys` block for htmx): the new key, the form, the list."""
    now = utcnow()
    rows = [{"row": row, "status": key_status(row.key, now)} for row in queries.list_keys(g.org.id)]
    response = htmx.render_page(
        PAGE,
        BLOCK,
        org=g.org,
        rows=rows,
        form=form or NewKeyForm(formdata=None),
        new_key=new_key,
        scope_labels=SCOPE_LABELS,
        now=now,
        today=now.date().isoformat(),
    )
    response.status_code = status
    if new_key is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


def org_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Replace the URL's `key_id` by this org's key, or answer 404 (before any role check)."""

    @wraps(view)
    def wrapped(key_id: Any, **kwargs: Any) -> Any:
        return view(key=queries.find_key(key_id) or abort(404), **kwargs)

    return wrapped


# ------------------------------------------------------------------------------ views


@keys_bp.get("/")
@tenancy.require_role(*tenancy.MANAGERS)
def index():
    """List the org's keys, with the form that creates one."""
    return page()


@keys_bp.post("/")
@tenancy.require_role(*tenancy.MANAGERS)
def create():
    """Create a key and show its secret, once, in this answer."""
    form = NewKeyForm()
    if not form.validate_on_submit():
        return page(422, form)
    key, secret = services.create_key(
        g.org.id, current_user.id, form.name.data, form.chosen_scopes, form.limit, form.expires_at
    )
    db.session.commit()
    new_key = NewKey(key.name, secret, curl_example(secret, key))
    return htmx.trigger(page(201, new_key=new_key), "api-key-created")


@keys_bp.route("/<uuid:key_id>/revoke", methods=["GET", "POST"])
@org_key
@tenancy.require_role(*tenancy.MANAGERS)
def revoke(key: ApiKey):
    """Confirm (GET, works without JavaScript) and revoke (POST) a key."""
    if request.method == "GET":
        status = key_status(key)
        return render_template("api/revoke.html", org=g.org, key=key, status=status)
    name = key.name
    if services.revoke_key(key, current_user.id):
        db.session.commit()
        flash(f"The key “{name}” was revoked: requests with it are refused from now on.", "success")
    else:
        flash(f"The key “{name}” was already revoked.", "info")
    return htmx.redirect_to(url_for(".index"))


# ---------------------------------------------------------------------------- helpers


def curl_example(secret: str, key: ApiKey) -> str:
    """Return a first request the new key may make, as a curl command line.

    Listing voices when it may (it needs no id), else the month's usage, else a
    submission; a key with only `voices:write` gets the voice list too, whose 403
    names the scope it lacks.
    """
    auth = f'  -H "Authorization: Bearer {secret}"'
    if key.has_scope(ApiScope.VOICES_READ) or not (
        key.has_scope(ApiScope.GENERATIONS_READ) or key.has_scope(ApiScope.GENERATIONS_WRITE)
    ):
        return f'curl "{url_for("api_voices.list_voices", limit=5, _external=True)}" \\\n{auth}'
    if key.has_scope(ApiScope.GENERATIONS_READ):
        return f"curl {url_for('api_usage.usage', _external=True)} \\\n{auth}"
    url = url_for("api_generations.create_generation", _external=True)
    body = '{"text": "Hello from Voxboard.", "voice_id": "VOICE_ID"}'
    return "\n".join(
        [
            f"curl -X POST {url} \\",
            f"{auth} \\",
            '  -H "Content-Type: application/json" \\',
            f"  -d '{body}'",
        ]
    )
