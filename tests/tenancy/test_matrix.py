"""The cross-tenant matrix: no route lets one organisation read or change another's objects.

Every rule of the URL map is in it (read from the map, so a route added later, such as
the API's or the webhooks', joins by itself) or in EXEMPT with the reason. A covered
rule is called:

- with another org's ids in its path, as each role of org A, as a user who belongs to
  A and B (acting in A on B's objects, and in B on A's), and anonymously: 404 (or the
  login redirect), nothing of B's in the answer, and no row or stored object changed
  anywhere (a full snapshot through the owner's connection, etags included);
- with another org's ids in the form fields and query parameters its view reads
  (found by recording what each view reads during its own-org run; each key must be
  classified here): the answer is the one an id that exists nowhere gets, and no row
  of B's changes;
- for its own org with valid data (CONTROLS): a GET answers its exact status (200
  unless said), a write changes what it says it changes, so a route that always
  refuses can't pass.

Runs on SQLite and on PostgreSQL as the web role, which row-level security binds.
The world (tests/tenant_world.py) is built once per backend; writes that succeed
consume fresh objects made for them, so the world's own objects stay as they were.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import secrets
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, url_for
from sqlalchemy import create_engine, event, text
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from dashboard import create_app
from dashboard.api import API_BLUEPRINT_NAMES
from dashboard.extensions import db
from dashboard.members.services import hash_token
from dashboard.models import (
    ApiKey,
    DeliveryStatus,
    Generation,
    GenerationStatus,
    Invitation,
    MemberRole,
    Membership,
    Organization,
    User,
    Voice,
    VoiceCategory,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from dashboard.storage import custom_voice_key, get_storage
from tests import factories
from tests.databases import WEB_ROLE_BACKENDS, make_config, truncate_all
from tests.http import login
from tests.tenant_world import (
    OBJECT_ARGS,
    Snapshot,
    World,
    build_world,
    make_failed_delivery,
    make_webhook_endpoint,
    mentions,
    record_reads,
    recording_reads,
    reference_wav,
    shape,
    store_voice_audio,
    unique,
)

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Every argument that names something of an organisation: ids, its slug, a link's token.
ARG_KINDS = {**OBJECT_ARGS, "org_slug": "slug", "token": "token"}
# Rules that name no object of any organisation, so there is nothing to cross.
EXEMPT = {
    "static": "the app's own CSS, JS and vendored files; <filename> names no tenant object",
    "voices.index": "the public list of system voices, which belong to no organisation",
    "health.healthz": "liveness: reads no tenant data",
    "health.readyz": "readiness: probes the database and storage, reads no tenant data",
    "auth.login": "takes an email and password, no id or slug",
    "auth.signup": "creates a user and their own first organisation; takes no id or slug",
    "auth.logout": "ends the caller's own session; takes no id or slug",
    "auth.change_password": "changes the caller's own password; takes no id or slug",
    "orgs.landing": "redirects to the caller's own first organisation; takes no id or slug",
    "orgs.new": "creates a new organisation owned by the caller; takes no id or slug",
    "api_docs.reference": "the public API reference page, rendered from the document",
    "api-docs.openapi_json": "the public OpenAPI document: describes routes, holds no data",
    "invitations.switch_account": (
        "reads neither its slug nor its token: it logs the caller out of their own session "
        "and redirects to the link, whose page (invitations.accept, covered) does the checking"
    ),
}
# The public API's endpoints authenticate with bearer keys, never a session, so the
# session matrix can't call them; tests/api/test_api_tenancy.py is their matrix (every
# API rule, read from the URL map, with another org's key).


def exempt(endpoint: str) -> bool:
    return endpoint in EXEMPT or endpoint.partition(".")[0] in API_BLUEPRINT_NAMES


# Query and form keys views read, classified: which name an object (its kind)…
PARAM_KINDS = {"voice": "voice", "ids": "generation"}
PARAM_KINDS_BY_ENDPOINT = {("generate.index", "from"): "generation"}
# … and which don't, with why.
NOT_IDS = {
    "q": "free text, searched within the org",
    "text": "the text to speak",
    "status": "a generation status",
    "from": "a date (history, analytics); generate's ?from= is an id, classified above",
    "to": "a date",
    "days": "a number of days",
    "by": "a bucket size (day, week, month)",
    "after": "a keyset cursor: a position in the org's own list, not an object to load",
    "category": "a voice category",
    "language": "a language tag",
    "sort": "a sort order",
    "download": "asks for an attachment instead of inline audio",
    "temperature": "a sampling parameter",
    "top_p": "a sampling parameter",
    "top_k": "a sampling parameter",
    "repetition_penalty": "a sampling parameter",
    "name": "a voice's new name",
    "description": "a voice's new description",
    "audio": "an uploaded file",
    "consent": "a checkbox",
    "email": "the address to invite",
    "role": "a role name",
    "action": "download or delete",
    "all_matching": "a checkbox: the filters, not ids, select",
    "confirmed": "a checkbox",
    "upto": "when the page was shown (a timestamp)",
    "csrf_token": "Flask-WTF's token",
    "scopes": "API key scopes (voices:read…)",
    "monthly_character_limit": "a number of characters",
    "expires_on": "a date",
    "url": "a webhook endpoint's URL",
    "event_types": "webhook event types (generation.succeeded…)",
}
# Statements a page may cost, all included (the target): on PostgreSQL two of
# them are the row-level-security settings (the user, then the org).
MAX_STATEMENTS_PER_PAGE = 5


# ------------------------------------------------------------------------ the world


@pytest.fixture(scope="module", params=WEB_ROLE_BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Build orgs A and B once per backend (see tests/tenant_world.py)."""
    backend = request.param
    root = tmp_path_factory.mktemp(f"matrix-{backend}")
    if backend == "sqlite":
        owner_url = f"sqlite:///{root / 'matrix.db'}"
        config = make_config(owner_url, root)
    else:
        owner_url = request.getfixturevalue("pg_schema")
        config = make_config(
            request.getfixturevalue("pg_app_url"), root, OPERATOR_DATABASE_URL=owner_url
        )
    app = create_app(config)
    record_reads(app)
    owner_engine = create_engine(owner_url)
    try:
        if backend == "sqlite":
            with app.app_context():
                db.create_all()
        else:
            with app.app_context():
                bypass = db.session.scalar(
                    text(
                        "SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user"
                    )
                )
            assert bypass is False, "the matrix must run as the RLS-bound web role"
        yield build_world(app, owner_engine)
    finally:
        owner_engine.dispose()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if backend != "sqlite":
            truncate_all(owner_url)


