"""The API reference (/api/docs): rendered on the server from the OpenAPI document, with
every operation, its parameters, body and answers, and an anchor for each problem kind."""

from __future__ import annotations

import re

import pytest

from dashboard.api import reference
from dashboard.api.problems import KINDS, problem_type
from dashboard.api.reference import Shape, document, reference_page, shape
from dashboard.extensions import db
from dashboard.models import ApiScope, MemberRole
from tests import factories
from tests.api.helpers import element_text, ids
from tests.http import login


@pytest.fixture
def spec(app):
    with app.test_request_context():
        return document()


@pytest.fixture
def page(client) -> str:
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def operations(spec):
    for path, item in spec["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                yield path, method, item[method]


def anchor(path: str, method: str) -> str:
    return f"op-{method}-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def test_anyone_may_read_it_and_it_needs_no_inline_script(client, page):
    response = client.get("/api/docs")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page


def test_the_introduction_says_how_to_call_the_api(app, page):
    intro = element_text(page, "getting-started")
    assert "http://localhost/api/v1" in intro
    assert "Authorization: Bearer vxb_…" in intro and "API keys" in intro
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"):
        assert header in intro
    assert app.config["API_RATE_LIMIT"] in intro
    assert "application/problem+json" in intro and "next_cursor" in intro and "cursor" in intro
    for scope in ApiScope:
        assert scope.value in intro and scope.label in intro
    assert 'href="/api/v1/openapi.json"' in page


def test_every_operation_of_the_document_has_its_entry(spec, page):
    found = 0
    for path, method, operation in operations(spec):
        entry = element_text(page, anchor(path, method))
        assert entry is not None, f"{method.upper()} {path} is missing"
        assert entry.startswith(f"{method.upper()} {path}")
        summary = re.sub(r"`([^`]*)`", r"\1", operation.get("summary", ""))
        assert summary in entry
        for status in operation["responses"]:
            assert ("other" if status == "default" else status) in entry
        assert f'href="#{anchor(path, method)}"' in page  # the table of contents
        found += 1
    assert found >= 8


def test_parameters_are_listed_with_where_they_go_type_and_whether_required(page):
    entry = element_text(page, anchor("/api/v1/voices", "get"))
    assert "Parameters Name In Type Required Description" in entry
    assert "cursor query string or null optional next_cursor of the previous page." in entry
    assert "limit query integer 1–100 · default 20 optional" in entry
    voice = element_text(page, anchor("/api/v1/voices/{voice_id}", "get"))
    assert "voice_id path string (uuid) required" in voice  # a path-level parameter
    create = element_text(page, anchor("/api/v1/generations", "post"))
    assert "Idempotency-Key header" in create


def test_the_request_body_is_the_resolved_schema(spec, page):
    operation = spec["paths"]["/api/v1/generations"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/GenerationCreate"
    entry = element_text(page, anchor("/api/v1/generations", "post"))
    assert "Request body application/json, GenerationCreate" in entry
    assert "text string 1–5,000 characters required What to say" in entry
    assert "voice_id string (uuid) required" in entry
    assert "temperature number 0.0–2.0 · default 0.8 optional" in entry
    # Required fields come first.
    assert entry.index("voice_id string") < entry.index("temperature number")


def test_the_scope_an_operation_needs_is_named(page):
    listing = element_text(page, anchor("/api/v1/voices", "get"))
    assert "Needs the scope voices:read" in listing
    submit = element_text(page, anchor("/api/v1/generations", "post"))
    assert "Needs the scope generations:write" in submit
    # Its summary doesn't say; the view's `require_scope` does.
    one = element_text(page, anchor("/api/v1/generations/{generation_id}", "get"))
    assert "Needs the scope generations:read" in one


def test_answers_name_their_objects_which_are_described_below(spec, page):
    entry = element_text(page, anchor("/api/v1/voices", "get"))
    assert "200 OK VoicePage application/json" in entry
    assert "422 Unprocessable Entity Problem application/problem+json" in entry
    assert 'href="#schema-VoicePage"' in page
    for name in ("VoicePage", "Voice", "Problem", "FieldProblem", "GenerationCreate"):
        assert f"schema-{name}" in ids(page), name
    voice_page = element_text(page, "schema-VoicePage")
    assert "data array of Voice required" in voice_page
    assert "schema-PaginationMetadata" not in ids(page)  # in the document, used by nothing


def test_every_problem_kind_has_its_anchor_and_explanation(app, page):
    anchors = ids(page)
    for kind, explanation in KINDS.items():
        assert f"problem-{kind}" in anchors
        text = element_text(page, f"problem-{kind}")
        assert re.sub(r"`([^`]*)`", r"\1", explanation) in text
        with app.test_request_context():
            url = problem_type(kind)
        # The `type` of a problem answer points at exactly this element.
        assert url == f"http://localhost/api/docs#problem-{kind}"
        assert url in text


def test_backquoted_words_are_shown_as_code_and_text_is_escaped(page):
    assert "<code>Retry-After</code> seconds." in page
    assert "`" not in element_text(page, "problems")


def test_managers_get_links_to_their_key_pages(app, client):
    with app.app_context():
        mine = factories.make_org(slug="mine", name="Mine")
        theirs = factories.make_org(slug="theirs")
        user = factories.make_user()
        factories.make_membership(user, mine, MemberRole.ADMIN)
        factories.make_membership(user, theirs, MemberRole.MEMBER)
        db.session.commit()
        user = factories.detach(user)
    login(client, user)
    intro = client.get("/api/docs").get_data(as_text=True)
    assert 'Yours:\n      <a href="/o/mine/settings/api-keys/">Mine</a>.' in intro
    assert "/o/theirs/settings/api-keys/" not in intro


# ------------------------------------------------------------- the document, read for people


def test_shapes_describe_types_formats_choices_and_limits():
    assert shape({"$ref": "#/components/schemas/Voice"}) == Shape(kind="object", ref="Voice")
    nullable = shape({"type": ["string", "null"], "format": "uuid", "default": None})
    assert (nullable.kind, nullable.format, nullable.nullable, nullable.limits) == (
        "string",
        "uuid",
        True,
        (),
    )
    choice = shape({"enum": ["queued", "failed", None], "default": None})
    assert (choice.enum, choice.nullable) == (("queued", "failed"), True)
    listed = shape({"type": "array", "items": {"$ref": "#/components/schemas/Voice"}})
    assert listed.kind == "array" and listed.items.ref == "Voice"
    bounded = shape({"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000})
    assert bounded.limits == ("1–10,000", "default 1,000")
    assert shape({"type": "string", "minLength": 1}).limits == ("at least 1 characters",)


def test_a_document_with_security_scopes_refs_and_unknown_tags_is_read(app):
    spec = {
        "info": {"title": "T", "version": "v9", "description": "Use `x`."},
        "tags": [{"name": "api_things", "description": "Things <b>here</b>."}],
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "part": {"$ref": "#/components/schemas/Part"},
                    },
                    "required": ["id"],
                },
                "Part": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "Unused": {"type": "object"},
            },
            "parameters": {"Q": {"in": "query", "name": "q", "schema": {"type": "string"}}},
        },
        "paths": {
            "/api/v1/things": {
                "get": {
                    "tags": ["api_things"],
                    "summary": "List things.",
                    "security": [{"apiKey": ["voices:write"]}],
                    "parameters": [{"$ref": "#/components/parameters/Q"}],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}
                                }
                            },
                        }
                    },
                }
            },
            "/api/v1/other": {
                "delete": {"tags": ["misc"], "responses": {"204": {"description": "Gone"}}}
            },
        },
    }
    with app.test_request_context():
        page = reference_page(spec, {"a-kind": "Explained `here`."})
    assert [s.title for s in page.sections] == ["Things", "Misc"]
    assert str(page.sections[0].description) == "Things &lt;b&gt;here&lt;/b&gt;."
    (things,) = page.sections[0].operations
    assert things.scope is ApiScope.VOICES_WRITE
    assert [p.name for p in things.parameters] == ["q"]
    assert things.answers[0].shape.ref == "Thing"
    assert [m.name for m in page.models] == ["Thing", "Part"]
    assert str(page.problems[0].explanation) == "Explained <code>here</code>."
    assert page.problems[0].type_url.endswith("/api/docs#problem-a-kind")
    assert reference.referenced_models(spec) == ["Thing", "Part"]
