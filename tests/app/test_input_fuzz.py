"""Property-based sweep of everything a client can type: never a 5xx, a refusal writes
nothing, and the pages still render — on SQLite and on PostgreSQL as the web role.

Nothing here lists forms or parameters by hand. Routes come from the app's URL map;
for each route a probe request (on a throwaway world, as an org owner unless the page
is public) records which Flask-WTF forms the view builds and which keys it reads from
`request.form`, `request.files` and `request.args`, so a route or a field added later
is swept by itself. A route that can't be driven is listed in `NOT_DRIVEN` with the
reason; a URL argument this file can't fill fails loudly (`PATH_ARGS`).

Two passes per route, each request starting from the route's valid values (a world
holds an org, its owner, a member, a custom voice with audio, a finished and a failed
generation, an invitation and an API key; a new one replaces it after any request that
succeeded):

1. every input × every case of `CASES` (NUL, another unholdable character, a second
   value with a NUL, a lone surrogate, a file where text is expected, the input left
   out, a very long value), so the issue's classes never depend on luck;
2. generated combinations of up to three inputs: text of every Unicode category,
   bidirectional controls, noncharacters, very long strings, numbers as text, raw
   bytes that aren't UTF-8, several values where one is expected, a bare key, a file.

Values are sent as bytes, as an attacker sends them: a lone surrogate, which can't be
encoded as UTF-8, goes as %ED%A0%80. Asserted each time: no 5xx; a 400 for a query
parameter (404 for a path parameter) holding a character `dashboard.edge` refuses, a
4xx for such a form field; a 4xx writes nothing (every table's rows, every stored
object); after anything else the redirect target, the route's page and the org's home
render.

Generation jobs are queued, not run (a SQLite queue no worker reads): what the engine
makes of odd text is the worker's business (tests/generations/test_jobs.py), and
speaking long text would blow the time budget.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import pytest
from flask import Flask, Request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import cached_property
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField

from dashboard import create_app
from dashboard.auth.passwords import hash_password
from dashboard.config import engine_options
from dashboard.edge import first_header_control, first_unholdable
from dashboard.extensions import db
from dashboard.forms import leaves
from dashboard.members.services import hash_token
from dashboard.models import GenerationStatus, Invitation, MemberRole, User
from dashboard.storage import custom_voice_key, get_storage
from dashboard.tenancy.operator import operator_access
from tests import factories, tenant_world
from tests.databases import make_config, web_role
from tests.http import login
from tests.stored import changes, stored_state

PASSWORD = "correct horse battery"
# Routes the sweep doesn't drive, with the reason. Their path parameters are still
# swept by test_path_parameters_never_error.
NOT_DRIVEN = {
    "static": "serves files under static/ and reads neither a form nor a query parameter",
}
# What each URL argument names in a world (an endpoint-specific entry wins).
PATH_ARGS = {
    "org_slug": "slug",
    "generation_id": "generation",
    "voice_id": "voice",
    "membership_id": "member",
    "member_id": "member",
    "invitation_id": "invitation",
    "token": "token",
    "key_id": "api_key",
    "endpoint_id": "webhook_endpoint",
    "delivery_id": "webhook_delivery",
    ("generations.retry", "generation_id"): "failed_generation",
    ("voices.system_voice_audio", "voice_id"): "system_voice",
}
# Valid values the field's type can't suggest ("form class.field").
KNOWN_VALUES = {
    "LoginForm.email": lambda w: w.owner_email,
    "LoginForm.password": lambda w: PASSWORD,
    "ChangePasswordForm.current": lambda w: PASSWORD,
    "GenerateForm.text": lambda w: "Hello from the fuzz.",
    "GenerateForm.voice": lambda w: str(w.system_voice),
    "BulkForm.ids": lambda w: str(w.generation),
}
MISSING, BARE, FILE = "<missing>", "<bare key>", "<file>"

# CI's bound, per route and backend. FUZZ_EXAMPLES=200 for a deeper local run;
# FUZZ_TRIAGE=1 reports a failing example as found instead of shrinking it (each shrink
# step builds a world and sends a request).
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "8")),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate] if os.environ.get("FUZZ_TRIAGE") else list(Phase),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


# -------------------------------------------------------------------------- routes


def _url_map_app() -> Flask:
    """An app built only to read its URL map (the factory touches nothing)."""
    root = Path(tempfile.gettempdir()) / "voxboard-fuzz-url-map"
    return create_app(make_config("sqlite://", root))


RULES = {
    (rule.endpoint, method): rule
    for rule in _url_map_app().url_map.iter_rules()
    for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
}
DRIVEN = sorted(key for key in RULES if key[0] not in NOT_DRIVEN)
BODY_ROUTES = [key for key in DRIVEN if key[1] != "GET"]
GET_ROUTES = [key for key in DRIVEN if key[1] == "GET"]
TEXT_ARG_RULES = sorted(
    {
        (rule.rule, endpoint)
        for (endpoint, _method), rule in RULES.items()
        if any(rule._converters[a].__class__.__name__ != "UUIDConverter" for a in rule.arguments)
    }
)


def route_id(route: tuple[str, str]) -> str:
    return f"{route[1]} {route[0]}"


# --------------------------------------------------------------------------- world


@dataclass
class World:
    """One organisation with one object of each kind, made for one example."""

    slug: str
    owner: User
    owner_email: str
    system_voice: uuid.UUID
    voice: uuid.UUID
    generation: uuid.UUID
    failed_generation: uuid.UUID
    member: uuid.UUID
    invitation: uuid.UUID
    token: str
    api_key: uuid.UUID
    webhook_endpoint: uuid.UUID
    webhook_delivery: uuid.UUID
    wav: bytes = field(repr=False)


_seq = itertools.count(1)
WORLDS_PER_BATCH = 4


def _new_world(system_voice: uuid.UUID, password_hash: str, wav: bytes) -> World:
    n = next(_seq)
    org = factories.make_org(slug=f"fuzz-{n}", name=f"Fuzz {n}")
    owner = factories.make_user(email=f"owner{n}@fuzz.example", password_hash=password_hash)
    factories.make_membership(owner, org, MemberRole.OWNER)
    member = factories.make_membership(factories.make_user(email=f"member{n}@fuzz.example"), org)
    voice = factories.make_voice(org, name="Narrator", language="en-GB")
    key = custom_voice_key(org.id, voice.id)
    get_storage().put(key, io.BytesIO(wav), content_type="audio/wav")
    voice.audio_key, voice.audio_size = key, len(wav)
    voice.audio_sha256 = hashlib.sha256(wav).hexdigest()
    done = factories.finish_generation(factories.make_generation(org, voice), get_storage(), wav)
    failed = factories.make_generation(
        org, voice, status=GenerationStatus.FAILED, error="The engine failed (test)."
    )
    token = secrets.token_urlsafe(16)
    invitation = Invitation(
        org_id=org.id,
        email=f"invitee{n}@fuzz.example",
        role=MemberRole.MEMBER,
        token_hash=hash_token(token),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    db.session.add(invitation)
    db.session.flush()
    api_key, _secret = factories.make_api_key(org)
    endpoint = tenant_world.make_webhook_endpoint(org.id)
    delivery = tenant_world.make_failed_delivery(endpoint)
    return World(
        slug=org.slug,
        owner=owner,
        owner_email=owner.email,
        system_voice=system_voice,
        voice=voice.id,
        generation=done.id,
        failed_generation=failed.id,
        member=member.id,
        invitation=invitation.id,
        token=token,
        api_key=api_key.id,
        webhook_endpoint=endpoint.id,
        webhook_delivery=delivery.id,
        wav=wav,
    )


@pytest.fixture
def make_world(app, tmp_path):
    """Return a function that hands out a fresh world (made in batches: the operator's
    connection costs more than the rows). Jobs are queued on a file no worker reads."""
    app.config.update(JOBS_IMMEDIATE=False, JOBS_URL=f"sqlite:///{tmp_path / 'jobs.db'}")
    wav, _ = factories.speech_sample()
    with app.app_context(), operator_access("fuzz setup"):
        system_voice = factories.make_voice(None, name="Aaron").id
        password_hash = hash_password(PASSWORD)
        db.session.commit()
    pool: list[World] = []

    def build() -> World:
        if not pool:
            with app.app_context(), operator_access("fuzz setup"):
                batch = [
                    _new_world(system_voice, password_hash, wav) for _ in range(WORLDS_PER_BATCH)
                ]
                db.session.commit()
                for world in batch:
                    world.owner = factories.detach(world.owner)
            pool.extend(reversed(batch))
        return pool.pop()

    return build


@pytest.fixture
def snapshot(app):
    """Return a function reading everything stored, on one connection past row-level security."""
    url = app.config.get("OPERATOR_DATABASE_URL")
    if url:
        engine = create_engine(url, **engine_options(url, pooled=False))
    else:
        with app.app_context():
            engine = db.engine  # SQLite: no row-level security to get past
    yield lambda: stored_state(app, engine)
    if url:
        engine.dispose()


def build_path(app: Flask, route: tuple[str, str], world: World) -> str:
    rule = RULES[route]
    values = {}
    for arg in rule.arguments:
        kind = PATH_ARGS.get((route[0], arg)) or PATH_ARGS.get(arg)
        assert kind, f"teach test_input_fuzz.py what {rule.rule} <{arg}> names (PATH_ARGS)"
        values[arg] = getattr(world, kind)
    with app.test_request_context():
        return url_for(route[0], **values)


# ------------------------------------------------------------------ the probe


class Recorded(ImmutableMultiDict):
    """request.args/form/files that note every key a view asks for (during a probe)."""

    sink: set[tuple[str, str]] | None = None

    def __init__(self, kind: str, mapping: Any = None) -> None:
        super().__init__(mapping)
        self.kind = kind

    def _note(self, key: Any) -> None:
        if Recorded.sink is not None and isinstance(key, str):
            Recorded.sink.add((self.kind, key))

    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self._note(key)
        return super().__contains__(key)

    def getlist(self, key, type=None):  # noqa: A002 (werkzeug's signature)
        self._note(key)
        return super().getlist(key, type)


def recording_request(base: type[Request]) -> type[Request]:
    """Return the app's request class (htmx-flask's), with every key read recorded."""

    class RecordingRequest(base):
        @cached_property
        def args(self):
            return Recorded("args", base.args.fget(self))

        def _load_form_data(self) -> None:
            super()._load_form_data()
            for kind in ("form", "files"):
                value = self.__dict__.get(kind)
                if value is not None and not isinstance(value, Recorded):
                    self.__dict__[kind] = Recorded(kind, value)

    return RecordingRequest


@dataclass
class Probe:
    """What a route reads: its forms' fields (by input name) and the keys it asks for."""

    anonymous: bool = False
    fields: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name → (form, field)
    keys: set[tuple[str, str]] = field(default_factory=set)  # ("form"|"args", name)

    @property
    def text_fields(self) -> set[str]:
        """The fields that take text (Flask-WTF's file fields drop any text sent to them)."""
        return {n for n, (_form, bound) in self.fields.items() if not isinstance(bound, FileField)}

    @property
    def takes_files(self) -> bool:
        return any(isinstance(bound, FileField) for _form, bound in self.fields.values())

    @property
    def targets(self) -> list[tuple[str, str]]:
        found = {("form", name) for name in self.fields}
        found |= {("form" if kind == "files" else kind, name) for kind, name in self.keys}
        return sorted(found)

    def baseline(self, world: World, n: int) -> list[tuple[str, Any]]:
        """Valid values for every field of the route's forms (a file for a file field)."""
        items = []
        for name, (form_name, bound) in self.fields.items():
            value = baseline_value(form_name, bound, world, n)
            if value is not None:
                items.append((name, value))
        return items


