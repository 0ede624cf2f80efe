"""`python -m bench.run`: load Voxboard and two baselines on the same data; write a report.

1. Statements per page and the history queries' plans, in-process (`measure`).
2. Voxboard (`wsgi:app`), the minimal keyset page and Flask-Admin under gunicorn, two
   sync workers each, on free loopback ports. Log in through the real form.
3. Rounds of load (wrk, or the Python generator), each case `--seconds` long and capped
   at `--max-requests`, alternating baseline and Voxboard cases (A B A B) so that drift
   on this shared machine hits both; ratios are taken within a round.
4. Single-request median latency per case (`--latency-requests` sequential requests).
5. Worker RSS while streaming the 50 MB object, `flask analytics snapshot` for one day,
   eSpeak's real-time factor, `flask seed` on a fresh database.
6. The report: printed, and written to bench/results/<UTC timestamp>.md.

Targets are reported, never asserted: a missed target is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import cases as case_module
from bench import load, measure, report, settings
from bench.cases import ADMIN, KEYSET, VOXBOARD, Case, Fixtures
from bench.data import current_marker
from bench.server import Server, rss_kib
from bench.settings import Spec

# One round, baselines between Voxboard's cases (A B A B): the keyset baseline twice.
ROUND_ORDER = (
    "keyset",
    "history_first",
    "admin_first",
    "history_oldest",
    "admin_last",
    "history_filter",
    "keyset",
    "voices",
    "analytics",
    "keyset",
    "api_generations",
    "detail",
    "audio_range",
)


def log(message: str) -> None:
    print(f"bench.run: {message}", flush=True)


@dataclass
class CaseResult:
    """Everything measured about one case."""

    case: Case
    available: bool = True
    note: str = ""
    rounds: list[list[load.LoadResult]] = field(default_factory=list)
    median_ms: float | None = None
    median_n: int = 0
    statements: list[str] = field(default_factory=list)
    statement_status: int | None = None


@dataclass
class StreamResult:
    size: int
    before_kib: int
    peak_kib: int
    after_kib: int
    first_growth_kib: int
    seconds: float

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.before_kib


@dataclass
class RunResults:
    started: dt.datetime
    args: argparse.Namespace
    tool: str
    fixtures: Fixtures
    results: dict[str, CaseResult]
    plans: list[measure.Plan] = field(default_factory=list)
    stream: StreamResult | None = None
    stream_note: str = ""
    snapshot: measure.Timed | None = None
    espeak: tuple[float, float, float] | None = None
    seed: measure.Timed | None = None
    load_before: str = ""
    load_after: str = ""
    postgres: str = ""
    data_timing: dict | None = None
    finished: dt.datetime | None = None


# --------------------------------------------------------------------------- login


def log_in(base: str) -> str:
    """Log in through the real form over HTTP; return the `Cookie` header to send."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    body = response.read()
    cookie = _session_cookie(response.getheaders())
    token = measure.CSRF_FIELD.search(body)
    if token is None or cookie is None:
        raise RuntimeError("the login page gave no CSRF token or session cookie")
    conn.close()
    form = urllib.parse.urlencode(
        {
            "email": settings.BENCH_EMAIL,
            "password": settings.BENCH_PASSWORD,
            "csrf_token": token.group(1).decode(),
            "next": "",
        }
    )
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(
        "POST",
        "/login",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    logged_in = _session_cookie(response.getheaders())
    if response.status not in (302, 303) or logged_in is None:
        raise RuntimeError(f"login as {settings.BENCH_EMAIL} answered {response.status}")
    return logged_in


def _session_cookie(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    return None


# --------------------------------------------------------------------------- checks


def check(case: Case, base: str, headers: dict[str, str]) -> tuple[bool, str]:
    """Fetch the case once; say whether it is measurable and why not."""
    status, body = load.fetch(base + case.path, headers)
    if case.key == "analytics" and (status == 404 or b"</html>" not in body):
        return False, "not available yet (the analytics page is still being written)"
    if status != case.expect_status:
        return False, f"answered {status}, expected {case.expect_status}"
    if case.expect_text and case.expect_text not in body:
        return False, f"answer lacks {case.expect_text!r}"
    if case.expect_count:
        needle, count = case.expect_count
        if body.count(needle) != count:
            return False, f"answer has {body.count(needle)} × {needle!r}, expected {count}"
    if case.key == "audio_range" and len(body) != 65536:
        return False, f"206 with {len(body)} bytes, expected 65536"
    return True, ""


# --------------------------------------------------------------------------- stream


def measure_stream(fx: Fixtures, cookie: str) -> tuple[StreamResult | None, str]:
    """Stream the 50 MB object through the audio endpoint; sample the worker's RSS.

    A one-worker server of its own, so the worker serving is the one sampled. The first
    full read warms every code path; the second is measured (RSS sampled every 5 ms).
    """
    if fx.stream_generation is None:
        return None, "no 50 MB generation in the data set"
    server = Server("voxboard-rss", "wsgi:app", measure.voxboard_env(), workers=1)
    path = f"/o/{settings.BIG_SLUG}/generations/{fx.stream_generation}/audio"
    with server:
        cookie = log_in(server.base)
        pid = server.worker_pids()[0]
        first_before = rss_kib(pid)
        size, _ = _stream(server.port, path, cookie)
        first_growth = rss_kib(pid) - first_before
        before = rss_kib(pid)
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib(pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        size, seconds = _stream(server.port, path, cookie, pause=0.0005)
        time.sleep(0.2)
        stop.set()
        sampler.join(timeout=5)
        after = rss_kib(pid)
        peak = max(peak, after)
    return StreamResult(size, before, peak, after, first_growth, seconds), ""


def _stream(port: int, path: str, cookie: str, pause: float = 0.0) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"streaming {path} answered {response.status}")
    size = 0
    deadline = started + 120
    while time.perf_counter() < deadline:
        chunk = response.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if pause:
            time.sleep(pause)
    conn.close()
    return size, time.perf_counter() - started


# ------------------------------------------------------------------------------ run


def drain(result: load.LoadResult) -> None:
    """Wait for requests still in the server when the client stopped (slow pages).

    wrk leaves up to one request per connection in flight; on a page that takes
    seconds they would run on into the next case's measurement.
    """
    time.sleep(min(6.0, 0.2 + 2 * result.p99_ms / 1000))


def run(args: argparse.Namespace) -> RunResults:
    spec = Spec.from_env()
    marker = current_marker() or ""
    if not marker.startswith(spec.marker()):
        raise SystemExit("bench.run: no benchmark data; run `python -m bench.data` first")
    tool = "wrk" if args.tool == "wrk" or (args.tool == "auto" and load.wrk_path()) else "python"
    if tool == "python":
        log("wrk not found (Debian: apt-get install wrk); using the Python load generator")
    fx = case_module.load_fixtures()
    cases = case_module.build_cases(fx)
    results = {c.key: CaseResult(c) for c in cases}
    out = RunResults(
        started=dt.datetime.now(dt.UTC),
        args=args,
        tool=tool,
        fixtures=fx,
        results=results,
        load_before=_loadavg(),
        postgres=_postgres_version(),
        data_timing=report.read_data_timing(),
    )

    log("statements per page and query plans (in-process)")
    pages = measure.statements_per_page(cases)
    for key, page in pages.items():
        results[key].statements = [" ".join(s.split()) for s, _ in page.statements]
        results[key].statement_status = page.status
    user_id = measure.bench_user_id()
    history = {k: pages[k] for k in ("history_first", "history_oldest", "history_filter")}
    out.plans = measure.explain_history(fx, history, user_id, {}) + measure.explain_admin(fx)

    servers = {
        VOXBOARD: Server("voxboard", "wsgi:app", measure.voxboard_env()),
        KEYSET: Server("keyset", "bench.baseline_keyset:create_app()", measure.baseline_env()),
        ADMIN: Server("admin", "bench.baseline_admin:create_app()", measure.baseline_env()),
    }
    try:
        for server in servers.values():
            server.start()
        log(", ".join(f"{name} on {s.base}" for name, s in servers.items()))
        cookie = log_in(servers[VOXBOARD].base)
        headers = {
            key: {**r.case.headers, **({"Cookie": cookie} if r.case.logged_in else {})}
            for key, r in results.items()
        }
        for key, result in results.items():
            result.available, result.note = check(
                result.case, servers[result.case.server].base, headers[key]
            )
            if not result.available:
                log(f"{key}: {result.note}")
        measured = [k for k in ROUND_ORDER if results[k].available]

        def url(key: str) -> str:
            return servers[results[key].case.server].base + results[key].case.path

        log(f"warm-up: {args.warmup:.0f} s per case")
        for key in dict.fromkeys(measured):
            drain(
                load.run_load(
                    url(key),
                    headers[key],
                    seconds=args.warmup,
                    max_requests=args.max_requests,
                    connections=args.connections,
                    tool=tool,
                )
            )
        for number in range(args.rounds):
            log(f"round {number + 1} of {args.rounds}")
            per_round: dict[str, list[load.LoadResult]] = {}
            for key in measured:
                result = load.run_load(
                    url(key),
                    headers[key],
                    seconds=args.seconds,
                    max_requests=args.max_requests,
                    connections=args.connections,
                    tool=tool,
                )
                per_round.setdefault(key, []).append(result)
                drain(result)
                log(
                    f"  {key:15} {result.rps:8.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
                    f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}"
                )
            for key, runs in per_round.items():
                results[key].rounds.append(runs)
        log(f"single-request latency: {args.latency_requests} sequential requests per case")
        for key in dict.fromkeys(measured):
            results[key].median_ms, results[key].median_n = load.sequential_median(
                url(key), headers[key], count=args.latency_requests, seconds=args.latency_seconds
            )
            log(
                f"  {key:15} median {results[key].median_ms:.2f} ms "
                f"({results[key].median_n} requests)"
            )
    finally:
        for server in servers.values():
            server.stop()

    if not args.skip_extras:
        log("worker RSS while streaming the 50 MB object")
        out.stream, out.stream_note = measure_stream(fx, cookie)
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        log(f"flask analytics snapshot --date {yesterday}")
        out.snapshot = measure.time_snapshot(yesterday)
        log("eSpeak real-time factor")
        out.espeak = measure.espeak_realtime_factor()
        log("flask seed on a fresh database")
        out.seed = measure.time_fresh_seed()
    out.load_after = _loadavg()
    out.finished = dt.datetime.now(dt.UTC)
    return out


def _loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def _postgres_version() -> str:
    import psycopg

    with psycopg.connect(settings.owner_url()) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        jit = conn.execute("SHOW jit").fetchone()[0]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return f"PostgreSQL {version} (jit={jit}, shared_buffers={buffers})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="load per case per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2, help="warm-up load per case")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap per load run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--latency-seconds", type=float, default=20, help="cap per latency run")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--skip-extras", action="store_true", help="only the page measurements")
    args = parser.parse_args(argv)
    results = run(args)
    text = report.render(results)
    settings.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = results.started.strftime("%Y%m%dT%H%M%SZ")
    path = settings.RESULTS_DIR / f"{name}.md"
    path.write_text(text)
    print(text)
    log(f"report written to {path.relative_to(settings.PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
