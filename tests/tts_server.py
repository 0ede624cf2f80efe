"""A real Chatterbox-compatible speech service on loopback, scriptable by tests.

It speaks the contract `ChatterboxEngine` talks (see dashboard/tts/chatterbox.py):
``POST /generate`` with JSON ``{"prompt", "voice_key", "temperature", "top_p", "top_k",
"repetition_penalty", "norm_loudness"}``, answered with ``audio/wav`` synthesised by the
real `EspeakEngine` (the voice named after the last segment of `voice_key`, en-US).
A wrong or missing ``x-api-key`` gets 401, an invalid body 400, each as
``{"error": "..."}``.

Use::

    with tts_server(api_key="k") as server:
        engine = ChatterboxEngine(server.url, "k", backoff=0.01)
        server.script(["503", "503", "ok"])   # the next three requests
        server.slow(2.0)                      # every request waits 2 s first; 0 stops
        gate = server.hold()                  # following requests wait for gate.set()
        server.stop_holding()                 # new requests no longer wait
        ...
        server.requests                       # every request received, in order

or as a fixture::

    @pytest.fixture
    def server() -> Iterator[TTSServer]:
        with tts_server(api_key="k") as server:
            yield server

Behaviours for `script`, one per request, used before the request is checked; once the
script runs out requests are served normally:

    "ok"              serve normally (check the key and body, synthesise)
    "503", "422", ... answer that status with ``{"error": <reason phrase>}``
    "422:Too long"    answer that status with ``{"error": "Too long"}``
    "sleep:1.5"       wait 1.5 s, then serve normally (outlast a client's timeout)
    "garbage"         answer 200 ``audio/wav`` whose body is not audio
    "drop"            close the connection without answering

Every request is recorded (`RecordedRequest`: method, path, lower-cased headers, raw
body and parsed JSON) before its behaviour runs, so a request that timed out on the
client side is still listed. Leaving the block wakes sleeping handlers and waits for
all of them, so nothing outlives the test.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dashboard.tts import EngineError, EspeakEngine, SynthesisParams, VoiceRef

NOT_AUDIO = b"<html><body>This is not a WAV file.</body></html>"

_PARAMETERS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 1, 10000),
    "repetition_penalty": (float, 1.0, 2.0),
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed body, or None when it was not JSON


def _check_behaviour(behaviour: str) -> str:
    name, _, argument = behaviour.partition(":")
    if name in ("ok", "garbage", "drop") and not argument:
        return behaviour
    if name == "sleep":
        float(argument)
        return behaviour
    if name.isdigit() and len(name) == 3:
        return behaviour
    raise ValueError(f"unknown tts_server behaviour {behaviour!r}")


class TTSServer:
    """The running fake service; build it with `tts_server`."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.url = ""  # set once listening, e.g. "http://127.0.0.1:54321"
        self._lock = threading.Lock()
        self._script: deque[str] = deque()
        self._delay = 0.0
        self._gate: threading.Event | None = None
        self._requests: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._engine = EspeakEngine()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def script(self, behaviours: Iterable[str]) -> None:
        """Queue behaviours for the next requests, one each (see the module docstring)."""
        checked = [_check_behaviour(b) for b in behaviours]
        with self._lock:
            self._script.extend(checked)

    def slow(self, seconds: float) -> None:
        """Make every following request wait `seconds` before it is handled; 0 stops."""
        with self._lock:
            self._delay = seconds

    def hold(self) -> threading.Event:
        """Make following requests wait until the returned event is set (no clock involved).

        Tests use it to act while a request is certainly in flight, however slow the
        machine, instead of racing a fixed delay.
        """
        gate = threading.Event()
        with self._lock:
            self._gate = gate
        return gate

    def stop_holding(self) -> None:
        """Let new requests through at once; requests already held keep waiting."""
        with self._lock:
            self._gate = None

    def _record(self, request: RecordedRequest) -> tuple[str, float, threading.Event | None]:
        with self._lock:
            self._requests.append(request)
            behaviour = self._script.popleft() if self._script else "ok"
            return behaviour, self._delay, self._gate

    def _held(self, gate: threading.Event | None) -> bool:
        """Wait for `gate` unless the server is closing; return whether to carry on."""
        while gate is not None and not gate.wait(0.05):
            if self._closing.is_set():
                return False
        return True

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server is closing; return whether to carry on."""
        return seconds <= 0 or not self._closing.wait(seconds)

    def _serve(self, request: RecordedRequest) -> tuple[int, str, bytes]:
        """Check and synthesise a normal request: (status, content type, body)."""
        if request.method != "POST" or request.path != "/generate":
            return _error(HTTPStatus.NOT_FOUND, f"No route {request.method} {request.path}")
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return _error(HTTPStatus.UNAUTHORIZED, "Invalid or missing API key")
        payload = request.json
        if not isinstance(payload, dict):
            return _error(HTTPStatus.BAD_REQUEST, "The body must be a JSON object")
        problem = _invalid_fields(payload)
        if problem:
            return _error(HTTPStatus.BAD_REQUEST, problem)
        voice = VoiceRef(name=payload["voice_key"].rstrip("/").rsplit("/", 1)[-1])
        try:
            params = SynthesisParams(**{name: payload[name] for name in _PARAMETERS})
            result = self._engine.synthesize(payload["prompt"], voice, params)
        except ValueError as exc:
            return _error(HTTPStatus.BAD_REQUEST, str(exc))
        except EngineError as exc:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
        return HTTPStatus.OK, "audio/wav", result.wav


def _error(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": message}).encode()


def _invalid_fields(payload: dict[str, Any]) -> str | None:
    """Return what is wrong with a /generate body, or None when it is valid."""
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required and must be non-empty text"
    voice_key = payload.get("voice_key")
    if not isinstance(voice_key, str) or not voice_key.strip("/"):
        return "voice_key is required and must be a storage key"
    for name, (kind, low, high) in _PARAMETERS.items():
        value = payload.get(name)
        allowed = (int, float) if kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            return f"{name} is required and must be a {'number' if kind is float else 'integer'}"
        if not low <= value <= high:
            return f"{name} must be between {low:g} and {high:g}"
    if not isinstance(payload.get("norm_loudness", True), bool):
        return "norm_loudness must be true or false"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 10  # a client that stalls mid-request cannot hold the shutdown forever

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            json=parsed,
        )
        tts = self.server.tts
        behaviour, delay, gate = tts._record(request)
        if not tts._wait(delay) or not tts._held(gate):
            return
        name, _, argument = behaviour.partition(":")
        if name == "drop":
            self.close_connection = True
            return
        if name == "sleep":
            if not tts._wait(float(argument)):
                return
            name = "ok"
        if name == "garbage":
            answer = HTTPStatus.OK, "audio/wav", NOT_AUDIO
        elif name == "ok":
            answer = tts._serve(request)
        else:
            status = int(name)
            answer = _error(status, argument or HTTPStatus(status).phrase)
        self._answer(*answer)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            pass  # the client gave up waiting (a timeout test): nobody to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean; tests read `requests` instead


class _HTTPServer(ThreadingHTTPServer):
    # Joined on close (not daemon threads), so no handler outlives its test.
    daemon_threads = False
    block_on_close = True

    def __init__(self, tts: TTSServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tts = tts


@contextmanager
def tts_server(api_key: str | None = None) -> Iterator[TTSServer]:
    """Serve the fake speech service on a free loopback port for the block's duration.

    With `api_key` None no key is required; otherwise ``x-api-key`` must equal it.
    """
    tts = TTSServer(api_key)
    httpd = _HTTPServer(tts)
    host, port = httpd.server_address[:2]
    tts.url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield tts
    finally:
        tts._closing.set()
        httpd.shutdown()
        thread.join()
        httpd.server_close()