def logged_in(world: World, user: Any | None) -> Any:
    """Return a test client with `user` logged in (anonymous for None)."""
    client = world.app.test_client()
    if user is not None:
        login(client, user)
    return client


# Fresh objects of A for the writes that succeed (the world's own stay untouched).


def fresh_member(world: World) -> dict[str, Any]:
    with world.operator():
        user = factories.make_user(email=f"{unique('fresh')}@a.example")
        org = db.session.get_one(Organization, world.a.id)
        membership = factories.make_membership(user, org, MemberRole.MEMBER)
        return {"membership": membership.id, "user": user.id}


def fresh_member_acting(world: World) -> dict[str, Any]:
    """A fresh member of A who makes the call (leaving, say)."""
    found = fresh_member(world)
    return {**found, "actor": detached_user(world, found["user"])}


def detached_user(world: World, user_id: uuid.UUID) -> Any:
    with world.operator():
        return factories.detach(db.session.get_one(User, user_id))


def fresh_generation(world: World, *, failed: bool = False) -> dict[str, Any]:
    with world.operator():
        org = db.session.get_one(Organization, world.a.id)
        voice = db.session.get_one(Voice, world.a.objects["voice"][0])
        if failed:
            generation = factories.make_generation(
                org, voice, status=GenerationStatus.FAILED, error="Refused (test).", attempts=1
            )
        else:
            generation = factories.finish_generation(
                factories.make_generation(org, voice), get_storage()
            )
        return {"generation": generation.id}


def fresh_voice(world: World) -> dict[str, Any]:
    with world.operator():
        voice = factories.make_voice(
            db.session.get_one(Organization, world.a.id), name=unique("Fresh ")
        )
        store_voice_audio(voice, custom_voice_key(world.a.id, voice.id), *factories.speech_sample())
        return {"voice": voice.id}


def fresh_api_key(world: World) -> dict[str, Any]:
    with world.operator():
        key, _secret = factories.make_api_key(
            db.session.get_one(Organization, world.a.id), name=unique("Fresh key ")
        )
        return {"api_key": key.id}


def fresh_endpoint(world: World, *, disabled: bool = False) -> dict[str, Any]:
    """A fresh webhook endpoint of A (refused by the transport), with a failed delivery."""
    with world.operator():
        endpoint = make_webhook_endpoint(world.a.id, description=unique("Fresh hook "))
        if disabled:
            endpoint.disabled_at, endpoint.disabled_reason = utcnow(), "Disabled (test)."
        delivery = make_failed_delivery(endpoint)
        return {"webhook_endpoint": endpoint.id, "webhook_delivery": delivery.id}