def baseline_value(form_name: str, bound: Any, world: World, n: int) -> Any:
    if make := KNOWN_VALUES.get(f"{form_name}.{bound.short_name}"):
        return make(world)
    if isinstance(bound, FileField):
        return FILE
    if isinstance(bound, BooleanField):
        return "y"
    if isinstance(bound, SelectField):
        return next(iter(bound.iter_choices()))[0]
    default = bound.default() if callable(bound.default) else bound.default
    if default not in (None, ""):
        return str(default)
    if isinstance(bound, EmailField):
        return f"new{n}@fuzz.example"
    if isinstance(bound, PasswordField):
        return PASSWORD
    if isinstance(bound, HiddenField):
        return None
    if isinstance(bound, StringField):
        return f"Fuzz {n}"
    return None


@contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[FlaskForm], set]]:
    """Record the forms built and the keys read by the requests inside the block.

    Any Flask-WTF form counts, whether or not it inherits the base form (a test in
    tests/app/test_input_refusal.py makes sure they all do).
    """
    forms: list[FlaskForm] = []
    keys: set[tuple[str, str]] = set()
    original = FlaskForm.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if (args[0] if args else kwargs.get("formdata", ...)) is not None:
            forms.append(self)  # bound to the request (not a form only shown, formdata=None)

    with monkeypatch.context() as patch:
        patch.setattr(FlaskForm, "__init__", init)
        Recorded.sink = keys
        try:
            yield forms, keys
        finally:
            Recorded.sink = None


