"""A loopback TCP server that accepts connections and never answers.

The worst thing a dependency can do is not refuse but hang: the connection is made,
the request is sent, and no byte ever comes back. Tests point S3 at this server to
prove every call is bounded in time and that a hung endpoint can't take the process.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HangingServer:
    """Accept connections on 127.0.0.1 and hold them open without reading or replying."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="hanging-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self._held)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``count`` connections were accepted."""
        with self._accepted:
            return self._accepted.wait_for(lambda: len(self._held) >= count, timeout)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._accepted:
                if self._closed:
                    conn.close()
                    return
                self._held.append(conn)
                self._accepted.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            held, self._held = self._held, []
        self._listener.close()
        for conn in held:
            conn.close()


@contextmanager
def hanging_server() -> Iterator[HangingServer]:
    server = HangingServer()
    try:
        yield server
    finally:
        server.close()