def fresh_invitation(world: World) -> dict[str, Any]:
    with world.operator():
        invitee = factories.make_user(email=f"{unique('joiner')}@a.example")
        token = secrets.token_urlsafe(16)
        invitation = Invitation(
            org_id=world.a.id,
            email=invitee.email,
            role=MemberRole.MEMBER,
            token_hash=hash_token(token),
            expires_at=utcnow() + dt.timedelta(days=1),
        )
        db.session.add(invitation)
        db.session.flush()
        return {"invitation": invitation.id, "token": token, "user": invitee.id}


def fresh_invitation_answered(world: World) -> dict[str, Any]:
    """A fresh invitation of A whose addressee makes the call (joining)."""
    found = fresh_invitation(world)
    return {**found, "actor": detached_user(world, found["user"])}


def read(world: World, model: type, object_id: Any) -> Any:
    """Return the row (expunged) as it is now, read past both walls; None when gone."""
    with world.operator():
        row = db.session.get(model, object_id)
        if row is not None:
            db.session.expunge(row)
        return row


# ------------------------------------------------------------------------ controls


@dataclass
class Outcome:
    """What one call did: its answer and what changed in the database and storage."""

    objects: dict[str, Any]
    response: TestResponse
    changes: dict[str, dict[str, list[Any]]]

    @property
    def body(self) -> bytes:
        return self.response.get_data()


Check = Callable[[World, Outcome], None]


@dataclass(frozen=True)
class Control:
    """A route working for its own org: the objects it needs, its data, what follows."""

    status: int = 200
    label: str = ""
    # Fresh objects of A, made before the call; an "actor" in them makes the call.
    target: Callable[[World], dict[str, Any]] | None = None
    # Valid form data, given the objects the path names (A's for controls, B's for refusals).
    form: Callable[[World, dict[str, Any]], dict[str, Any]] | None = None
    checks: tuple[Check, ...] = field(default_factory=tuple)
    # A write route's call that only shows something (a ZIP, a confirmation page).
    shows_only: bool = False


def changed_only(*tables: str) -> Check:
    def check(world: World, outcome: Outcome) -> None:
        assert set(outcome.changes) == set(tables), outcome.changes

    return check


# A voice created or deleted is announced to A's endpoints (the world's and the fresh
# ones): the event, its deliveries, their attempts (refused at once by the transport)
# and the endpoints' runs of failures.
OUTBOX = ("webhook_events", "webhook_deliveries", "webhook_attempts", "webhook_endpoints")


def announced_in_a_only(world: World, outcome: Outcome) -> None:
    added = outcome.changes["webhook_deliveries"]["added"]
    assert added and {row["org_id"] for row in added} == {world.a.id.hex}, added


def gone(model: type, kind: str) -> Check:
    def check(world: World, outcome: Outcome) -> None:
        assert read(world, model, outcome.objects[kind]) is None

    return check


def audio_is(kind: str, model: type) -> Check:
    """The answer is the object's stored bytes, as audio."""

    def check(world: World, outcome: Outcome) -> None:
        row = read(world, model, outcome.objects[kind])
        with world.app.app_context():
            stored = b"".join(get_storage().open_range(row.audio_key))
        assert outcome.response.mimetype.startswith("audio/")
        assert outcome.body == stored and len(stored) > 1000

    return check


def generated(world: World, outcome: Outcome) -> None:
    added = outcome.changes["generations"]["added"]
    assert len(added) == 1 and added[0]["org_id"] == world.a.id.hex, added
    row = read(world, Generation, uuid.UUID(hex=added[0]["id"]))
    assert row.status is GenerationStatus.SUCCEEDED and row.audio_key
    assert [key for key, _ in outcome.changes["objects"]["added"]] == [row.audio_key]


def retried(world: World, outcome: Outcome) -> None:
    row = read(world, Generation, outcome.objects["generation"])
    assert row.status is GenerationStatus.SUCCEEDED and row.audio_key


def zip_holds_the_audio(world: World, outcome: Outcome) -> None:
    row = read(world, Generation, outcome.objects["generation"])
    with world.app.app_context():
        stored = b"".join(get_storage().open_range(row.audio_key))
    archive = zipfile.ZipFile(io.BytesIO(outcome.body))
    assert stored in [archive.read(name) for name in archive.namelist()]


def role_is(role: MemberRole) -> Check:
    def check(world: World, outcome: Outcome) -> None:
        assert read(world, Membership, outcome.objects["membership"]).role is role

    return check


def invited(world: World, outcome: Outcome) -> None:
    (added,) = outcome.changes["invitations"]["added"]
    assert added["org_id"] == world.a.id.hex and added["email"].endswith("@a.example")


