"""Drive a server with load: wrk when installed, else a bounded Python generator.

Every loop here is bounded twice, by time and by request count, and only ever talks to
127.0.0.1. Latencies are per request, from sending to the last byte read.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench import settings

WRK_SCRIPT = settings.BENCH_DIR / "wrk_bounded.lua"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"load is only ever sent to this machine's loopback, not {host!r}")


def wrk_path() -> str | None:
    """Return the wrk binary, or None (the Python generator is used then)."""
    return shutil.which("wrk")


def run_load(
    url: str,
    headers: Mapping[str, str],
    *,
    seconds: float,
    max_requests: int,
    connections: int = 4,
    tool: str = "auto",
) -> LoadResult:
    """Load `url` for at most `seconds` and `max_requests`; wrk unless `tool="python"`."""
    _check_loopback(url)
    if tool == "wrk" or (tool == "auto" and wrk_path()):
        return _run_wrk(url, headers, seconds, max_requests, connections)
    return _run_python(url, headers, seconds, max_requests, connections)


def _run_wrk(
    url: str, headers: Mapping[str, str], seconds: float, max_requests: int, connections: int
) -> LoadResult:
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    threads = 1  # a second wrk thread would take CPU from the two workers it measures
    command = [
        binary,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    env = {**os.environ, "BENCH_MAX_REQUESTS": str(max_requests), "BENCH_THREADS": str(threads)}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        tool="wrk",
    )


def fetch(url: str, headers: Mapping[str, str], timeout: float = 30) -> tuple[int, bytes]:
    """GET `url` once on a fresh connection; return (status, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _timed_fetch(url: str, headers: Mapping[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    status, _ = fetch(url, headers)
    return (time.perf_counter() - started) * 1000, status


def _run_python(
    url: str, headers: Mapping[str, str], seconds: float, max_requests: int, connections: int
) -> LoadResult:
    """A closed-loop generator: `connections` threads, each one request at a time."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            with lock:
                if len(latencies) + errors >= max_requests:
                    return
            try:
                ms, status = _timed_fetch(url, headers)
                failed = status >= 400
            except OSError:
                ms, failed = 0.0, True
            with lock:
                if failed:
                    errors += 1
                else:
                    latencies.append(ms)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - started
    return LoadResult(
        requests=len(latencies) + errors,
        seconds=elapsed,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors=errors,
        tool="python",
    )


def percentile(values: list[float], pct: float) -> float:
    """Return the `pct` percentile of `values` (nearest rank); 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def sequential_median(
    url: str, headers: Mapping[str, str], *, count: int, seconds: float
) -> tuple[float, int]:
    """Send up to `count` requests one after another (at most `seconds`); return (median ms, n)."""
    _check_loopback(url)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(latencies) < count and time.perf_counter() < deadline:
        ms, status = _timed_fetch(url, headers)
        if status >= 400:
            raise RuntimeError(f"GET {url} answered {status} during the latency run")
        latencies.append(ms)
    return statistics.median(latencies), len(latencies)
