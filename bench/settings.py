"""Where the benchmark's database, roles and files are, and how big the data set is.

Everything can be overridden from the environment (`BENCH_*`), so a smaller data set
or another server is a variable away; the defaults are the published configuration.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR") or BENCH_DIR / ".data")
OBJECTS_DIR = DATA_DIR / "objects"
RESULTS_DIR = BENCH_DIR / "results"

# A superuser connection that may create the benchmark's roles and database (and
# nothing else is touched through it).
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_DB", "voxboard_bench")
# The owner migrates and loads (BYPASSRLS, as the operator role is in production); the
# web role is what gunicorn connects as: row-level security binds it.
OWNER_ROLE = os.environ.get("BENCH_OWNER_ROLE", "voxboard_bench")
WEB_ROLE = os.environ.get("BENCH_WEB_ROLE", "voxboard_bench_app")

BIG_SLUG = "big"
BENCH_EMAIL = "bench@big.voxboard.test"
# Published on purpose: the data set is a local benchmark fixture, never a deployment.
BENCH_PASSWORD = "bench-password-2026"
SECRET_KEY = "voxboard-bench-fixed-secret-key-not-for-production"
# The "history with a text filter" case searches for this word (about 1 text in 60).
FILTER_WORD = "lighthouse"


def _role_url(role: str, database: str) -> str:
    admin = make_url(ADMIN_URL)
    url = admin.set(username=role, password=None, database=database)
    return url.render_as_string(hide_password=False)


def admin_url() -> str:
    """Return the superuser URL (psycopg form, no driver prefix)."""
    return ADMIN_URL


def owner_url(database: str = DB_NAME) -> str:
    """Return the owner role's URL for `database` (libpq form: postgresql://...)."""
    return _role_url(OWNER_ROLE, database)


def web_url(database: str = DB_NAME) -> str:
    """Return the web role's URL for `database` (libpq form)."""
    return _role_url(WEB_ROLE, database)


def sqlalchemy_url(url: str) -> str:
    """Return `url` with the psycopg 3 driver, as the app normalises it."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass(frozen=True, slots=True)
class Spec:
    """The size and shape of the data set; part of the "data is complete" marker."""

    orgs: int = 1000
    generations: int = 1_000_000
    big_generations: int = 300_000
    big_custom_voices: int = 2000
    big_members: int = 60
    audio_samples: int = 200
    voice_audio_samples: int = 20
    days: int = 90
    seed: int = 20261201
    # The big object the streaming measurement reads through the audio endpoint.
    stream_object_mb: int = 50

    @classmethod
    def from_env(cls) -> Spec:
        """Read `BENCH_GENERATIONS`, `BENCH_ORGS`, `BENCH_BIG` (smaller runs while developing)."""
        base = cls()
        generations = int(os.environ.get("BENCH_GENERATIONS", base.generations))
        big = int(os.environ.get("BENCH_BIG", min(base.big_generations, generations * 3 // 10)))
        return cls(
            orgs=int(os.environ.get("BENCH_ORGS", base.orgs)),
            generations=generations,
            big_generations=big,
        )

    def marker(self) -> str:
        """Return the text stored as the database's comment once the data is complete."""
        fields = ",".join(f"{k}={v}" for k, v in asdict(self).items())
        # v2: the usage ledger holds a charge for every generation that did not fail.
        # v3: snapshots hold the billed characters by source (migration 0012).
        return f"voxboard-bench data v3 ({fields})"