def joined(world: World, outcome: Outcome) -> None:
    (added,) = outcome.changes["memberships"]["added"]
    assert added["user_id"] == outcome.objects["user"].hex
    assert added["org_id"] == world.a.id.hex
    assert read(world, Invitation, outcome.objects["invitation"]).accepted_at is not None


def voice_created(world: World, outcome: Outcome) -> None:
    (added,) = outcome.changes["voices"]["added"]
    assert added["org_id"] == world.a.id.hex and added["name"].startswith("Made ")
    assert [key for key, _ in outcome.changes["objects"]["added"]] == [added["audio_key"]]


def voice_edited(world: World, outcome: Outcome) -> None:
    voice = read(world, Voice, outcome.objects["voice"])
    assert voice.name.startswith("Edited ") and voice.description == "Now with a new take"
    assert voice.language == "de-DE" and voice.audio_size == len(reference_wav())
    assert [key for key, _ in outcome.changes["objects"]["added"]] == [voice.audio_key]


def key_form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    return {"name": unique("Matrix key "), "scopes": ["voices:read"]}


def key_created(world: World, outcome: Outcome) -> None:
    assert set(outcome.changes) == {"api_keys"}, outcome.changes
    (added,) = outcome.changes["api_keys"]["added"]
    assert added["org_id"] == world.a.id.hex and added["name"].startswith("Matrix key ")
    assert added["last_four"].encode() in outcome.body  # the secret, shown once


def key_revoked(world: World, outcome: Outcome) -> None:
    assert read(world, ApiKey, outcome.objects["api_key"]).revoked_at is not None


def endpoint_form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": "https://hooks.a.example/voxboard",
        "description": unique("Matrix hook "),
        "event_types": ["generation.succeeded", "voice.created"],
    }


def endpoint_created(world: World, outcome: Outcome) -> None:
    assert set(outcome.changes) == {"webhook_endpoints"}, outcome.changes
    (added,) = outcome.changes["webhook_endpoints"]["added"]
    assert added["org_id"] == world.a.id.hex and added["description"].startswith("Matrix hook ")
    assert b"whsec_" in outcome.body  # the secret, shown once
    assert added["secret"] and "whsec_" not in added["secret"]  # stored encrypted


def endpoint_is(*, enabled: bool) -> Check:
    def check(world: World, outcome: Outcome) -> None:
        endpoint = read(world, WebhookEndpoint, outcome.objects["webhook_endpoint"])
        assert endpoint.enabled is enabled

    return check


def secret_rotated(world: World, outcome: Outcome) -> None:
    endpoint = read(world, WebhookEndpoint, outcome.objects["webhook_endpoint"])
    assert endpoint.previous_secret and endpoint.previous_secret_expires_at > utcnow()
    assert b"whsec_" in outcome.body


def queued_for_the_endpoint(world: World, outcome: Outcome) -> None:
    (added,) = outcome.changes["webhook_deliveries"]["added"]
    assert added["endpoint_id"] == outcome.objects["webhook_endpoint"].hex
    assert added["org_id"] == world.a.id.hex


def redelivered(world: World, outcome: Outcome) -> None:
    delivery = read(world, WebhookDelivery, outcome.objects["webhook_delivery"])
    assert delivery.status is DeliveryStatus.PENDING and delivery.finished_at is None


def generate_form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    return {"text": unique("Matrix control "), "voice": str(objects["voice"])}


def voice_form(prefix: str) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    def form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": unique(prefix),
            "category": VoiceCategory.GENERAL.value,
            "language": "de-DE",
            "description": "Now with a new take",
            "audio": (io.BytesIO(reference_wav()), "take.wav", "audio/wav"),
            "consent": "y",
        }

    return form


def bulk_form(
    action: str, *, confirmed: bool = True, matching: bool = False
) -> Callable[[World, dict[str, Any]], dict[str, Any]]:
    """The history's bulk form: ticked ids, or everything of one voice (`matching`)."""

    def form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
        data = {"action": action}
        if matching:
            data.update(all_matching="y", voice=str(objects["voice"]))
        else:
            data["ids"] = [str(objects["generation"])]
        return {**data, "confirmed": "y"} if confirmed else data

    return form


def fresh_voice_with_generation(world: World) -> dict[str, Any]:
    """A fresh voice of A, and one finished generation made with it (nothing else is)."""
    objects = fresh_voice(world)
    with world.operator():
        org = db.session.get_one(Organization, world.a.id)
        voice = db.session.get_one(Voice, objects["voice"])
        generation = factories.finish_generation(
            factories.make_generation(org, voice), get_storage()
        )
        return {**objects, "generation": generation.id}


