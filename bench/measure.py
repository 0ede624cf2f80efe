"""Measurements that need no load: statements per page, query plans, one-off timings.

Statements are counted in-process: each page is requested once with a logged-in test
client on an app configured exactly like the gunicorn one (web role, row-level
security), and a `before_cursor_execute` listener on the app's engine records what
the second request sends. The history pages' SELECTs are then EXPLAINed (ANALYZE,
BUFFERS) as the web role with the same row-level-security settings the app sets.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench import settings
from bench.cases import ADMIN, KEYSET, VOXBOARD, Case, Fixtures
from bench.data import flask_env

CSRF_FIELD = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')


def voxboard_env() -> dict[str, str]:
    """Return the environment Voxboard runs with in the benchmark (gunicorn and CLI)."""
    return flask_env(
        settings.web_url(),
        {
            "OPERATOR_DATABASE_URL": settings.owner_url(),
            # Refuse to start unless the web role is one row-level security binds.
            "RLS_REQUIRED": "1",
            "GENERATION_RATE_LIMIT": "100000 per minute",
            "LOGIN_RATE_LIMIT": "1000 per minute",
            "API_RATE_LIMIT": "10000000 per minute",
        },
    )


def baseline_env() -> dict[str, str]:
    """Return the environment of the baselines (owner role: no row-level security)."""
    env = flask_env(settings.owner_url())
    env["BENCH_DATABASE_URL"] = settings.sqlalchemy_url(settings.owner_url())
    env["BENCH_ORG_SLUG"] = settings.BIG_SLUG
    return env


def voxboard_app():  # type: ignore[no-untyped-def]
    """Build Voxboard in this process, configured as the benchmark's gunicorn runs it."""
    from dashboard import create_app

    env = voxboard_env()
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": settings.sqlalchemy_url(env["DATABASE_URL"]),
            "OPERATOR_DATABASE_URL": settings.sqlalchemy_url(env["OPERATOR_DATABASE_URL"]),
            "STORAGE_BACKEND": "local",
            "STORAGE_LOCAL_ROOT": env["STORAGE_LOCAL_ROOT"],
            "SECRET_KEY": settings.SECRET_KEY,
            "JOBS_URL": env["JOBS_URL"],
        }
    )


def log_in(client: Any) -> None:
    """Log the test client in as the benchmark user through the real form (CSRF on)."""
    token = CSRF_FIELD.search(client.get("/login").data)
    if token is None:
        raise RuntimeError("no CSRF token in the login form")
    response = client.post(
        "/login",
        data={
            "email": settings.BENCH_EMAIL,
            "password": settings.BENCH_PASSWORD,
            "csrf_token": token.group(1).decode(),
            "next": "",
        },
    )
    if response.status_code not in (302, 303):
        raise RuntimeError(f"login answered {response.status_code}")


@contextmanager
def recording(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Record (statement, parameters) of everything `engine` executes inside the block."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, *_rest) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@dataclass(frozen=True, slots=True)
class PageStatements:
    status: int
    statements: list[tuple[str, Any]]


def statements_per_page(cases: Sequence[Case]) -> dict[str, PageStatements]:
    """Request every case's page twice in-process; record the second request's SQL.

    The baselines go first: building Voxboard installs its tenant filter on every ORM
    session of the process, which would refuse the baselines' unscoped queries.
    """
    from bench import baseline_admin, baseline_keyset

    owner = settings.sqlalchemy_url(settings.owner_url())
    builders = {
        KEYSET: lambda: baseline_keyset.create_app({"SQLALCHEMY_DATABASE_URI": owner}),
        ADMIN: lambda: baseline_admin.create_app({"SQLALCHEMY_DATABASE_URI": owner}),
        VOXBOARD: voxboard_app,
    }
    found = {}
    for server, build in builders.items():
        app = build()
        client = app.test_client()
        if server == VOXBOARD:
            log_in(client)
        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
        for case in (c for c in cases if c.server == server):
            client.get(case.path, headers=case.headers).close()
            with recording(engine) as seen:
                response = client.get(case.path, headers=case.headers)
                response.close()
            found[case.key] = PageStatements(response.status_code, list(seen))
        engine.dispose()
    return {case.key: found[case.key] for case in cases}


def history_select(statements: list[tuple[str, Any]]) -> tuple[str, Any] | None:
    """Return the history page's own query (the keyset SELECT of generations)."""
    for statement, parameters in statements:
        if statement.lstrip().startswith("SELECT generations.id") and "LIMIT" in statement:
            return statement, parameters
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    title: str
    text: str

    @property
    def execution_ms(self) -> float:
        found = re.search(r"Execution Time: ([\d.]+) ms", self.text)
        return float(found.group(1)) if found else float("nan")

    @property
    def has_sort(self) -> bool:
        return bool(re.search(r"(?m)^\s*(->\s*)?(Incremental )?Sort\b", self.text))

    @property
    def seq_scans(self) -> list[str]:
        return re.findall(r"Seq Scan on (\w+)", self.text)

    @property
    def indexes(self) -> list[str]:
        return sorted(set(re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\w+)", self.text)))

    @property
    def rows_examined(self) -> int:
        """Rows the plan's scans read (index and heap), from `Rows Removed` and output rows."""
        scanned = 0
        for line in self.text.splitlines():
            if "Scan" in line:
                found = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)", line)
                if found:
                    scanned += int(found.group(1)) * int(found.group(2))
            removed = re.search(r"Rows Removed by Filter: (\d+)", line)
            if removed:
                scanned += int(removed.group(1))
        return scanned


def explain_history(
    fx: Fixtures, pages: dict[str, PageStatements], user_id: str, extra: dict[str, tuple[str, Any]]
) -> list[Plan]:
    """EXPLAIN (ANALYZE, BUFFERS) each history page's query as the web role, under RLS."""
    import psycopg

    plans = []
    queries = {key: history_select(page.statements) for key, page in pages.items()}
    queries.update(extra)
    with psycopg.connect(settings.web_url()) as conn:
        for key, found in queries.items():
            if found is None:
                continue
            statement, parameters = found
            text = ""
            for _ in range(3):  # the last, warm run is kept
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('app.current_org', %s, true), "
                        "set_config('app.current_user', %s, true)",
                        (str(fx.org_id), user_id),
                    )
                    rows = conn.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                    ).fetchall()
                text = "\n".join(r[0] for r in rows)
            plans.append(Plan(key, text))
    return plans