def sends_to_login(response) -> bool:
    if response.status_code == 401:
        return True
    location = response.headers.get("Location", "")
    return response.status_code in {302, 303} and urlsplit(location).path == "/login"


@pytest.fixture
def fuzz_app(app):
    app.request_class = recording_request(app.request_class)
    return app


# A route reads the same keys on either database: each is probed once per session.
_probed: dict[tuple[str, str], Probe] = {}


@pytest.fixture
def probe(fuzz_app, make_world, monkeypatch, route) -> Probe:
    """Find what `route` reads: an empty request, then one with valid values."""
    if route in _probed:
        return _probed[route]
    app, found = fuzz_app, Probe()
    world = make_world()
    answer = app.test_client().open(build_path(app, route, world), method=route[1])
    found.anonymous = not sends_to_login(answer)
    answer.close()
    for attempt in range(2):
        world = make_world()
        client = app.test_client()
        if not found.anonymous:
            login(client, world.owner)
        with recording(monkeypatch) as (forms, keys):
            items = found.baseline(world, 0) if attempt else []
            send(client, app, route, world, items, [], multipart=True, hx=False).close()
        for form in forms:
            for top in form:
                for leaf in leaves(top):
                    found.fields.setdefault(leaf.name, (type(form).__name__, leaf))
        found.keys |= keys
    _probed[route] = found
    return found