def shows(*kinds: str) -> Check:
    """The page names the objects of `kinds` (by their text or name)."""

    def check(world: World, outcome: Outcome) -> None:
        for kind in kinds:
            model = {"generation": Generation, "voice": Voice}[kind]
            row = read(world, model, outcome.objects[kind])
            assert (row.text if kind == "generation" else row.name) in outcome.body.decode()

    return check


def invite_form(world: World, objects: dict[str, Any]) -> dict[str, Any]:
    return {"email": f"{unique('invited')}@a.example", "role": "member"}


# (endpoint, method) → how it works for its own org. GETs not listed answer 200 to
# A's owner with A's objects; every write must be listed.
CONTROLS: dict[tuple[str, str], list[Control]] = {
    ("generate.index", "POST"): [
        Control(303, form=generate_form, checks=(generated,)),
    ],
    ("generations.retry", "POST"): [
        Control(303, target=lambda w: fresh_generation(w, failed=True), checks=(retried,)),
    ],
    ("generations.audio", "GET"): [Control(checks=(audio_is("generation", Generation),))],
    ("library.audio", "GET"): [Control(checks=(audio_is("voice", Voice),))],
    ("voices.system_voice_audio", "GET"): [
        Control(target=lambda w: {"voice": w.system_voice}, checks=(audio_is("voice", Voice),))
    ],
    ("history.delete", "POST"): [
        Control(
            303,
            target=fresh_generation,
            checks=(gone(Generation, "generation"), changed_only("generations", "objects")),
        ),
    ],
    ("history.bulk", "POST"): [
        Control(
            303,
            "delete",
            target=fresh_generation,
            form=bulk_form("delete"),
            checks=(gone(Generation, "generation"), changed_only("generations", "objects")),
        ),
        Control(
            303,
            "delete matching",
            target=fresh_voice_with_generation,
            form=bulk_form("delete", matching=True),
            checks=(gone(Generation, "generation"), changed_only("generations", "objects")),
        ),
        Control(
            200,
            "confirm",
            form=bulk_form("delete", confirmed=False),
            checks=(shows("generation"),),
            shows_only=True,
        ),
        Control(
            200,
            "confirm matching",
            target=fresh_voice_with_generation,
            form=bulk_form("delete", confirmed=False, matching=True),
            checks=(shows("generation", "voice"),),
            shows_only=True,
        ),
        Control(
            200,
            "download",
            form=bulk_form("download"),
            checks=(zip_holds_the_audio,),
            shows_only=True,
        ),
    ],
    ("members.change_role", "POST"): [
        Control(
            303,
            target=fresh_member,
            form=lambda w, o: {"role": "admin"},
            checks=(role_is(MemberRole.ADMIN), changed_only("memberships")),
        ),
    ],
    ("members.remove", "POST"): [
        Control(
            303,
            target=fresh_member,
            checks=(gone(Membership, "membership"), changed_only("memberships")),
        ),
    ],
    ("members.leave", "POST"): [
        Control(
            303,
            target=fresh_member_acting,
            checks=(gone(Membership, "membership"), changed_only("memberships")),
        ),
    ],
    ("members.invite", "POST"): [
        Control(303, form=invite_form, checks=(invited, changed_only("invitations"))),
    ],
    ("members.revoke", "POST"): [
        Control(
            303,
            target=fresh_invitation,
            checks=(gone(Invitation, "invitation"), changed_only("invitations")),
        ),
    ],
    ("library.new", "POST"): [
        Control(303, form=voice_form("Made "), checks=(voice_created,)),
    ],
    ("library.edit", "POST"): [
        Control(303, target=fresh_voice, form=voice_form("Edited "), checks=(voice_edited,)),
    ],
    ("library.delete", "POST"): [
        Control(
            303,
            target=fresh_voice,
            checks=(
                gone(Voice, "voice"),
                changed_only("voices", "objects", *OUTBOX),
                announced_in_a_only,
            ),
        ),
    ],
    ("api_keys.create", "POST"): [Control(201, form=key_form, checks=(key_created,))],
    ("api_keys.revoke", "POST"): [
        Control(303, target=fresh_api_key, checks=(key_revoked, changed_only("api_keys"))),
    ],
    ("webhooks.create", "POST"): [Control(201, form=endpoint_form, checks=(endpoint_created,))],
    ("webhooks.send_test", "POST"): [
        Control(303, target=fresh_endpoint, checks=(queued_for_the_endpoint,)),
    ],
    ("webhooks.redeliver", "POST"): [Control(303, target=fresh_endpoint, checks=(redelivered,))],
    ("webhooks.rotate", "POST"): [
        Control(
            200,
            target=fresh_endpoint,
            checks=(secret_rotated, changed_only("webhook_endpoints")),
        ),
    ],
    ("webhooks.disable", "POST"): [
        Control(303, target=fresh_endpoint, checks=(endpoint_is(enabled=False),)),
    ],
    ("webhooks.enable", "POST"): [
        Control(
            303,
            target=lambda w: fresh_endpoint(w, disabled=True),
            checks=(endpoint_is(enabled=True), changed_only("webhook_endpoints")),
        ),
    ],
    ("webhooks.delete", "POST"): [
        Control(
            303,
            target=fresh_endpoint,
            checks=(
                gone(WebhookEndpoint, "webhook_endpoint"),
                gone(WebhookDelivery, "webhook_delivery"),
            ),
        ),
    ],
    ("invitations.accept", "GET"): [Control(target=fresh_invitation_answered)],
    ("invitations.accept", "POST"): [
        Control(303, target=fresh_invitation_answered, checks=(joined,)),
    ],
}


