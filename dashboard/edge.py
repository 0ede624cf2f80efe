"""Text no page or database can hold, refused where it enters: forms, query, path, headers.

PostgreSQL refuses NUL in text (and SQLite's string functions stop at it); a control
character or a noncharacter is not text a person typed, and a lone surrogate can't
even be encoded as UTF-8, so a page that echoes one fails to render. Rather than
each field, filter and query guessing which of these it survives, everything a
client sends is checked once, here, before any view, validator or query sees it:

- form fields: `dashboard.forms.Form` (every form's base) refuses the field with an
  inline error (422, like any other form error);
- query parameters: 400 with a plain sentence (`refuse_unholdable_args`);
- path parameters: 404, as no object can be named that way (`refuse_unholdable_path`);
- headers: 400 for a control character, which HTTP itself forbids in a field value
  (RFC 9110 §5.5: reject or replace) and some servers pass through; the User-Agent
  is stored with each login session (`refuse_control_headers`).

Refused: NUL; the C0 controls except tab, line feed and carriage return; DEL; the C1
controls; surrogates (only a lone one can reach a Python string); and Unicode's 66
noncharacters (U+FDD0–U+FDEF and the last two code points of every plane, U+FFFE and
U+FFFF among them), which are reserved for a program's internal use and never text.
Bidirectional controls, private-use and unassigned code points are text and pass.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, abort, request

# The character class of the rule above, in one place.
_UNHOLDABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


# HTTP field values: no NUL, CR, LF or other C0 control but tab, and no DEL. Bytes
# from 0x80 are obs-text, which WSGI hands over decoded as Latin-1.
_HEADER_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def first_unholdable(text: str) -> str | None:
    """Return the first character of `text` that can't be stored or shown, or None."""
    found = _UNHOLDABLE.search(text)
    return found.group() if found else None


def scrub(text: str) -> str:
    """Return `text` with each unholdable character replaced by U+FFFD, to show it back."""
    return _UNHOLDABLE.sub("\ufffd", text)


def describe(char: str) -> str:
    """Name `char` the way a person can look it up: "a NUL character (U+0000)"."""
    code = ord(char)
    point = f"U+{code:04X}"
    if code == 0:
        return f"a NUL character ({point})"
    if 0xD800 <= code <= 0xDFFF:
        return f"a broken character (half of a surrogate pair, {point})"
    if code < 0xA0:
        return f"a control character ({point})"
    return f"a character reserved for programs' internal use ({point})"


def field_refusal(label: str, char: str) -> str:
    """Return the message a form field gets when it holds `char` (see the module doc)."""
    return (
        f"{label} contains {describe(char)}, which can't be saved; "
        "remove it (paste the text as plain text) and try again."
    )


def args_refusal(name: str, char: str) -> str:
    """Return the message a query parameter gets when it holds `char`."""
    return (
        f"The link's “{scrub(name)[:40]}” value contains {describe(char)}, which can't be "
        "used; remove it from the address and try again."
    )


def refuse_unholdable_path(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Answer 404 when a path parameter holds a character no object's name can hold."""
    for value in (values or {}).values():
        if isinstance(value, str) and first_unholdable(value):
            abort(404)


def refuse_unholdable_args() -> None:
    """Answer 400 when a query parameter's name or value holds an unholdable character."""
    for name, values in request.args.lists():
        for text in (name, *values):
            if char := first_unholdable(text):
                abort(400, args_refusal(name, char))


def first_header_control(value: str) -> str | None:
    """Return the first character of a header value that HTTP forbids there, or None."""
    found = _HEADER_CONTROL.search(value)
    return found.group() if found else None


def refuse_control_headers() -> None:
    """Answer 400 when a header's value holds a control character HTTP doesn't allow."""
    for name, value in request.headers.items():
        if char := first_header_control(value):
            abort(
                400,
                f"The request's “{scrub(name)[:40]}” header contains {describe(char)}, "
                "which HTTP doesn't allow; send it again without it.",
            )


def init_app(app: Flask) -> None:
    """Check every request's path, headers and query before any other hook or view."""
    # App-wide URL value preprocessors run before the blueprints' (which pop org_slug),
    # and these before_request functions are registered before every extension's.
    app.url_value_preprocessor(refuse_unholdable_path)
    app.before_request(refuse_control_headers)
    app.before_request(refuse_unholdable_args)
