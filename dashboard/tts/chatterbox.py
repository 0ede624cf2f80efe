"""Speech from a Chatterbox-compatible HTTP service, the reference product's engine.

Contract
    ``POST {TTS_URL}/generate`` with the header ``x-api-key: <TTS_API_KEY>`` (left out
    when no key is set) and the JSON body::

        {"prompt": "text to speak", "voice_key": "voices/system/<id>",
         "temperature": 0.8, "top_p": 0.95, "top_k": 1000,
         "repetition_penalty": 1.2, "norm_loudness": true}

    `voice_key` is the object-storage key of the voice's reference audio, which the
    service reads from the same bucket; a voice without one cannot be cloned. The answer
    is a WAV file (``audio/wav``). It is decoded before it is accepted, and the sample
    rate and duration reported come from that decoding, not from the headers.

Retries
    Connection errors, timeouts, 5xx, 408 and 429 are tried again inside the engine, up
    to `retries` more times, waiting ``backoff * 2**n`` seconds before retry n (0.5 s,
    then 1 s by default). Connecting may take up to 10 s, the answer up to `timeout`
    (TTS_TIMEOUT_SECONDS, 120 s by default) since generating a long text is slow.

Errors
    Every failure is an EngineError whose message names the service (its origin, never
    the key) and says what went wrong. `retryable` is True when trying again later may
    help: the service was unreachable, too slow, overloaded (5xx) or sent a body that
    is not audio. It is False when the request itself was refused (4xx, with the
    service's own short error text when it sent one; 401/403 mean the API key was
    refused) or the engine is misconfigured. The API key is never logged and is masked
    in any text the service echoes back.

Threads
    One `httpx.Client` is built on first use and shared; it is thread-safe, so one
    engine may serve every worker thread. `close()` releases its connections.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from dashboard.audio import InvalidAudio, probe_audio
from dashboard.tts.base import (
    DEFAULT_PARAMS,
    Engine,
    EngineError,
    SynthesisParams,
    SynthesisResult,
    VoiceRef,
    require_text,
)

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 10.0  # seconds; a service that cannot accept a connection in 10 s is down
_DETAIL_LIMIT = 200  # characters of the service's own error text kept in a message
_WAV_FORMATS = frozenset({"WAV", "WAVEX"})
# Client errors that mean "not now" rather than "never": retried like a 5xx.
_TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})
# What members read (EngineError.public_message); the full messages, with the service's
# address and the settings to check, go to the worker's log for operators.
UNAVAILABLE = "The speech service is unavailable right now."
MISCONFIGURED = (
    "The speech service is not set up correctly, so nothing can be spoken until an "
    "administrator fixes it."
)
UNUSABLE_AUDIO = "The speech service sent back audio Voxboard can't use."


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _tried(count: int) -> str:
    return f" (tried {count} times)" if count > 1 else ""


class ChatterboxEngine(Engine):
    """Voice-cloning synthesis on a remote Chatterbox-compatible service."""

    name = "chatterbox"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 2,
        backoff: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        """Prepare an engine for the service at base URL `url`; nothing connects yet.

        A `client` passed in is used as is (its own timeouts apply) and is not closed by
        `close()`; otherwise the engine builds and owns one.
        """
        try:
            parsed = httpx.URL(url.strip().rstrip("/"))
        except httpx.InvalidURL as exc:
            raise EngineError(
                f"TTS_URL is not a valid URL: {exc}", retryable=False, public=MISCONFIGURED
            ) from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise EngineError(
                "TTS_URL must be an http:// or https:// URL with a host, e.g. http://tts:8000.",
                retryable=False,
                public=MISCONFIGURED,
            )
        if api_key is not None and not (api_key.isascii() and api_key.isprintable()):
            # httpx would fail to encode it, and its error would quote the key.
            raise EngineError(
                "TTS_API_KEY contains characters that cannot be sent in an HTTP header.",
                retryable=False,
                public=MISCONFIGURED,
            )
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff cannot be negative")
        # Userinfo in TTS_URL is left out of everything shown: it may be a credential.
        self.origin = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        path = parsed.path.rstrip("/") + "/generate"
        self.endpoint = str(parsed.copy_with(path=path))
        self._shown_endpoint = self.origin + path
        self.engine_label = f"chatterbox {parsed.netloc.decode('ascii')}"
        self.timeout = float(timeout)
        self._connect_timeout = min(_CONNECT_TIMEOUT, self.timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self._api_key = api_key or None
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ChatterboxEngine:
        """Build the engine from the app settings TTS_URL, TTS_API_KEY, TTS_TIMEOUT_SECONDS."""
        url = config.get("TTS_URL")
        if not url:
            raise EngineError(
                "The chatterbox speech engine needs TTS_URL, the base URL of the speech "
                "service (e.g. http://tts:8000); it is not set.",
                retryable=False,
                public=MISCONFIGURED,
            )
        timeout = float(config.get("TTS_TIMEOUT_SECONDS") or 120.0)
        if not timeout > 0:
            raise EngineError(
                f"TTS_TIMEOUT_SECONDS must be a positive number of seconds, got {timeout:g}.",
                retryable=False,
                public=MISCONFIGURED,
            )
        return cls(url, config.get("TTS_API_KEY") or None, timeout=timeout)

    def __repr__(self) -> str:
        return f"ChatterboxEngine({self.origin!r})"

    def __enter__(self) -> ChatterboxEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client the engine built (a client passed in stays open)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()

    def _http(self) -> httpx.Client:
        """Return the shared client, building it on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=self._connect_timeout),
                )
                self._owns_client = True
            return self._client

    def synthesize(
        self, text: str, voice: VoiceRef, params: SynthesisParams = DEFAULT_PARAMS
    ) -> SynthesisResult:
        """Speak `text` in `voice` (cloned from its reference audio); see the module docs."""
        text = require_text(text)
        if not voice.audio_key:
            raise EngineError(
                f"The voice {voice.name!r} has no reference audio, so the speech service "
                "cannot speak with it.",
                retryable=False,
            )
        body = {
            "prompt": text,
            "voice_key": voice.audio_key,
            "temperature": float(params.temperature),
            "top_p": float(params.top_p),
            "top_k": int(params.top_k),
            "repetition_penalty": float(params.repetition_penalty),
            "norm_loudness": True,
        }
        headers = {"x-api-key": self._api_key} if self._api_key else {}
        response = self._post(body, headers)
        return self._result(response)

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """POST `body`, retrying transient failures; return a 2xx response or raise."""
        client = self._http()
        attempts = 1 + self.retries
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(self.endpoint, json=body, headers=headers)
            except httpx.ConnectTimeout:
                problem = f"did not accept a connection within {_seconds(self._connect_timeout)}"
            except httpx.TimeoutException:
                problem = f"did not answer within {_seconds(self.timeout)}"
            except httpx.ConnectError as exc:
                problem = f"could not be reached ({_describe(exc)})"
            except httpx.TransportError as exc:
                problem = f"dropped the connection ({_describe(exc)})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if status < 500 and status not in _TRANSIENT_CLIENT_ERRORS:
                    self._refuse(response)
                problem = f"answered {self._status_line(response)}"
                detail = self._detail(response)
                if detail:
                    problem += f": {detail}"
            if attempt == attempts:
                raise EngineError(
                    f"The speech service at {self.origin} {problem}{_tried(attempts)}.",
                    retryable=True,
                    public=UNAVAILABLE,
                )
            delay = self.backoff * 2 ** (attempt - 1)
            logger.warning(
                "Speech service at %s %s; retrying in %s (attempt %d of %d).",
                self.origin,
                problem,
                _seconds(delay),
                attempt + 1,
                attempts,
            )
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refuse(self, response: httpx.Response) -> NoReturn:
        """Raise the non-retryable error for a 3xx/4xx answer."""
        status = response.status_code
        detail = self._detail(response)
        suffix = f": {detail}" if detail else ""
        public = MISCONFIGURED
        if status in (401, 403):
            if self._api_key:
                message = (
                    f"The speech service at {self.origin} refused the API key "
                    f"(TTS_API_KEY) with {self._status_line(response)}{suffix}."
                )
            else:
                message = (
                    f"The speech service at {self.origin} wants an API key: set TTS_API_KEY "
                    f"({self._status_line(response)}{suffix})."
                )
        elif status == 404:
            message = (
                f"The speech service at {self.origin} has no {self._shown_endpoint} "
                f"(404 Not Found{suffix}); is TTS_URL the service's base URL?"
            )
        elif status < 400:
            message = (
                f"The speech service at {self.origin} answered {self._status_line(response)} "
                "instead of audio; is TTS_URL the service's own address?"
            )
        else:
            message = (
                f"The speech service at {self.origin} rejected the request with "
                f"{self._status_line(response)}{suffix}."
            )
            public = f"The speech service refused to speak this (HTTP {status})."
        raise EngineError(message, retryable=False, public=public)

    def _result(self, response: httpx.Response) -> SynthesisResult:
        """Decode the answer and return it, or raise when it is not a WAV file."""
        wav = response.content
        content_type = response.headers.get("content-type", "no content type")
        try:
            info = probe_audio(wav)
        except InvalidAudio as exc:
            raise EngineError(
                f"The speech service at {self.origin} sent something that isn't audio "
                f"({content_type}, {len(wav)} bytes).",
                retryable=True,
                public=UNUSABLE_AUDIO,
            ) from exc
        if info.format not in _WAV_FORMATS:
            raise EngineError(
                f"The speech service at {self.origin} sent {info.format} audio; "
                "Voxboard needs WAV.",
                retryable=False,
                public=UNUSABLE_AUDIO,
            )
        if info.frames <= 0:
            raise EngineError(
                f"The speech service at {self.origin} sent an empty audio file.",
                retryable=True,
                public=UNUSABLE_AUDIO,
            )
        return SynthesisResult(
            wav=wav,
            sample_rate=info.sample_rate,
            duration_ms=info.duration_ms,
            engine=self.engine_label,
        )

    @staticmethod
    def _status_line(response: httpx.Response) -> str:
        reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
        return f"{response.status_code} {reason}".strip()

    def _detail(self, response: httpx.Response) -> str:
        """Return the service's own short error text, key masked, or "" if it sent none."""
        content_type = response.headers.get("content-type", "").lower()
        if "html" in content_type:
            return ""  # a proxy's error page: its markup would only add noise
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            return ""
        detail = text = self._mask(text)
        if "json" in content_type or text.lstrip().startswith("{"):
            try:
                payload = json.loads(text)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                found = next(
                    (payload[k] for k in ("error", "detail", "message") if payload.get(k)),
                    None,
                )
                detail = "" if found is None else _flatten(found)
        detail = self._mask(" ".join(detail.split()))
        if detail.casefold() == response.reason_phrase.casefold():
            return ""  # only repeats the status line
        if len(detail) > _DETAIL_LIMIT:
            detail = detail[: _DETAIL_LIMIT - 1].rstrip() + "…"
        return detail

    def _mask(self, text: str) -> str:
        return text.replace(self._api_key, "[API key]") if self._api_key else text


def _describe(exc: httpx.TransportError) -> str:
    return str(exc).strip().rstrip(".") or type(exc).__name__


def _flatten(value: Any) -> str:
    """Turn an error field into one line; FastAPI's list of {"msg": ...} joins its msgs."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(
            str(item["msg"]) if isinstance(item, dict) and "msg" in item else _flatten(item)
            for item in value
        )
    return json.dumps(value, ensure_ascii=False)