# --------------------------------------------------------------------------- rules


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def coverage_problems(app: Flask) -> list[str]:
    """Say what keeps each rule of the URL map out of the matrix (nothing: covered)."""
    problems = []
    for rule in app.url_map.iter_rules():
        if exempt(rule.endpoint):
            continue
        unknown = sorted(rule.arguments - ARG_KINDS.keys())
        if unknown:
            problems.append(f"{rule.rule}: teach ARG_KINDS what <{'>, <'.join(unknown)}> names")
        if not rule.arguments and not all((rule.endpoint, m) in CONTROLS for m in methods(rule)):
            problems.append(f"{rule.rule} takes no id or slug: add CONTROLS, or EXEMPT it")
        for method in methods(rule):
            if method in WRITE_METHODS and (rule.endpoint, method) not in CONTROLS:
                problems.append(f"{method} {rule.rule}: add a positive control to CONTROLS")
    return problems


def covered_rules(app: Flask) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if not exempt(r.endpoint)]
    return sorted(rules, key=lambda r: (r.rule, r.endpoint))


def gated(rule: Rule) -> bool:
    """Tell whether the rule is an org's page (membership decides, before anything)."""
    return rule.rule.startswith("/o/<org_slug>")


def controls(rule: Rule, method: str) -> list[Control]:
    found = CONTROLS.get((rule.endpoint, method))
    if found is None:
        assert method == "GET", f"{method} {rule.rule} has no control"
        return [Control()]
    return found


def build_url(app: Flask, rule: Rule, slug: str | None, objects: dict[str, Any], **query) -> str:
    values: dict[str, Any] = dict(query)
    for arg in rule.arguments:
        values[arg] = slug if ARG_KINDS[arg] == "slug" else objects[ARG_KINDS[arg]]
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def call(client, method: str, url: str, form: dict[str, Any] | None) -> TestResponse:
    if method == "GET":
        return client.get(url)
    multipart = any(isinstance(v, tuple) for v in (form or {}).values())
    return client.open(
        url,
        method=method,
        data=form or {},
        content_type="multipart/form-data" if multipart else None,
    )


def run_control(
    world: World,
    rule: Rule,
    method: str,
    control: Control,
    actor: Any,
    clients: dict[Any, Any],
    override: dict[str, Any] | None = None,
) -> Outcome:
    """Make the control's objects, call the route for A, and return what happened.

    `override` replaces (or adds) query and form values, e.g. another org's id.
    """
    objects = {**world.a.first(), **(control.target(world) if control.target else {})}
    user = objects.get("actor", actor)
    key = user.id if user is not None else None
    if key not in clients:
        clients[key] = logged_in(world, user)
    client = clients[key]
    form = control.form(world, objects) if control.form else None
    query = {}
    if override:
        query = {k: v for k, v in override.items() if not isinstance(v, list)}
        if method != "GET":
            form = {**(form or {}), **override}
    url = build_url(world.app, rule, world.a.slug, objects, **query)
    before = Snapshot.take(world)
    response = call(client, method, url, form)
    response.get_data()  # streamed bodies run their statements while they're read
    return Outcome(objects, response, before.changes(Snapshot.take(world)))


def errors_shown(body: bytes) -> list[str]:
    """Return the field errors and problems a page shows (for failure messages)."""
    shown = body.decode(errors="replace")
    return re.findall(r'class="(?:field-error|form-error)[^"]*"[^>]*>([^<]*)<', shown)


def leaked_markers(body: bytes, markers: list[str]) -> list[str]:
    shown = body.decode("utf-8", errors="replace")
    return [m for m in markers if m in shown]


