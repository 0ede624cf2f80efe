"""What a webhook says: `{"type", "timestamp", "data"}`, `data` exactly as the API returns it.

Deliveries are built in workers, which have no request to take a host from, so URLs
(`audio_url`) are made against `PUBLIC_URL`; inside a request they use the request's
own host, as the API's responses do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from flask import current_app, has_request_context

from dashboard.api.representations import VoiceSchema, generation_json
from dashboard.models import Generation, Voice, utcnow

DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


@contextlib.contextmanager
def url_context() -> Iterator[None]:
    """Let `url_for(..., _external=True)` work: the request's host, else `PUBLIC_URL`."""
    if has_request_context():
        yield
        return
    base_url = current_app.config.get("PUBLIC_URL") or DEFAULT_PUBLIC_URL
    with current_app.test_request_context(base_url=base_url):
        yield


def envelope(event_type: str, data: dict[str, Any], at: dt.datetime | None = None) -> dict:
    """Return the payload: the event's type, when it happened (ISO 8601 UTC), its data."""
    return {"type": event_type, "timestamp": (at or utcnow()).isoformat(), "data": data}


def generation_data(generation: Generation) -> dict[str, Any]:
    """Return the generation as `GET /api/v1/generations/{id}` shows it."""
    with url_context():
        return generation_json(generation)


def voice_data(voice: Voice) -> dict[str, Any]:
    """Return the voice as `GET /api/v1/voices/{id}` shows it."""
    with url_context():
        return VoiceSchema().dump(voice)
