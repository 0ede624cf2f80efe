"""Start and stop the applications under test: gunicorn, sync workers, loopback only."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import settings

START_TIMEOUT = 60.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One gunicorn master and its workers serving `app` on 127.0.0.1:`port`."""

    name: str
    app: str
    env: dict[str, str]
    workers: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz") -> Server:
        """Start gunicorn and wait until `ready_path` answers (bounded by START_TIMEOUT)."""
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = settings.DATA_DIR / f"gunicorn-{self.name}.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            self.app,
        ]
        log = open(self.log_path, "w")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            command,
            cwd=settings.PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name}: gunicorn exited with {self.process.returncode}; "
                    f"see {self.log_path}:\n{self.log_path.read_text()[-2000:]}"
                )
            try:
                status = get_status(self.port, ready_path)
            except OSError:
                status = None
            if status is not None and status < 500 and len(self.worker_pids()) == self.workers:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.name}: not ready after {START_TIMEOUT:.0f} s; see {self.log_path}"
        )

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's worker processes (from /proc)."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        """Stop the master (it stops its workers); kill it if it doesn't go in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def get_status(port: int, path: str) -> int:
    """Return the status of one GET on 127.0.0.1:`port` (short timeout)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