# -------------------------------------------------------------------------- tests


def test_every_rule_of_the_url_map_is_in_the_matrix_or_exempt(world):
    """A rule added later (the API's, the webhooks') fails here until it is covered."""
    assert not coverage_problems(world.app)
    endpoints = {r.endpoint for r in world.app.url_map.iter_rules()}
    assert not set(EXEMPT) - endpoints, "exemptions for rules that no longer exist"
    assert not {e for e, _ in CONTROLS} - endpoints, "controls for rules that no longer exist"
    assert len(covered_rules(world.app)) >= 25


def test_the_coverage_check_refuses_a_rule_it_does_not_know(tmp_path):
    """The check above is not vacuous: a new id-taking route and a new write both fail it."""
    app = create_app(make_config("sqlite://", tmp_path))
    app.add_url_rule("/api/v1/widgets/<uuid:widget_id>", "api.widget", lambda widget_id: "")
    app.add_url_rule("/o/<org_slug>/webhooks/", "webhooks.add", lambda: "", methods=["POST"])
    problems = "\n".join(coverage_problems(app))
    assert "teach ARG_KINDS what <widget_id> names" in problems
    assert "POST /o/<org_slug>/webhooks/: add a positive control" in problems


ACTORS = ["owner", "admin", "member", "dual", "anonymous"]


def actor_user(world: World, actor: str) -> Any:
    if actor == "anonymous":
        return None
    if actor == "dual":
        return world.dual
    return world.a.users[MemberRole(actor)]


def foreign_variants(world: World, rule: Rule, actor: str) -> Iterator[tuple[str, str, dict]]:
    """Yield (slug org, objects org, objects) for every way `rule` names another org's things.

    As A: B's slug (with B's objects), and A's slug with each of B's objects. The user
    in both orgs also acts in B on A's objects. A rule outside /o/ with a slug (an
    invitation link) gets each org's slug with the other's objects.
    """
    has_slug = "org_slug" in rule.arguments
    kinds = [ARG_KINDS[a] for a in sorted(rule.arguments) if ARG_KINDS[a] != "slug"]
    if gated(rule) and actor != "dual":
        yield "b", "b", world.b.first()
    for theirs, ours in (("b", "a"), ("a", "b")):
        if theirs == "a" and not (actor == "dual" or (has_slug and not gated(rule))):
            continue
        if not kinds:
            continue
        pools = [world.org(theirs).objects[k] for k in kinds]
        for values in itertools.product(*pools):
            objects = {**world.org(theirs).first(), **dict(zip(kinds, values, strict=True))}
            yield (ours if has_slug else "-"), theirs, objects


@pytest.mark.parametrize("actor", ACTORS)
def test_other_orgs_slugs_and_ids_in_the_path_answer_404_and_change_nothing(world, actor):
    user = actor_user(world, actor)
    client = logged_in(world, user)
    before = Snapshot.take(world)
    checked = 0
    for rule in covered_rules(world.app):
        for method in methods(rule):
            form_of = next((c.form for c in controls(rule, method) if c.form), None)
            for slug_org, objects_org, objects in foreign_variants(world, rule, actor):
                slug = world.org(slug_org).slug if slug_org != "-" else None
                url = build_url(world.app, rule, slug, objects)
                form = form_of(world, objects) if form_of and method != "GET" else None
                response = call(client, method, url, form)
                where = f"{method} {url} as {actor} (objects of {objects_org.upper()})"
                if actor == "anonymous" and gated(rule):
                    assert response.status_code == 302, where
                    assert "/login" in response.headers["Location"], where
                else:
                    assert response.status_code == 404, where
                foreign = world.org(objects_org)
                hidden = foreign.markers_hidden_from(user, member=actor == "dual")
                assert not leaked_markers(response.get_data(), hidden), where
                changes = before.changes(Snapshot.take(world))
                assert not changes, f"{where} changed {changes}"
                checked += 1
    assert checked >= 60


def discovered_id_params(world: World) -> dict[tuple[str, str, str], str]:
    """Run every own-org control, recording the query/form keys each view reads.

    Return (endpoint, method, key) → kind for the keys that name objects; fail for a
    key not classified in PARAM_KINDS or NOT_IDS.
    """
    clients: dict[Any, Any] = {}
    with recording_reads() as reads:
        for rule in covered_rules(world.app):
            for method in methods(rule):
                for control in controls(rule, method):
                    owner = world.a.users[MemberRole.OWNER]
                    run_control(world, rule, method, control, owner, clients)
    found, unknown = {}, []
    for endpoint, method, key in sorted(reads):
        kind = PARAM_KINDS_BY_ENDPOINT.get((endpoint, key)) or PARAM_KINDS.get(key)
        if kind:
            found[(endpoint, method, key)] = kind
        elif key not in NOT_IDS:
            unknown.append(f"{method} {endpoint} reads {key!r}")
    assert not unknown, "classify in PARAM_KINDS or NOT_IDS:\n" + "\n".join(unknown)
    return found


