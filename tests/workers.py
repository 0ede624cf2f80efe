"""Real `flask` processes for the tests: the job consumer and one-off CLI commands.

Each process gets an environment built from a test app's settings (`process_env`), so
it shares that test's database, storage and queue and nothing else: no `.env`, no
instance folder, no settings inherited from the shell that runs pytest.

    with running_worker(env, tmp_path / "worker.log") as worker:
        wait_until(lambda: status() is SUCCEEDED, "the job finished", worker)

A worker is always stopped when its block ends (SIGTERM, then SIGKILL), each wait is
bounded, and only the process the helper started is ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from flask import Flask

ROOT = Path(__file__).resolve().parents[1]
FLASK = [sys.executable, "-m", "flask"]
STOP_SECONDS = 10
# What a child process needs from the parent's environment to start at all.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def process_env(app: Flask, **extra: str) -> dict[str, str]:
    """Return the environment that points a `flask` process at `app`'s world."""
    config = app.config
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(
        FLASK_APP="wsgi",
        PYTHONUNBUFFERED="1",
        DASHBOARD_ENV="development",
        RLS_REQUIRED="0",
        SECRET_KEY=config["SECRET_KEY"],
        DATABASE_URL=config["SQLALCHEMY_DATABASE_URI"],
        STORAGE_BACKEND="local",
        STORAGE_LOCAL_ROOT=config["STORAGE_LOCAL_ROOT"],
        JOBS_URL=config["JOBS_URL"],
        JOBS_IMMEDIATE="0",
        JOB_MAX_RETRIES=str(config["JOB_MAX_RETRIES"]),
        JOB_RETRY_DELAY_SECONDS=f"{config['JOB_RETRY_DELAY_SECONDS']:g}",
        JOB_RUNNING_TIMEOUT_SECONDS=str(config["JOB_RUNNING_TIMEOUT_SECONDS"]),
        TTS_ENGINE=config["TTS_ENGINE"],
    )
    for name in ("OPERATOR_DATABASE_URL", "TTS_URL", "TTS_API_KEY"):
        if config.get(name):
            env[name] = str(config[name])
    env.update(extra)
    return env


def run_flask(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one `flask` command to the end and return what it printed."""
    return subprocess.run(
        [*FLASK, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Worker:
    """A `flask worker` process writing its output to a log file."""

    def __init__(self, env: dict[str, str], log_path: Path, threads: int = 1) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            [*FLASK, "worker", "--workers", str(threads), "--verbose"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """Everything the worker has logged so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Kill the worker at once, as a crash or an OOM killer would (SIGKILL)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL if it lingers) and close its log."""
        try:
            if self.alive():
                self.process.terminate()
                try:
                    self.process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=STOP_SECONDS)
        finally:
            self._log.close()


@contextmanager
def running_worker(env: dict[str, str], log_path: Path, threads: int = 1) -> Iterator[Worker]:
    """Start a worker for the block and always stop it afterwards."""
    worker = Worker(env, log_path, threads)
    try:
        yield worker
    finally:
        worker.stop()


def wait_until(
    condition: Callable[[], Any],
    what: str,
    worker: Worker | None = None,
    timeout: float = 60,
    interval: float = 0.1,
) -> Any:
    """Poll `condition` until it is truthy and return it; fail saying `what` never came.

    A worker that has exited can't make it come: fail at once with its log.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if worker is not None and not worker.alive():
            raise AssertionError(
                f"the worker exited ({worker.process.returncode}) before {what}:\n"
                + worker.output()
            )
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.output()}" if worker is not None else ""
            raise AssertionError(f"not within {timeout:g} s: {what}{log}")
        time.sleep(interval)


def close_queue(huey: Any) -> None:
    """Release the connections an in-process huey holds (SQLite, PostgreSQL, Redis)."""
    pool = getattr(huey.storage, "pool", None)
    if pool is not None:
        pool.disconnect()
    huey.storage.close()