def explain_admin(fx: Fixtures) -> list[Plan]:
    """EXPLAIN what Flask-Admin runs for its first and last page (owner role)."""
    import psycopg

    queries = {
        "admin COUNT": (
            "SELECT count(*) FROM generations WHERE generations.org_id = %s",
            (fx.org_id,),
        ),
        "admin last page (OFFSET)": (
            "SELECT * FROM generations WHERE generations.org_id = %s "
            "ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET %s",
            (fx.org_id, fx.admin_last_page * 50),
        ),
    }
    plans = []
    with psycopg.connect(settings.owner_url()) as conn:
        for title, (statement, parameters) in queries.items():
            for _ in range(2):
                rows = conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                ).fetchall()
            plans.append(Plan(title, "\n".join(r[0] for r in rows)))
    return plans


def bench_user_id() -> str:
    import psycopg

    with psycopg.connect(settings.owner_url()) as conn:
        return str(
            conn.execute(
                "SELECT id FROM users WHERE email = %s", (settings.BENCH_EMAIL,)
            ).fetchone()[0]
        )


# ------------------------------------------------------------------ one-off timings


def flask_command_exists(*group: str) -> bool:
    """Tell whether `flask GROUP... --help` works (the command is registered)."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", *group, "--help"],
        cwd=settings.PROJECT_ROOT,
        env=voxboard_env(),
        capture_output=True,
        timeout=60,
    )
    return done.returncode == 0


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float | None
    note: str
    # The part that is the command's own work (wall time less process start), if known.
    work_seconds: float | None = None


def time_snapshot(day: dt.date) -> Timed:
    """Time `flask analytics snapshot --date DAY` (1M generations in the table)."""
    if not flask_command_exists("analytics", "snapshot"):
        return Timed(None, "not available yet (`flask analytics snapshot` does not exist)")
    env = voxboard_env()
    runs = []
    for _ in range(2):  # the second run replaces the day's rows the first one wrote
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "flask", "analytics", "snapshot", "--date", day.isoformat()],
            cwd=settings.PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        runs.append(time.perf_counter() - started)
        if done.returncode != 0:
            return Timed(None, f"failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}")
    started = time.perf_counter()
    flask_command_exists("analytics", "snapshot")  # the same process start, no work
    start_up = time.perf_counter() - started
    best = min(runs)
    return Timed(
        best,
        work_seconds=max(best - start_up, 0.0),
        note=f"day {day}, best of {len(runs)} wall times ({', '.join(f'{r:.2f}' for r in runs)} s) "
        f"including ~{start_up:.2f} s of process start (`--help` takes that long), so "
        f"~{max(best - start_up, 0):.2f} s of work",
    )


def espeak_realtime_factor() -> tuple[float, float, float]:
    """Return (audio seconds / wall seconds, audio s, wall s) for a few texts."""
    from bench.textbank import TextBank
    from dashboard.tts import VoiceRef, get_engine

    engine = get_engine("espeak")
    engine.synthesize("Warm up.", VoiceRef("Aaron"))
    bank = TextBank(5, sentences=100)
    texts = [bank.text(n) for n in (80, 200, 400, 1000, 2500, 5000)]
    voices = ["Aaron", "Abigail", "Ivan", "Meera", "Walter", "Chloe"]
    audio_ms, wall = 0, 0.0
    for text, voice in zip(texts, voices, strict=True):
        started = time.perf_counter()
        result = engine.synthesize(text, VoiceRef(voice))
        wall += time.perf_counter() - started
        audio_ms += result.duration_ms
    return audio_ms / 1000 / wall, audio_ms / 1000, wall


def time_fresh_seed() -> Timed:
    """Time `flask seed` on a fresh database (created and dropped here) and empty storage."""
    import psycopg

    name = f"{settings.DB_NAME}_seed"
    objects = settings.DATA_DIR / "seed-objects"
    admin = settings.admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{settings.OWNER_ROLE}"')
    shutil.rmtree(objects, ignore_errors=True)
    try:
        env = flask_env(settings.owner_url(name), {"STORAGE_LOCAL_ROOT": str(objects)})
        subprocess.run(
            [sys.executable, "-m", "flask", "db", "upgrade"],
            cwd=settings.PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        runs = []
        for _ in range(1):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "flask", "seed"],
                cwd=settings.PROJECT_ROOT,
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
            runs.append(time.perf_counter() - started)
        return Timed(statistics.median(runs), "fresh database and storage, process start included")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(objects, ignore_errors=True)
