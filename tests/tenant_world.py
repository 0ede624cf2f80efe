"""Two organisations full of real objects, and the tools the cross-tenant matrix uses on them.

- `build_world`: orgs A and B, each with an owner, an admin, a member, a custom voice
  with audio, a finished generation with audio, a failed one, a pending invitation
  (its token kept), an API key, a webhook endpoint with a failed delivery and its
  logged attempt, yesterday's analytics snapshot; a user who is owner of A and
  admin of B; a shared system voice with audio. B's names and texts carry markers
  that must never appear in an answer to A.
- `Snapshot`: every row of every table (read through the owner's own connection,
  past row-level security and outside the app) and every stored object's etag.
- `RecordingRequest`: records which query and form keys each view reads, so ids in
  forms and query strings are found by running the views, not by a list kept here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile
from flask import Flask, Request, request
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from werkzeug.datastructures import ImmutableMultiDict

from dashboard import encryption
from dashboard.analytics.snapshots import snapshot_day
from dashboard.extensions import db
from dashboard.members.services import hash_token
from dashboard.models import (
    DeliveryStatus,
    GenerationStatus,
    Invitation,
    MemberRole,
    Organization,
    Voice,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
    utcnow,
)
from dashboard.models.webhooks import TEST_EVENT
from dashboard.storage import custom_voice_key, get_storage, system_voice_key
from dashboard.tenancy.operator import operator_access
from dashboard.webhooks import signing
from dashboard.webhooks.payloads import envelope
from tests import factories

ROLES = (MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER)
_seq = itertools.count(1)


def unique(prefix: str) -> str:
    """Return `prefix` with a number no other call returned (names, emails)."""
    return f"{prefix}{next(_seq)}"


# ------------------------------------------------------------------------ audio


def reference_wav(seconds: float = 12, rate: int = 8_000) -> bytes:
    """Return a WAV long enough to be a custom voice's reference (10 s at least)."""
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), rate, "PCM_16",
                    format="WAV")  # fmt: skip
    return buffer.getvalue()


def store_voice_audio(voice: Voice, key: str, wav: bytes, duration_ms: int) -> Voice:
    """Store `wav` under `key` as `voice`'s reference audio, as an upload would."""
    get_storage().put(key, io.BytesIO(wav), content_type="audio/wav")
    voice.audio_key, voice.audio_size = key, len(wav)
    voice.audio_sha256 = hashlib.sha256(wav).hexdigest()
    voice.audio_duration_ms, voice.audio_content_type = duration_ms, "audio/wav"
    db.session.flush()
    return voice


# ------------------------------------------------------------------------ webhooks

# Refused by the transport at every delivery (loopback) without a connection or a DNS
# lookup, so a delivery made during a test fails at once and is logged.
REFUSED_URL = "http://127.0.0.1:9/hooks"


