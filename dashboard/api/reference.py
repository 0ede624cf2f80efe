"""The OpenAPI document (flask-smorest, from the schemas) and the readable API reference.

`PublicApi` is flask-smorest's `Api` with two changes: it leaves error handling to
`dashboard.errors` (which answers problems under /api/v1 and pages elsewhere, where
flask-smorest would answer JSON for the whole site), and it documents every error as
`application/problem+json`. The document is served at /api/v1/openapi.json; the
reference page (/api/docs) is rendered on the server from the same document, so the
strict CSP needs no script from anywhere.
"""

from __future__ import annotations

import http
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import Flask, current_app, render_template, request, url_for
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from markupsafe import Markup, escape

from dashboard.api import API_BLUEPRINTS, docs_bp
from dashboard.api.problems import API_PREFIX, KINDS, MEDIA_TYPE, problem_type
from dashboard.models import ApiScope
from dashboard.tenancy import MANAGERS


class FieldProblem(ma.Schema):
    path = ma.fields.String(required=True, metadata={"description": "The field, e.g. text"})
    in_ = ma.fields.String(
        data_key="in", required=True, metadata={"description": "body, query, header…"}
    )
    message = ma.fields.String(required=True)


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 problem details."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.List(ma.fields.Nested(FieldProblem))