# ------------------------------------------------------------- generated input

SPECIAL = [
    "\x00",
    "a\x00b",
    "\x01",
    "\x1b[2J",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "x\udfffy",
    "\ufffe",
    "\uffff",
    "\ufdd0",
    "\U0010ffff",
    "\u202eevil",
    "\u2066x\u2069",
    "\u200f",
    "\ufeff",
    "\t",
    "\r\n",
    " ",
    "",
    "１２３",
    "٣",
    "NaN",
    "-inf",
    "1e309",
    "-0",
    "0x10",
    "9" * 400,
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "{{ 7 * 7 }}",
    "%00",
    "../../etc/passwd",
    "deleted:",
    "deleted:\x00",
    "00000000-0000-0000-0000-000000000000",
    "true",
    "[]",
    "y",
]
VALUE = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.characters(exclude_categories=()), max_size=24),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Co", "Cn"]), min_size=1, max_size=6),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(500, 25_000)),
    st.integers().map(str),
    st.floats().map(str),
    st.binary(max_size=16),  # sent as they are: most aren't UTF-8
)
SHAPE = st.one_of(
    VALUE.map(lambda v: [v]),
    st.lists(VALUE, min_size=2, max_size=3),  # several values where one is expected
    st.sampled_from([MISSING, BARE, FILE]),
)
KEY = st.text(st.characters(exclude_categories=()), min_size=1, max_size=8)
LATIN_1 = st.characters(max_codepoint=0xFF, exclude_characters="\r\n")  # what WSGI headers carry


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def as_received(value: str | bytes) -> str:
    """What the app reads for `value`: bytes that aren't UTF-8 never become text."""
    return as_bytes(value).decode("utf-8", "replace")


