"""The pages measured, and the data they need (looked up once per run, as the owner)."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import urlencode

from bench import settings

VOXBOARD, KEYSET, ADMIN = "voxboard", "keyset", "admin"


@dataclass(frozen=True, slots=True)
class Fixtures:
    """Ids and cursors of the data set that the cases' URLs name."""

    org_id: uuid.UUID
    org_rows: int
    oldest_cursor: str
    sample_generation: uuid.UUID
    stream_generation: uuid.UUID | None
    admin_last_page: int
    # A fresh API key of the big org (every scope) for the API case.
    api_secret: str


@dataclass(frozen=True, slots=True)
class Case:
    """One page to load: on which server, at which path, and what a good answer is."""

    key: str
    title: str
    server: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    expect_status: int = 200
    # Bytes a good answer contains (a full HTML page; the 50 history rows...).
    expect_text: bytes = b""
    expect_count: tuple[bytes, int] | None = None
    logged_in: bool = False


def load_fixtures() -> Fixtures:
    """Read the big org's id, its oldest-page cursor and a sample generation (owner role)."""
    import psycopg

    from dashboard.history.queries import encode_cursor

    with psycopg.connect(settings.owner_url()) as conn:
        (org_id,) = conn.execute(
            "SELECT id FROM organizations WHERE slug = %s", (settings.BIG_SLUG,)
        ).fetchone()
        (rows,) = conn.execute(
            "SELECT count(*) FROM generations WHERE org_id = %s", (org_id,)
        ).fetchone()
        # The oldest page is the 50 oldest rows: the cursor is the 51st oldest, which is
        # what following "Older" to the end lands on (up to page alignment).
        created_at, row_id = conn.execute(
            "SELECT created_at, id FROM generations WHERE org_id = %s "
            "ORDER BY created_at, id OFFSET 50 LIMIT 1",
            (org_id,),
        ).fetchone()
    folder = settings.OBJECTS_DIR / "generations" / "orgs" / str(org_id)
    samples = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    from bench.data import stream_generation_id

    stream = stream_generation_id()
    samples = [s for s in samples if s != stream]
    cursor = encode_cursor(SimpleNamespace(created_at=created_at.astimezone(dt.UTC), id=row_id))
    api_secret = create_api_key(org_id)
    return Fixtures(
        org_id=org_id,
        org_rows=rows,
        oldest_cursor=cursor,
        sample_generation=uuid.UUID(samples[len(samples) // 2]),
        stream_generation=uuid.UUID(stream) if stream else None,
        admin_last_page=math.ceil(rows / 50) - 1,
        api_secret=api_secret,
    )


def create_api_key(org_id: uuid.UUID) -> str:
    """Add an API key (every scope) to the org, as the owner; return its secret.

    The row is written with psycopg, and the secret hashed inside a bare Flask app with
    the benchmark's SECRET_KEY: building Voxboard here would install its tenant filter
    in this process before the baselines are measured (see `statements_per_page`).
    """
    import json

    import psycopg
    from flask import Flask

    from dashboard.api import keys
    from dashboard.models import ApiScope

    app = Flask("bench-keys")
    app.config.update(SECRET_KEY=settings.SECRET_KEY, API_KEY_HASH_KEY=None)
    with app.app_context():
        made = keys.new_secret()
    with psycopg.connect(settings.owner_url()) as conn:
        conn.execute(
            "INSERT INTO api_keys (id, org_id, name, secret_hash, last_four, scopes, "
            "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, now(), now())",
            (
                uuid.uuid4(),
                org_id,
                f"bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}",
                made.secret_hash,
                made.last_four,
                json.dumps([scope.value for scope in ApiScope]),
            ),
        )
    return made.secret


def build_cases(fx: Fixtures) -> list[Case]:
    """Return every case: Voxboard's pages (logged in) and the two baselines."""
    org = f"/o/{settings.BIG_SLUG}"
    page = b"</html>"
    row = (b'class="history-row"', 50)
    return [
        Case(
            "keyset", "baseline: minimal keyset page", KEYSET, f"{org}/", expect_count=(b"<tr>", 50)
        ),
        Case(
            "admin_first",
            "baseline: Flask-Admin page 0",
            ADMIN,
            "/admin/generations/",
            expect_count=(b"<tr", 51),
        ),
        Case(
            "admin_last",
            "baseline: Flask-Admin last page",
            ADMIN,
            f"/admin/generations/?page={fx.admin_last_page}",
            expect_count=(b"<tr", 51),
        ),
        Case(
            "history_first",
            "history, first page",
            VOXBOARD,
            f"{org}/history/",
            expect_text=page,
            expect_count=row,
            logged_in=True,
        ),
        Case(
            "history_oldest",
            "history, oldest page",
            VOXBOARD,
            f"{org}/history/?{urlencode({'after': fx.oldest_cursor})}",
            expect_text=page,
            expect_count=row,
            logged_in=True,
        ),
        Case(
            "history_filter",
            f"history, text filter “{settings.FILTER_WORD}”",
            VOXBOARD,
            f"{org}/history/?{urlencode({'q': settings.FILTER_WORD})}",
            expect_text=page,
            expect_count=row,
            logged_in=True,
        ),
        Case(
            "voices",
            "voice library (2,000 custom voices)",
            VOXBOARD,
            f"{org}/voices/",
            expect_text=page,
            logged_in=True,
        ),
        Case(
            "analytics",
            "analytics, 90 days",
            VOXBOARD,
            f"{org}/analytics/?days=90",
            expect_text=page,
            logged_in=True,
        ),
        Case(
            "detail",
            "generation detail",
            VOXBOARD,
            f"{org}/generations/{fx.sample_generation}",
            expect_text=page,
            logged_in=True,
        ),
        Case(
            "api_generations",
            "API: GET /api/v1/generations (50 rows)",
            VOXBOARD,
            "/api/v1/generations?limit=50",
            headers={"Authorization": f"Bearer {fx.api_secret}"},
            expect_count=(b'"voice_name":', 50),
        ),
        Case(
            "audio_range",
            "audio, Range: bytes=0-65535",
            VOXBOARD,
            f"{org}/generations/{fx.sample_generation}/audio",
            headers={"Range": "bytes=0-65535"},
            expect_status=206,
            logged_in=True,
        ),
    ]