class PublicApi(Api):
    """flask-smorest's Api, with problem details for errors (see the module doc)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Leave errors to `dashboard.errors`, which knows the rest of the site too."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "An error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


SPEC_OPTIONS = {
    "info": {
        "description": (
            "Voxboard's public API. Authenticate every request with an organisation API "
            "key: `Authorization: Bearer vxb_…`. Errors are RFC 9457 problem details."
        )
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"apiKey": []}],
}


def init_app(app: Flask) -> PublicApi:
    """Mount the API blueprints and the document (call from `register_blueprints`)."""
    app.config.setdefault("API_SPEC_OPTIONS", SPEC_OPTIONS)
    api = PublicApi(app)
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_bp)
    return api


def document() -> dict[str, Any]:
    """Return the OpenAPI document of the current app."""
    api: PublicApi = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api.spec.to_dict()


@docs_bp.get("/docs", endpoint="reference")
def reference():
    """Show the API reference: every endpoint, its parameters, answers and problems."""
    return render_template("api/reference.html", spec=document(), problem_kinds=KINDS)


# ------------------------------------------------------- the reference page's view model
#
# The page is rendered from the OpenAPI document itself (`api/reference.html` calls
# `reference_page(spec, orgs)`), so it can't drift from what the API answers: `$ref`s
# are resolved here and every schema is described as a `Shape` the template prints.

_SCOPE_IN_TEXT = re.compile(r"`(" + "|".join(re.escape(s.value) for s in ApiScope) + r")`")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True, slots=True)
class Shape:
    """What a value looks like: its type (or the object it is), format, choices, limits."""

    kind: str = ""
    ref: str | None = None
    format: str | None = None
    enum: tuple[str, ...] = ()
    nullable: bool = False
    items: Shape | None = None
    limits: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Field:
    """A parameter (`location` says where it goes) or a property of an object."""

    name: str
    shape: Shape
    required: bool
    description: Markup
    location: str = ""
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    status: str
    description: Markup
    media_type: str | None
    shape: Shape | None


@dataclass(frozen=True, slots=True)
class Body:
    media_type: str
    required: bool
    shape: Shape
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: Markup
    description: Markup
    scope: ApiScope | None
    parameters: tuple[Field, ...]
    body: Body | None
    answers: tuple[Answer, ...]


@dataclass(frozen=True, slots=True)
class Section:
    anchor: str
    title: str
    description: Markup
    operations: tuple[Operation, ...]


@dataclass(frozen=True, slots=True)
class Model:
    """An object of `components/schemas` some operation sends or answers."""

    name: str
    description: Markup
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    explanation: Markup
    type_url: str


@dataclass(frozen=True, slots=True)
class Reference:
    title: str
    version: str
    description: Markup
    base_url: str
    document_url: str
    sections: tuple[Section, ...]
    models: tuple[Model, ...]
    problems: tuple[Problem, ...]
    scopes: tuple[ApiScope, ...]
    key_pages: tuple[tuple[str, str], ...]


def code_spans(text: str | None) -> Markup:
    """Escape `text` and show its `backquoted` words as code (the document's Markdown)."""
    escaped = str(escape(text or ""))
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


def ref_name(ref: str) -> str:
    """Return the last part of a `$ref` ("#/components/schemas/Voice" → "Voice")."""
    return ref.rsplit("/", 1)[-1]


def resolve(spec: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow `$ref`s within the document until a node that isn't one."""
    seen = set()
    while "$ref" in node and node["$ref"] not in seen:
        seen.add(node["$ref"])
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node = target
    return node


def shape(schema: Mapping[str, Any] | None) -> Shape:
    """Describe a schema for people: "string (uuid)", "one of …", "array of Voice", limits."""
    schema = schema or {}
    if "$ref" in schema:
        return Shape(kind="object", ref=ref_name(schema["$ref"]))
    if one_of := schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf"):
        refs = [part for part in one_of if "$ref" in part]
        nullable = any(part.get("type") == "null" for part in one_of)
        if refs:
            return Shape(kind="object", ref=ref_name(refs[0]["$ref"]), nullable=nullable)
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or ())
    enum = tuple(str(v) for v in schema.get("enum", ()) if v is not None)
    nullable = "null" in types or None in schema.get("enum", ())
    kind = " or ".join(t for t in types if t != "null") or ("string" if enum else "any")
    items = shape(schema["items"]) if kind == "array" and "items" in schema else None
    return Shape(
        kind=kind,
        format=schema.get("format"),
        enum=enum,
        nullable=bool(nullable),
        items=items,
        limits=tuple(limits(schema)),
    )


def limits(schema: Mapping[str, Any]) -> list[str]:
    """Return a schema's bounds and default in words."""
    found = []
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None or high is not None:
        found.append(_bounds(low, high, "characters"))
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        found.append(_bounds(low, high, ""))
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None or high is not None:
        found.append(_bounds(low, high, "items"))
    if "default" in schema and schema["default"] not in (None, ""):
        found.append(f"default {_literal(schema['default'])}")
    return found


def _bounds(low: Any, high: Any, unit: str) -> str:
    tail = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{_literal(low)}–{_literal(high)}{tail}"
    if low is not None:
        return f"at least {_literal(low)}{tail}"
    return f"at most {_literal(high)}{tail}"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def properties(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[Field, ...]:
    """Return an object schema's properties as fields, required ones first."""
    schema = resolve(spec, schema)
    required = set(schema.get("required", ()))
    fields = [
        Field(
            name=name,
            shape=shape(prop),
            required=name in required,
            description=code_spans(resolve(spec, prop).get("description")),
            read_only=bool(prop.get("readOnly")),
        )
        for name, prop in (schema.get("properties") or {}).items()
    ]
    return tuple(sorted(fields, key=lambda f: not f.required))


def parameters(spec: Mapping[str, Any], shared: list, own: list) -> tuple[Field, ...]:
    """Merge a path's parameters with its operation's (the operation's win), path ones first."""
    merged: dict[tuple[str, str], Mapping[str, Any]] = {}
    for raw in [*shared, *own]:
        parameter = resolve(spec, raw)
        merged[(parameter.get("in", ""), parameter.get("name", ""))] = parameter
    order = {"path": 0, "header": 1, "query": 2, "cookie": 3}
    fields = [
        Field(
            name=p.get("name", ""),
            shape=shape(p.get("schema")),
            required=bool(p.get("required")),
            description=code_spans(p.get("description")),
            location=p.get("in", ""),
        )
        for p in merged.values()
    ]
    return tuple(sorted(fields, key=lambda f: order.get(f.location, 9)))


def content_shape(
    spec: Mapping[str, Any], content: Mapping[str, Any] | None
) -> tuple[str | None, Mapping[str, Any] | None]:
    """Return the first media type of a `content` map and its schema."""
    for media_type, entry in (content or {}).items():
        return media_type, (entry or {}).get("schema")
    return None, None


def request_body(spec: Mapping[str, Any], operation: Mapping[str, Any]) -> Body | None:
    if "requestBody" not in operation:
        return None
    body = resolve(spec, operation["requestBody"])
    media_type, schema = content_shape(spec, body.get("content"))
    if media_type is None:
        return None
    fields = properties(spec, schema or {})
    return Body(media_type, bool(body.get("required")), shape(schema), fields)


def answers(spec: Mapping[str, Any], responses: Mapping[str, Any]) -> tuple[Answer, ...]:
    """Return an operation's responses by status, "default" (any other status) last."""
    found = []
    for status, raw in responses.items():
        response = resolve(spec, raw)
        media_type, schema = content_shape(spec, response.get("content"))
        found.append(
            Answer(
                str(status),
                code_spans(response.get("description")),
                media_type,
                shape(schema) if schema is not None else None,
            )
        )
    return tuple(sorted(found, key=lambda a: (not a.status.isdigit(), a.status)))


def view_scopes() -> dict[tuple[str, str], ApiScope]:
    """Map (OpenAPI path, method) to the scope its view requires (`auth.require_scope`)."""
    found = {}
    for rule in current_app.url_map.iter_rules():
        scope = getattr(current_app.view_functions.get(rule.endpoint), "required_scope", None)
        if scope is None:
            continue
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        for method in rule.methods or ():
            found[(path, method.lower())] = ApiScope(scope)
    return found


def operation_scope(operation: Mapping[str, Any], from_views: ApiScope | None) -> ApiScope | None:
    """Return the scope an operation needs: its security requirement, its text, or its view."""
    for requirement in operation.get("security") or ():
        for scopes in requirement.values():
            for value in scopes:
                if value in {s.value for s in ApiScope}:
                    return ApiScope(value)
    text = f"{operation.get('summary', '')} {operation.get('description', '')}"
    if match := _SCOPE_IN_TEXT.search(text):
        return ApiScope(match.group(1))
    return from_views


def referenced_models(spec: Mapping[str, Any]) -> list[str]:
    """Return the component schemas the paths use, directly or inside each other, in order."""
    schemas = spec.get("components", {}).get("schemas", {})
    order: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = resolve(spec, {"$ref": ref})
                name = ref_name(ref)
                if ref.startswith("#/components/schemas/") and name not in order:
                    order.append(name)
                    walk(schemas.get(name))
                elif not ref.startswith("#/components/schemas/"):
                    walk(target)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec.get("paths", {}))
    return order


def section_title(tag: str) -> str:
    """Turn a blueprint's tag ("api_voices") into a heading ("Voices")."""
    return tag.removeprefix("api_").replace("_", " ").capitalize()


def reference_page(
    spec: Mapping[str, Any], problem_kinds: Mapping[str, str], orgs: Any = ()
) -> Reference:
    """Return everything the reference page shows, from the OpenAPI document `spec`.

    `problem_kinds` maps each problem kind to its explanation; `orgs` is the header's
    (organisation, role) list: the page links to the API keys page of each one the
    reader manages.
    """
    from_views = view_scopes()
    by_tag: dict[str, list[Operation]] = {}
    for path, item in (spec.get("paths") or {}).items():
        for method in _METHODS:
            if method not in item:
                continue
            operation = item[method]
            slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
            by_tag.setdefault((operation.get("tags") or ["other"])[0], []).append(
                Operation(
                    anchor=f"op-{method}-{slug}",
                    method=method.upper(),
                    path=path,
                    summary=code_spans(operation.get("summary")),
                    description=code_spans(operation.get("description")),
                    scope=operation_scope(operation, from_views.get((path, method))),
                    parameters=parameters(
                        spec, item.get("parameters", []), operation.get("parameters", [])
                    ),
                    body=request_body(spec, operation),
                    answers=answers(spec, operation.get("responses", {})),
                )
            )
    tags = {t["name"]: t for t in spec.get("tags", ())}
    order = [*(name for name in tags if name in by_tag), *(t for t in by_tag if t not in tags)]
    sections = tuple(
        Section(
            anchor=f"section-{name.removeprefix('api_')}",
            title=section_title(name),
            description=code_spans(tags.get(name, {}).get("description")),
            operations=tuple(by_tag[name]),
        )
        for name in order
    )
    schemas = spec.get("components", {}).get("schemas", {})
    models = tuple(
        Model(name, code_spans(schemas[name].get("description")), properties(spec, schemas[name]))
        for name in referenced_models(spec)
        if name in schemas
    )
    problems = tuple(Problem(k, code_spans(v), problem_type(k)) for k, v in problem_kinds.items())
    info = spec.get("info", {})
    return Reference(
        title=info.get("title", "API"),
        version=info.get("version", ""),
        description=code_spans(info.get("description")),
        base_url=request.url_root.rstrip("/") + API_PREFIX,
        document_url=url_for("api-docs.openapi_json"),
        sections=sections,
        models=models,
        problems=problems,
        scopes=tuple(ApiScope),
        key_pages=tuple(
            (org.name, url_for("api_keys.index", org_slug=org.slug))
            for org, role in orgs
            if role in MANAGERS
        ),
    )