@pytest.mark.parametrize("actor", ["owner", "dual"])
def test_other_orgs_ids_in_forms_and_queries_are_ids_that_exist_nowhere(world, actor):
    """B's id in a form field or query parameter gets exactly what an unknown id gets."""
    params = discovered_id_params(world)
    known = {
        ("generate.index", "POST", "voice"),
        ("generate.index", "GET", "from"),
        ("history.bulk", "POST", "ids"),
        ("history.index", "GET", "voice"),
    }
    assert known <= set(params), params
    user = actor_user(world, actor)
    clients: dict[Any, Any] = {}
    rules = {r.endpoint: r for r in covered_rules(world.app)}
    markers = world.b.markers_hidden_from(user, member=actor == "dual")
    for (endpoint, method, key), kind in params.items():
        rule = rules[endpoint]
        for control in controls(rule, method):
            for theirs in world.b.objects[kind]:
                as_list = key == "ids"
                value, nowhere = (str(theirs), str(uuid.uuid4()))
                if as_list:
                    value, nowhere = [value], [nowhere]
                got = run_control(world, rule, method, control, user, clients, {key: value})
                expected = run_control(world, rule, method, control, user, clients, {key: nowhere})
                where = f"{method} {endpoint} {key}={value} as {actor} ({control.label})"
                assert got.response.status_code == expected.response.status_code, where
                assert got.response.status_code < 500, where
                assert shape(got.changes) == shape(expected.changes), where
                assert not mentions(got.changes, world.b_ids), where
                assert not leaked_markers(got.body, markers), where


@pytest.mark.parametrize("actor", ["owner", "dual"])
def test_each_route_works_for_its_own_org(world, actor):
    """The positive controls: exact statuses for GETs, and every write changes what it says.

    A's own pages (its analytics, history, library…) show nothing of B's either.
    """
    clients: dict[Any, Any] = {}
    user = actor_user(world, actor)
    markers = world.b.markers_hidden_from(user, member=actor == "dual")
    for rule in covered_rules(world.app):
        for method in methods(rule):
            for control in controls(rule, method):
                outcome = run_control(world, rule, method, control, user, clients)
                where = f"{method} {rule.rule} {control.label} as {actor}"
                assert outcome.response.status_code == control.status, (
                    where,
                    errors_shown(outcome.body),
                )
                if method in WRITE_METHODS and not control.shows_only:
                    assert outcome.changes, f"{where} changed nothing"
                else:
                    assert not outcome.changes, f"{where} (a read) changed {outcome.changes}"
                assert not mentions(outcome.changes, world.b_ids), where
                assert not leaked_markers(outcome.body, markers), where
                for check in control.checks:
                    check(world, outcome)


def test_the_user_in_both_orgs_sees_bs_objects_through_bs_slug(world):
    """The two-org user's 404s above come from the slug: in B, B's objects are theirs."""
    client = logged_in(world, world.dual)
    checked = 0
    for rule in covered_rules(world.app):
        if not gated(rule) or "GET" not in methods(rule):
            continue
        url = build_url(world.app, rule, world.b.slug, world.b.first())
        assert client.get(url).status_code == 200, url
        checked += 1
    assert checked >= 15


def test_every_org_page_costs_at_most_five_statements(world):
    """Each GET route under /o/<slug>/, as A's owner with A's objects, warm."""
    client = logged_in(world, world.a.users[MemberRole.OWNER])
    with world.app.app_context():
        engine = db.engine
    costs: dict[str, list[str]] = {}
    for rule in covered_rules(world.app):
        if not gated(rule) or "GET" not in methods(rule):
            continue
        url = build_url(world.app, rule, world.a.slug, world.a.first())
        client.get(url).close()  # warm: first-use work (caches, lazy loads) is not the page's
        seen: list[str] = []

        def record(_conn, _cursor, statement, *_rest, seen=seen) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            response = client.get(url)
            response.get_data()  # streamed bodies run their statements while they're read
            response.close()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        costs[url] = seen
    over = {url: len(seen) for url, seen in costs.items() if len(seen) > MAX_STATEMENTS_PER_PAGE}
    listing = [
        f"{url}: {len(costs[url])} statements: "
        + " | ".join(" ".join(s.split())[:90] for s in costs[url])
        for url in over
    ]
    assert not over, "\n".join(listing)
