"""Every template filter and global, registered on the app by the factory.

The formatting itself lives in `dashboard.formatting`; this module only names it for
templates, with the few globals pages need (navigation, cached object URLs, the
waveform drawing of the generations' player macro, the API reference's view of the
OpenAPI document).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from flask import Flask, g, url_for
from flask_login import current_user

from dashboard import formatting, tenancy
from dashboard.api.reference import reference_page
from dashboard.generations.waveform import waveform_svg
from dashboard.orgs.queries import orgs_of
from dashboard.voices.languages import describe_language, language_label

# app.css defines .hue-0 … .hue-11; classes, because the CSP forbids inline styles.
AVATAR_HUES = 12


def initials(name: str) -> str:
    """Return up to two initials for an avatar ("Old Walter" → "OW")."""
    words = [w for w in name.split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].title()
    return (words[0][0] + words[-1][0]).upper()


def avatar_hue(seed: str) -> int:
    """Return a stable colour index for a name, so a voice keeps its colour everywhere."""
    digest = hashlib.blake2s(seed.encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big") % AVATAR_HUES


def navigation() -> dict[str, object]:
    """Return what the header needs: the caller's organisations, the current one, and
    whether the caller manages it (the header's manager-only links)."""
    if not current_user.is_authenticated:
        return {"orgs": [], "org": None, "membership": None, "account": None, "manager": False}
    if g.get("database_fault"):
        # The error page of a failed database call: nothing here may ask it again (the
        # user row was expired by the rollback, the org switcher would query).
        return {"orgs": [], "org": None, "membership": None, "account": "Account", "manager": False}
    if "_nav_orgs" not in g:
        g._nav_orgs = orgs_of(current_user)
    return {
        "orgs": g._nav_orgs,
        "org": g.get("org"),
        "membership": g.get("membership"),
        "account": current_user.display_name,
        "manager": tenancy.is_manager(),
    }


# Stands in for the id while a URL pattern is built; real ids are UUIDv7, never zero.
_PLACEHOLDER = uuid.UUID(int=0)


def object_url(endpoint: str, arg: str, value: uuid.UUID, **values: Any) -> str:
    """Return `url_for(endpoint, **{arg: value}, **values)`, building the URL once per page.

    A list of 50 rows with a few links each would otherwise route every link through
    werkzeug's URL builder; here each (endpoint, other values) is built once per
    request with a placeholder id, and rows only splice their own id in.
    """
    cache: dict[tuple, tuple[str, str]] = g.setdefault("_url_patterns", {})
    key = (endpoint, arg, tuple(sorted(values.items())))
    pattern = cache.get(key)
    if pattern is None:
        head, _, tail = url_for(endpoint, **{arg: _PLACEHOLDER}, **values).partition(
            str(_PLACEHOLDER)
        )
        pattern = cache[key] = (head, tail)
    return f"{pattern[0]}{value}{pattern[1]}"


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    app.add_template_global(navigation)
    app.add_template_global(object_url)
    app.add_template_filter(initials)
    app.add_template_filter(avatar_hue)
    app.add_template_global(waveform_svg)
    app.add_template_global(reference_page, "api_reference")
    app.add_template_filter(formatting.duration)
    app.add_template_filter(formatting.relative_time)
    app.add_template_filter(formatting.time_until)
    app.add_template_filter(formatting.utc_time)
    app.add_template_filter(formatting.iso_time)
    app.add_template_filter(formatting.date_span)
    app.add_template_filter(formatting.megabytes)
    app.add_template_filter(language_label)
    app.add_template_filter(lambda tag: describe_language(tag)[1], "region_name")
