"""A real webhook receiver on loopback that records every request and answers as told.

Use::

    with webhook_receiver() as receiver:           # answers 200 "ok" by default
        receiver.url                               # "http://127.0.0.1:54321"
        receiver.reply_next(Reply(500, b"down"))   # the next request gets this, one each
        receiver.reply_always(Reply(204, b""))     # every request after the queued ones
        receiver.wait_for(1)                       # for deliveries made by a worker
        receiver.requests                          # every request received, in order
        receiver.body_bytes_sent                   # body bytes written, per answer

`webhook_receiver(ssl_context=...)` serves HTTPS with that (server-side) context.

A `Reply` can also misbehave: `hang` never answers, `drip` waits that many seconds
before each body byte, `filler` adds that many bytes of ``x`` after `body` (a huge body
without holding it in memory). Every request is recorded before its reply starts, so a
request the client gave up on is still listed. Leaving the block wakes hanging and
dripping handlers and waits for all of them, so nothing outlives the test.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILLER_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the receiver stops)
    drip: float = 0.0  # seconds before each byte of `body`
    filler: int = 0  # bytes of b"x" sent after `body`


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the receiver read it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """The running receiver; build it with `webhook_receiver`."""

    def __init__(self, scheme: str, port: int) -> None:
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.port = port
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._queued: deque[Reply] = deque()
        self._default = Reply()
        self._requests: list[ReceivedRequest] = []
        self._sent: list[int] = []
        self._closing = threading.Event()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Return a copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def body_bytes_sent(self) -> list[int]:
        """Return how many body bytes each finished answer wrote, in the order they ended."""
        with self._lock:
            return list(self._sent)

    def reply_next(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, one each, then with the default again."""
        with self._lock:
            self._queued.extend(replies)

    def reply_always(self, reply: Reply) -> None:
        """Answer every request with `reply` once the queued replies are used up."""
        with self._lock:
            self._default = reply

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least `count` requests arrived; return whether they did."""
        with self._received:
            return self._received.wait_for(lambda: len(self._requests) >= count, timeout)

    def _record(self, request: ReceivedRequest) -> Reply:
        with self._received:
            self._requests.append(request)
            self._received.notify_all()
            return self._queued.popleft() if self._queued else self._default

    def _sent_body(self, size: int) -> None:
        with self._lock:
            self._sent.append(size)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that stalls mid-request cannot hold the shutdown forever

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = ReceivedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        receiver = self.server.receiver
        reply = receiver._record(request)
        if reply.hang:
            receiver._closing.wait()
            self.close_connection = True
            return
        sent = 0
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body) + reply.filler))
            self.end_headers()
            if reply.drip:
                for i in range(len(reply.body)):
                    if receiver._closing.wait(reply.drip):
                        return
                    self.wfile.write(reply.body[i : i + 1])
                    self.wfile.flush()
                    sent += 1
            else:
                self.wfile.write(reply.body)
                sent = len(reply.body)
            for start in range(0, reply.filler, FILLER_CHUNK):
                chunk = min(FILLER_CHUNK, reply.filler - start)
                self.wfile.write(b"x" * chunk)
                sent += chunk
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True  # the client stopped reading: nobody to answer
        finally:
            receiver._sent_body(sent)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean; tests read `requests` instead


class _Server(ThreadingHTTPServer):
    # Joined on close (not daemon threads), so no handler outlives its test.
    daemon_threads = False
    block_on_close = True

    def __init__(self, ssl_context: ssl.SSLContext | None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
        self.receiver = Receiver("https" if ssl_context else "http", self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up or refused the certificate: the test reads its side


@contextmanager
def webhook_receiver(
    *, ssl_context: ssl.SSLContext | None = None, port: int = 0
) -> Iterator[Receiver]:
    """Serve a receiver on loopback for the block's duration (`port` 0: a free one).

    A given `port` brings a receiver back where a stopped one was, as a restarted
    service would come back.
    """
    httpd = _Server(ssl_context, port)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd.receiver
    finally:
        httpd.receiver._closing.set()
        httpd.shutdown()
        thread.join()
        httpd.server_close()