def urlencode(items: list[tuple[str, Any]]) -> str:
    parts = []
    for name, value in items:
        key = quote_from_bytes(as_bytes(name), safe="")
        parts.append(
            key if value is BARE else f"{key}={quote_from_bytes(as_bytes(value), safe='')}"
        )
    return "&".join(parts)


def multipart_body(items: list[tuple[str, Any]], wav: bytes) -> tuple[bytes, str]:
    boundary = "fuzz" + secrets.token_hex(8)
    out = io.BytesIO()
    for name, value in items:
        disposition = b'form-data; name="' + as_bytes(name).replace(b'"', b"%22") + b'"'
        if value is FILE:
            out.write(b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition)
            out.write(b'; filename="voice.wav"\r\nContent-Type: audio/wav\r\n\r\n' + wav + b"\r\n")
            continue
        data = b"" if value is BARE else as_bytes(value)
        out.write(b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition)
        out.write(b"\r\n\r\n" + data + b"\r\n")
    out.write(b"--" + boundary.encode() + b"--\r\n")
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def send(client, app, route, world, form_items, arg_items, *, multipart, hx, user_agent=None):
    """Send one request to `route` in `world` with exactly these (name, value) pairs."""
    path = build_path(app, route, world)
    headers = {"HX-Request": "true"} if hx else {}
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    query = urlencode(arg_items)
    if route[1] == "GET":
        return client.open(path, method="GET", query_string=query, headers=headers)
    if multipart:
        body, content_type = multipart_body(form_items, world.wav)
    else:
        items = [(k, v) for k, v in form_items if v is not FILE]
        body, content_type = urlencode(items).encode(), "application/x-www-form-urlencoded"
    return client.open(
        path,
        method=route[1],
        query_string=query,
        data=body,
        content_type=content_type,
        headers=headers,
    )


def apply(baseline: list[tuple[str, Any]], overrides: dict[str, Any]) -> list[tuple[str, Any]]:
    """Return `baseline` with the overridden names replaced (or dropped when MISSING)."""
    items = [(k, v) for k, v in baseline if k not in overrides]
    for name, shape in overrides.items():
        if shape in (MISSING, BARE, FILE):
            items += [] if shape is MISSING else [(name, shape)]
        else:
            items += [(name, value) for value in shape]
    return items


def unholdable(shape: Any) -> bool:
    return isinstance(shape, list) and any(first_unholdable(as_received(v)) for v in shape)


# -------------------------------------------------------------------- checking


def body_of(response) -> bytes:
    data = response.get_data()
    response.close()
    return data


def still_renders(app: Flask, client, route, response, world: World) -> None:
    """After a request that may have written: where it leads, its page and the org's home.

    A GET's own answer was the page, and a GET writes nothing another page shows.
    """
    target = response.headers.get("HX-Redirect") or response.headers.get("Location")
    if target:
        followed = client.get(urlsplit(target).path)
        assert followed.status_code < 500, f"{target} after the request"
        body_of(followed)
    if route[1] == "GET":
        return
    with app.app_context(), operator_access("fuzz check"):
        owner = factories.detach(
            db.session.scalars(select(User).filter_by(id=world.owner.id)).one()
        )
    login(client, owner)  # whatever the request did to the session (logout, new password)
    home = client.get(url_for_world(app, "org.home", world))
    assert home.status_code == 200, f"the org's home answers {home.status_code} afterwards"
    body_of(home)
    if "GET" in (RULES[route].methods or ()):
        page = build_path(app, (route[0], "GET"), world)
        shown = client.get(page)  # may be gone (404) after a delete, never broken
        assert shown.status_code < 500, f"{page} answers {shown.status_code} afterwards"
        body_of(shown)


def url_for_world(app: Flask, endpoint: str, world: World) -> str:
    with app.test_request_context():
        return url_for(endpoint, org_slug=world.slug)