def make_webhook_endpoint(org_id: uuid.UUID, **kw: Any) -> WebhookEndpoint:
    """Add an endpoint directly (its URL unchecked), subscribed to every event unless told."""
    endpoint = WebhookEndpoint(
        org_id=org_id,
        url=kw.pop("url", REFUSED_URL),
        description=kw.pop("description", ""),
        event_types=kw.pop("event_types", [t.value for t in WebhookEventType]),
        secret=encryption.encrypt(kw.pop("secret", None) or signing.new_secret()),
        **kw,
    )
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def make_webhook_delivery(
    endpoint: WebhookEndpoint, event_type: str = TEST_EVENT, **kw: Any
) -> WebhookDelivery:
    """Add an event and its delivery to `endpoint` directly (pending unless told); queue nothing."""
    event = WebhookEvent(
        org_id=endpoint.org_id,
        event_type=event_type,
        payload=envelope(event_type, {"endpoint_id": str(endpoint.id)}),
    )
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(
        org_id=endpoint.org_id, event_id=event.id, endpoint_id=endpoint.id, **kw
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery


def make_webhook_attempt(delivery: WebhookDelivery, event_type: str = TEST_EVENT, **kw: Any):
    """Log one attempt of `delivery` in its endpoint's log (HTTP 500 unless told)."""
    attempt = WebhookAttempt(
        org_id=delivery.org_id,
        endpoint_id=delivery.endpoint_id,
        delivery_id=delivery.id,
        event_id=delivery.event_id,
        event_type=event_type,
        status_code=kw.pop("status_code", 500),
        duration_ms=kw.pop("duration_ms", 42),
        **kw,
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt


def make_failed_delivery(endpoint: WebhookEndpoint, excerpt: str = "down") -> WebhookDelivery:
    """Add a delivery to `endpoint` that failed for good, with its one logged attempt."""
    delivery = make_webhook_delivery(
        endpoint, status=DeliveryStatus.FAILED, attempts=1, finished_at=utcnow()
    )
    make_webhook_attempt(delivery, response_excerpt=excerpt)
    return delivery


# ------------------------------------------------------------------------ world


@dataclass
class Org:
    """One organisation of the world: its users, objects by kind, and secrets."""

    label: str
    id: uuid.UUID
    slug: str
    name: str
    users: dict[MemberRole, Any]
    invitee: Any  # the user the pending invitation is for (no membership yet)
    # kind → the ids (or tokens) of that kind, most useful first.
    objects: dict[str, list[Any]]
    # Strings only this org's data contains (its name, people, voice, texts), by what.
    markers: dict[str, str]

    def first(self) -> dict[str, Any]:
        """Return one object of every kind."""
        return {kind: values[0] for kind, values in self.objects.items()}

    def markers_hidden_from(self, user: Any | None, member: bool) -> list[str]:
        """Return the markers no answer to `user` may show: all but their own name, and
        the org's name when they are a member too (their org switcher lists it)."""
        own = f"{user.display_name} {user.email}" if user is not None else ""
        return [
            marker
            for what, marker in self.markers.items()
            if marker not in own and not (member and what == "org")
        ]


@dataclass
class World:
    app: Flask
    owner_engine: Engine
    a: Org
    b: Org
    dual: Any  # owner of A and admin of B
    system_voice: uuid.UUID
    # Every id of B's own rows (org, users, voices, generations, …) as hex.
    b_ids: frozenset[str] = field(default_factory=frozenset)

    def org(self, label: str) -> Org:
        return {"a": self.a, "b": self.b}[label]

    @contextmanager
    def operator(self, reason: str = "tenant matrix: set-up and checks") -> Iterator[None]:
        """Run the block in an app context past both walls (test set-up and checks)."""
        with self.app.app_context(), operator_access(reason):
            yield
            db.session.commit()


def _make_org(label: str, secret: str, system: Voice) -> tuple[Org, Organization, list[Any]]:
    """Make one org of the world (inside an operator block); return it, its row, its rows."""
    org = factories.make_org(slug=f"matrix-{label}", name=f"Org {label.upper()} {secret}org")
    users, memberships = {}, {}
    for role in ROLES:
        users[role] = factories.make_user(
            email=f"{role.value}-{secret}@{label}.example",
            display_name=f"{role.value.title()} {secret}{role.value}",
        )
        memberships[role] = factories.make_membership(users[role], org, role)
    voice = factories.make_voice(
        org, name=f"Voice {secret}voice", description=f"Tells {secret}tales"
    )
    store_voice_audio(
        voice, custom_voice_key(org.id, voice.id), *factories.speech_sample(f"{label} voice")
    )
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    finished = factories.make_generation(
        org, voice, text=f"Said by {secret}said", created_at=yesterday
    )
    factories.finish_generation(finished, get_storage())
    failed = factories.make_generation(
        org,
        system,
        text=f"Failed {secret}failed",
        status=GenerationStatus.FAILED,
        error="The engine refused (test).",
        attempts=1,
        created_at=yesterday,
    )
    invitee = factories.make_user(
        email=f"invitee-{secret}@{label}.example", display_name=f"{secret}invitee"
    )
    token = secrets.token_urlsafe(16)
    invitation = Invitation(
        org_id=org.id,
        email=invitee.email,
        role=MemberRole.MEMBER,
        token_hash=hash_token(token),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7),
        invited_by=users[MemberRole.OWNER].id,
    )
    db.session.add(invitation)
    db.session.flush()
    api_key, _secret = factories.make_api_key(
        org, name=f"{secret}key", created_by=users[MemberRole.OWNER].id
    )
    endpoint = make_webhook_endpoint(
        org.id,
        url=f"{REFUSED_URL}/{secret}hook",
        description=f"Receives {secret}hook",
        created_by=users[MemberRole.OWNER].id,
    )
    delivery = make_failed_delivery(endpoint, excerpt=f"Refused by {secret}hook")
    found = Org(
        label=label,
        id=org.id,
        slug=org.slug,
        name=org.name,
        users=users,
        invitee=invitee,
        objects={
            "voice": [voice.id],
            "generation": [finished.id, failed.id],
            "membership": [memberships[r].id for r in (MemberRole.MEMBER, *ROLES[:2])],
            "invitation": [invitation.id],
            "api_key": [api_key.id],
            "webhook_endpoint": [endpoint.id],
            "webhook_delivery": [delivery.id],
            "token": [token],
        },
        markers={
            what: f"{secret}{what}"
            for what in (
                "org",
                *(r.value for r in ROLES),
                "voice",
                "tales",
                "said",
                "failed",
                "invitee",
                "key",
                "hook",
            )
        },  # fmt: skip
    )
    own_rows = [org, *users.values(), *memberships.values(), voice, finished, failed, invitee,
                invitation, api_key, endpoint, delivery]  # fmt: skip
    return found, org, own_rows


def build_world(app: Flask, owner_engine: Engine) -> World:
    """Fill the app's empty database with orgs A and B (see the module docstring)."""
    with app.app_context(), operator_access("tenant matrix: the world spans orgs"):
        system = factories.make_voice(None, name="Aaron")
        store_voice_audio(
            system, system_voice_key(system.id), *factories.speech_sample("system voice")
        )
        a, a_org, _ = _make_org("a", "alpha", system)
        b, b_org, b_rows = _make_org("b", "bravo", system)
        dual = factories.make_user(email="dual@both.example", display_name="Dual Member")
        factories.make_membership(dual, a_org, MemberRole.OWNER)
        dual_b = factories.make_membership(dual, b_org, MemberRole.ADMIN)
        b.objects["membership"].append(dual_b.id)
        # Yesterday's figures, as the nightly job leaves them: B's voice names are in them.
        snapshot_day((dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date())
        db.session.commit()
        b_ids = {row.id.hex for row in b_rows} | {dual_b.id.hex}
        for org in (a, b):
            org.users = {role: factories.detach(user) for role, user in org.users.items()}
            org.invitee = factories.detach(org.invitee)
        world = World(app, owner_engine, a, b, factories.detach(dual), system.id, frozenset(b_ids))
    return world


# --------------------------------------------------------------------- snapshot

# Columns a request may change without writing anything: the only one is a session's
# "last seen" (moved at most once a minute, in a transaction of its own, by any page
# view). Every other column of every table is compared.
BOOKKEEPING_COLUMNS = {"user_sessions": {"last_seen_at"}}


def _plain(value: Any) -> Any:
    """Return `value` hashable and alike on both databases.

    SQLite returns ids as 32 hex digits and JSON as text; PostgreSQL returns UUIDs and
    parsed JSON: ids compare as hex, JSON as its canonical text.
    """
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


@dataclass(frozen=True)
class Snapshot:
    """Every table's rows and every object's etag at one moment, comparable with `==`."""

    tables: Mapping[str, frozenset[tuple[tuple[str, Any], ...]]]
    objects: Mapping[str, tuple[int, str, str | None]]

    @classmethod
    def take(cls, world: World) -> Snapshot:
        tables: dict[str, frozenset[tuple[tuple[str, Any], ...]]] = {}
        with world.owner_engine.connect() as conn:
            for name in sorted(inspect(conn).get_table_names()):
                skip = BOOKKEEPING_COLUMNS.get(name, set())
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).mappings().all()
                tables[name] = frozenset(
                    tuple(sorted((k, _plain(v)) for k, v in row.items() if k not in skip))
                    for row in rows
                )
        with world.app.app_context():
            storage = get_storage()
            objects = {}
            for key in storage.list_keys(""):
                info = storage.stat(key)
                objects[key] = (info.size, info.etag, info.content_type)
        return cls(tables, objects)

    def changes(self, after: Snapshot) -> dict[str, dict[str, list[Any]]]:
        """Return what differs in `after`, per table (and "objects"): rows added, removed."""
        found: dict[str, dict[str, list[Any]]] = {}
        for name in self.tables.keys() | after.tables.keys():
            old, new = self.tables.get(name, frozenset()), after.tables.get(name, frozenset())
            if old != new:
                found[name] = {
                    "added": [dict(r) for r in new - old],
                    "removed": [dict(r) for r in old - new],
                }
        old_objects, new_objects = set(self.objects.items()), set(after.objects.items())
        if old_objects != new_objects:
            found["objects"] = {
                "added": sorted(new_objects - old_objects),
                "removed": sorted(old_objects - new_objects),
            }
        return found


def shape(changes: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, tuple[int, int]]:
    """Return how many rows (objects) each table gained and lost: comparable across runs."""
    return {name: (len(c["added"]), len(c["removed"])) for name, c in changes.items()}


def mentions(changes: Mapping[str, Mapping[str, list[Any]]], ids: frozenset[str]) -> list[Any]:
    """Return the changed rows and objects that name any of `ids` (hex) anywhere."""
    dashed = {str(uuid.UUID(hex=i)) for i in ids}
    found = []
    for change in changes.values():
        for row in change["added"] + change["removed"]:
            shown = repr(row)
            if any(i in shown for i in ids) or any(i in shown for i in dashed):
                found.append(row)
    return found


# ------------------------------------------------------------- request reading

# (endpoint, method, key) of every query or form value a view read, while recording.
_reads: ContextVar[set[tuple[str, str, str]] | None] = ContextVar("matrix_reads", default=None)


class _RecordingDict(ImmutableMultiDict):
    """The query string or form, noting every key a view asks it about."""

    def _note(self, key: Any) -> None:
        reads = _reads.get()
        if reads is not None and isinstance(key, str):
            reads.add((request.endpoint or "?", request.method, key))

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)

    def get(self, key, default=None, type=None):  # type: ignore[no-untyped-def]  # noqa: A002
        self._note(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # type: ignore[no-untyped-def]  # noqa: A002
        self._note(key)
        return super().getlist(key, type)


def record_reads(app: Flask) -> None:
    """Make the app's requests record what views read of their query string, form, files.

    A subclass of the app's own request class (htmx-flask installs one), so requests
    behave as they do in production otherwise.
    """
    base: type[Request] = app.request_class
    app.request_class = type(
        "RecordingRequest", (base,), {"parameter_storage_class": _RecordingDict}
    )


@contextmanager
def recording_reads() -> Iterator[set[tuple[str, str, str]]]:
    """Collect (endpoint, method, key) of every query/form value read inside the block."""
    reads: set[tuple[str, str, str]] = set()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


# URL argument → the kind of object whose id it is (keys of `Org.objects`); the CSRF
# suite reads this too, to build URLs for every write.
OBJECT_ARGS = {
    "voice_id": "voice",
    "generation_id": "generation",
    "membership_id": "membership",
    "member_id": "membership",
    "invitation_id": "invitation",
    "key_id": "api_key",
    "endpoint_id": "webhook_endpoint",
    "delivery_id": "webhook_delivery",
}