@dataclass
class Example:
    """One request: the route's valid values with some fields or parameters replaced."""

    overrides: dict[tuple[str, str], Any]  # ("form"|"args", name) → shape
    multipart: bool = False
    hx: bool = False
    user_agent: str | None = None


def check(app, snapshot, route, world, probe, example: Example) -> int:
    """Send `example`; assert: no 5xx, a refusal where one is due, nothing written by a
    refusal, and the pages render after anything else. Return the status."""
    form_over = {name: s for (kind, name), s in example.overrides.items() if kind == "form"}
    arg_over = {name: s for (kind, name), s in example.overrides.items() if kind == "args"}
    form_items = apply(probe.baseline(world, next(_seq)), form_over)
    arg_items = apply([], arg_over)
    client = app.test_client()
    if not probe.anonymous:
        login(client, world.owner)  # writes the session's row: before the snapshot
    before = snapshot()
    response = send(
        client,
        app,
        route,
        world,
        form_items,
        arg_items,
        multipart=example.multipart,
        hx=example.hx,
        user_agent=example.user_agent,
    )
    status, body = response.status_code, body_of(response)
    assert status < 500, body[:2000]
    if example.user_agent and first_header_control(example.user_agent):
        assert status == 400, f"a control character in a header answered {status}"
    bad_args = any(
        first_unholdable(as_received(name)) or unholdable(shape)
        for name, shape in arg_over.items()
        if shape is not MISSING
    )
    if bad_args:
        assert status == 400, f"an unholdable query parameter answered {status}"
    bad_field = any(unholdable(s) for name, s in form_over.items() if name in probe.text_fields)
    if bad_field and route[1] != "GET":
        assert 400 <= status < 500, f"an unholdable form field answered {status}"
    if 400 <= status < 500:
        assert changes(before, snapshot()) == {}, f"a {status} refusal wrote"
        assert body.strip(), "a refusal without a page"
    else:
        still_renders(app, client, route, response, world)
    return status


# ------------------------------------------------------------- every input, each case

# Each input of each route gets each of these, one at a time, before anything random:
# the classes of the hardening issue, so none depends on the generator's luck. The
# other unholdable characters rotate over the inputs (the refusal is one rule for all).
UNHOLDABLE_SAMPLES = ["\x1b", "\x85", "\ufffe", "\x7f", "\U0010ffff", "\x0b", "\ufdd0", "\x01"]
CASES = {
    "nul": lambda _: ["a\x00b"],
    "unholdable": lambda char: [f"a{char}b"],
    "second value nul": lambda _: ["ok", "x\x00"],
    "lone surrogate": lambda _: ["\ud800x"],  # sent as %ED%A0%80, which never decodes to text
    "file": lambda _: FILE,
    "missing": lambda _: MISSING,
    "very long": lambda _: ["é" * 30_000],
}
# A key no route reads gets the few cases that can matter to code that reads none.
UNKNOWN_CASES = ("nul", "second value nul", "very long")


def cases_for(route: tuple[str, str], probe: Probe) -> Iterator[tuple[str, Example]]:
    # HTTP forbids controls in a header; the User-Agent is stored with a login session.
    yield "User-Agent with NUL", Example({}, multipart=probe.takes_files, user_agent="a\x00b")
    targets = [t for t in probe.targets if route[1] != "GET" or t[0] == "args"]
    unknown = [("args", "x\x00"), ("form", "unknown")] if route[1] != "GET" else [("args", "x\x00")]
    for index, target in enumerate([*targets, *unknown]):
        char = UNHOLDABLE_SAMPLES[index % len(UNHOLDABLE_SAMPLES)]
        for name, make in CASES.items():
            shape = make(char)
            if target in unknown and name not in UNKNOWN_CASES:
                continue
            if shape is FILE and target[0] == "args":
                continue
            multipart = shape is FILE or probe.takes_files
            yield f"{target[1]!r}={name}", Example({target: shape}, multipart=multipart)


@web_role
@pytest.mark.parametrize("route", DRIVEN, ids=route_id)
def test_each_input_of_each_route_survives_each_case(fuzz_app, make_world, snapshot, probe, route):
    """Every field, form key and query parameter the route reads × every case above."""
    world = make_world()
    for label, example in cases_for(route, probe):
        try:
            status = check(fuzz_app, snapshot, route, world, probe, example)
        except AssertionError as exc:
            raise AssertionError(f"{route_id(route)} with {label}: {exc}") from exc
        if status < 400:
            world = make_world()  # the request may have changed or deleted what it names


# ---------------------------------------------------------------- generated input


def overrides_strategy(probe: Probe, kinds: tuple[str, ...], shapes) -> st.SearchStrategy:
    known = [t for t in probe.targets if t[0] in kinds]  # a GET's formdata is never read
    unknown = st.tuples(st.sampled_from(kinds), KEY)
    # Mostly what the route reads; now and then a key it doesn't know.
    target = (
        st.one_of(st.sampled_from(known), st.sampled_from(known), unknown) if known else unknown
    )
    return st.dictionaries(target, shapes, min_size=1, max_size=3)


@web_role
@pytest.mark.parametrize("route", DRIVEN, ids=route_id)
@FUZZ
@given(data=st.data())
def test_generated_input_never_errors(fuzz_app, make_world, snapshot, probe, route, data):
    """Generated values, shapes and combinations of up to three inputs at once."""
    if route[1] == "GET":
        overrides = data.draw(
            overrides_strategy(probe, ("args",), SHAPE.filter(lambda s: s is not FILE)),
            label="overrides",
        )
        multipart = False
    else:
        overrides = data.draw(overrides_strategy(probe, ("form", "args"), SHAPE), label="overrides")
        multipart = probe.takes_files or data.draw(st.booleans(), label="multipart")
    example = Example(
        overrides,
        multipart=multipart,
        hx=data.draw(st.booleans(), label="htmx"),
        user_agent=data.draw(st.none() | st.text(LATIN_1, max_size=20), label="user agent"),
    )
    check(fuzz_app, snapshot, route, make_world(), probe, example)


@web_role
@FUZZ
@given(data=st.data())
def test_path_parameters_never_error(fuzz_app, make_world, snapshot, data):
    """Text path parameters (slugs, tokens, file names) of every rule, as raw bytes."""
    rule_text, endpoint = data.draw(st.sampled_from(TEXT_ARG_RULES), label="rule")
    rule = next(r for (e, _m), r in RULES.items() if e == endpoint and r.rule == rule_text)
    world = make_world()
    client = fuzz_app.test_client()
    login(client, world.owner)
    path, refused = rule_text, False
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__
        if converter == "UUIDConverter":
            value = str(getattr(world, PATH_ARGS.get((endpoint, arg)) or PATH_ARGS[arg]))
        else:
            raw = data.draw(VALUE.filter(lambda v: len(as_bytes(v)) > 0), label=arg)
            refused |= bool(first_unholdable(as_received(raw)))
            safe = "/" if converter == "PathConverter" else ""
            value = quote_from_bytes(as_bytes(raw)[:2000], safe=safe)
        path = _fill(path, arg, value)
    before = snapshot()
    for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
        response = client.open(path, method=method)
        status, body = response.status_code, body_of(response)
        assert status < 500, body[:2000]
        if refused:
            assert status == 404, f"{method} {path[:200]} answered {status}"
    if refused:
        assert changes(before, snapshot()) == {}


def _fill(path: str, arg: str, value: str) -> str:
    """Put `value` where `<converter:arg>` or `<arg>` stands in a rule."""
    start = path.find("<")
    while start != -1:
        end = path.index(">", start)
        if path[start + 1 : end].split(":")[-1] == arg:
            return path[:start] + value + path[end + 1 :]
        start = path.find("<", end)
    return path


def test_every_route_is_swept_or_listed_with_a_reason(app):
    """A route missing from both lists would escape the sweep without anyone deciding it."""
    every = {rule.endpoint for rule in app.url_map.iter_rules()}
    swept = {endpoint for endpoint, _ in DRIVEN}
    assert every == swept | set(NOT_DRIVEN), every ^ (swept | set(NOT_DRIVEN))
    assert BODY_ROUTES and GET_ROUTES and TEXT_ARG_RULES
