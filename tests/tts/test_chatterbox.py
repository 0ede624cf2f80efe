"""The Chatterbox HTTP engine against a real loopback speech service (tests/tts_server.py)."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator

import pytest
import soundfile

from dashboard.tts import (
    ChatterboxEngine,
    EngineError,
    SynthesisParams,
    VoiceRef,
    get_engine,
)
from tests.tts_server import TTSServer, tts_server

API_KEY = "sk-test-8c1f0e5a9d"
VOICE = VoiceRef(name="Aaron", audio_key="voices/system/0191f6a2-aaron")
PARAMS = SynthesisParams(temperature=0.6, top_p=0.9, top_k=500, repetition_penalty=1.3)
TEXT = "Hello from the loopback speech service."


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours the machine's proxy settings; loopback must never go through one.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[TTSServer]:
    with tts_server(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def engine(server: TTSServer) -> Iterator[ChatterboxEngine]:
    with ChatterboxEngine(server.url, API_KEY, timeout=5.0, backoff=0.01) as engine:
        yield engine


def failure(engine: ChatterboxEngine) -> EngineError:
    with pytest.raises(EngineError) as caught:
        engine.synthesize(TEXT, VOICE, PARAMS)
    assert API_KEY not in str(caught.value)
    return caught.value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_success_returns_decoded_wav_and_sends_the_contract(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    result = engine.synthesize(f"  {TEXT}\n", VOICE, PARAMS)

    samples, rate = soundfile.read(io.BytesIO(result.wav), dtype="float64")
    assert rate == result.sample_rate > 0
    assert len(samples) > 0
    assert result.duration_ms == round(len(samples) * 1000 / rate) > 0
    assert result.engine == f"chatterbox {server.url.removeprefix('http://')}"

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/generate")
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "prompt": TEXT,
        "voice_key": VOICE.audio_key,
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 500,
        "repetition_penalty": 1.3,
        "norm_loudness": True,
    }
    body = request.json
    assert [type(body[k]) for k in ("temperature", "top_p", "top_k", "repetition_penalty")] == [
        float,
        float,
        int,
        float,
    ]
    assert body["norm_loudness"] is True


def test_whole_number_parameters_are_sent_as_floats(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    engine.synthesize(TEXT, VOICE, SynthesisParams(temperature=1, top_p=1, repetition_penalty=2))

    body = server.requests[0].json
    assert body["temperature"] == 1.0 and isinstance(body["temperature"], float)
    assert isinstance(body["top_p"], float) and isinstance(body["repetition_penalty"], float)
    assert body["top_k"] == 1000 and isinstance(body["top_k"], int)


def test_no_key_sends_no_header() -> None:
    with tts_server() as server, ChatterboxEngine(server.url, backoff=0.01) as engine:
        engine.synthesize(TEXT, VOICE)
    assert "x-api-key" not in server.requests[0].headers


def test_client_is_built_once_and_reused(server: TTSServer, engine: ChatterboxEngine) -> None:
    engine.synthesize(TEXT, VOICE, PARAMS)
    client = engine._http()
    engine.synthesize(TEXT, VOICE, PARAMS)
    assert engine._http() is client
    assert len(server.requests) == 2


def test_client_error_is_not_retried_and_carries_the_service_message(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    server.script(["422:Prompt is longer than 300 characters"])

    error = failure(engine)

    assert error.retryable is False
    assert "422 Unprocessable Entity" in str(error)
    assert "Prompt is longer than 300 characters" in str(error)
    assert len(server.requests) == 1


def test_service_validation_error_reaches_the_message(server: TTSServer) -> None:
    # An engine bypassing SynthesisParams' checks: the service's own 400 comes through.
    with ChatterboxEngine(server.url, API_KEY, backoff=0.01) as engine:
        with pytest.raises(EngineError) as caught:
            engine.synthesize(TEXT, VOICE, _UncheckedParams())  # type: ignore[arg-type]
    assert caught.value.retryable is False
    assert "400 Bad Request" in str(caught.value)
    assert "temperature must be between 0 and 2" in str(caught.value)
    assert len(server.requests) == 1


class _UncheckedParams:
    temperature = 5.0
    top_p = 0.95
    top_k = 1000
    repetition_penalty = 1.2


def test_long_service_message_is_truncated(server: TTSServer, engine: ChatterboxEngine) -> None:
    server.script(["400:" + "x" * 1000])
    message = str(failure(engine))
    assert "x" * 150 in message
    assert "x" * 250 not in message
    assert "…" in message


def test_refused_key_names_tts_api_key_and_is_not_retried(server: TTSServer) -> None:
    with ChatterboxEngine(server.url, "wrong-key", backoff=0.01) as engine:
        with pytest.raises(EngineError) as caught:
            engine.synthesize(TEXT, VOICE, PARAMS)

    error = caught.value
    assert error.retryable is False
    assert "TTS_API_KEY" in str(error) and "refused" in str(error)
    assert "401 Unauthorized" in str(error)
    assert "wrong-key" not in str(error)
    assert len(server.requests) == 1


def test_missing_key_asks_for_tts_api_key(server: TTSServer) -> None:
    with ChatterboxEngine(server.url, backoff=0.01) as engine:
        with pytest.raises(EngineError, match="set TTS_API_KEY") as caught:
            engine.synthesize(TEXT, VOICE, PARAMS)
    assert caught.value.retryable is False


def test_server_errors_then_success(server: TTSServer, engine: ChatterboxEngine) -> None:
    server.script(["500", "503", "ok"])

    result = engine.synthesize(TEXT, VOICE, PARAMS)

    assert result.duration_ms > 0
    assert len(server.requests) == 3
    assert all(r.json == server.requests[0].json for r in server.requests)


def test_server_errors_every_time_give_a_retryable_error(
    server: TTSServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(["503"] * 10)
    with ChatterboxEngine(server.url, API_KEY, retries=3, backoff=0.01) as engine:
        with caplog.at_level(logging.WARNING, logger="dashboard.tts.chatterbox"):
            error = failure(engine)

    assert error.retryable is True
    assert f"The speech service at {server.url} answered 503 Service Unavailable" in str(error)
    assert "(tried 4 times)" in str(error)
    assert "Unavailable: Service Unavailable" not in str(error)  # no echo of the reason
    assert len(server.requests) == 4
    assert len(caplog.records) == 3  # one warning per retry
    assert API_KEY not in caplog.text


def test_no_retries_makes_one_request(server: TTSServer) -> None:
    server.script(["502"])
    with ChatterboxEngine(server.url, API_KEY, retries=0) as engine:
        assert failure(engine).retryable is True
    assert len(server.requests) == 1


def test_timeout_is_retried_then_reported(server: TTSServer) -> None:
    server.slow(3.0)
    with ChatterboxEngine(server.url, API_KEY, timeout=0.5, retries=1, backoff=0.01) as engine:
        error = failure(engine)

    assert error.retryable is True
    assert f"The speech service at {server.url} did not answer within 0.5 s" in str(error)
    assert len(server.requests) == 2


def test_one_slow_answer_is_retried(server: TTSServer) -> None:
    server.script(["sleep:3", "ok"])
    with ChatterboxEngine(server.url, API_KEY, timeout=0.5, backoff=0.01) as engine:
        assert engine.synthesize(TEXT, VOICE, PARAMS).duration_ms > 0
    assert len(server.requests) == 2


def test_connection_refused_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ChatterboxEngine(url, API_KEY, retries=1, backoff=0.01) as engine:
        error = failure(engine)
    assert error.retryable is True
    assert f"The speech service at {url} could not be reached" in str(error)
    assert "(tried 2 times)" in str(error)


def test_dropped_connection_is_retried(server: TTSServer, engine: ChatterboxEngine) -> None:
    server.script(["drop", "ok"])
    assert engine.synthesize(TEXT, VOICE, PARAMS).duration_ms > 0
    assert len(server.requests) == 2


def test_connection_dropped_every_time_is_retryable(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    server.script(["drop"] * 3)
    error = failure(engine)
    assert error.retryable is True
    assert "dropped the connection" in str(error)
    assert len(server.requests) == 3


def test_body_that_is_not_audio(server: TTSServer, engine: ChatterboxEngine) -> None:
    server.script(["garbage"])

    error = failure(engine)

    assert error.retryable is True
    assert "sent something that isn't audio" in str(error)
    assert len(server.requests) == 1


def test_unknown_route_points_at_tts_url(server: TTSServer) -> None:
    with ChatterboxEngine(f"{server.url}/v2/", API_KEY) as engine:
        with pytest.raises(EngineError, match="is TTS_URL the service's base URL") as caught:
            engine.synthesize(TEXT, VOICE, PARAMS)
    assert caught.value.retryable is False
    assert server.requests[0].path == "/v2/generate"


def test_voice_without_reference_audio_is_refused_before_any_request(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    with pytest.raises(EngineError, match="'Walter' has no reference audio") as caught:
        engine.synthesize(TEXT, VoiceRef(name="Walter"), PARAMS)
    assert caught.value.retryable is False
    assert server.requests == []


def test_empty_text_is_refused_before_any_request(
    server: TTSServer, engine: ChatterboxEngine
) -> None:
    with pytest.raises(EngineError, match="no text to speak"):
        engine.synthesize("   ", VOICE, PARAMS)
    assert server.requests == []


def test_key_echoed_by_the_service_is_masked(server: TTSServer, engine: ChatterboxEngine) -> None:
    server.script([f"403:key {API_KEY} is disabled"])
    error = failure(engine)  # asserts the key is absent
    assert "key [API key] is disabled" in str(error)


def test_from_config_without_url() -> None:
    with pytest.raises(EngineError, match="TTS_URL") as caught:
        ChatterboxEngine.from_config({"TTS_API_KEY": API_KEY})
    assert caught.value.retryable is False
    assert API_KEY not in str(caught.value)


def test_from_config_rejects_a_negative_timeout() -> None:
    with pytest.raises(EngineError, match="TTS_TIMEOUT_SECONDS") as caught:
        ChatterboxEngine.from_config({"TTS_URL": "http://tts:8000", "TTS_TIMEOUT_SECONDS": -1})
    assert caught.value.retryable is False


@pytest.mark.parametrize("url", ["tts:8000", "ftp://tts", "http://"])
def test_url_must_be_http(url: str) -> None:
    with pytest.raises(EngineError, match="TTS_URL") as caught:
        ChatterboxEngine(url)
    assert caught.value.retryable is False


def test_get_engine_builds_chatterbox_from_settings(server: TTSServer) -> None:
    engine = get_engine(
        "Chatterbox",
        {"TTS_URL": server.url, "TTS_API_KEY": API_KEY, "TTS_TIMEOUT_SECONDS": 30.0},
    )
    assert isinstance(engine, ChatterboxEngine)
    assert engine.timeout == 30.0
    assert API_KEY not in repr(engine)
    with engine:
        assert engine.synthesize(TEXT, VOICE, PARAMS).duration_ms > 0
    assert server.requests[0].headers["x-api-key"] == API_KEY


def test_api_key_never_appears_in_errors_or_logs(
    server: TTSServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(["401", "403", "404", "422", "500", "500", "500", "garbage"])
    messages = []
    with (
        caplog.at_level(logging.DEBUG),
        ChatterboxEngine(server.url, API_KEY, retries=2, backoff=0.01) as engine,
    ):
        for _ in range(6):
            with pytest.raises(EngineError) as caught:
                engine.synthesize(TEXT, VOICE, PARAMS)
            messages.append(f"{caught.value} {caught.value!r}")
    assert len(server.requests) == 8
    assert all(API_KEY not in message for message in messages)
    assert API_KEY not in caplog.text


@pytest.mark.parametrize(
    "script",
    [["503"] * 4, ["drop"] * 4, ["garbage"], ["422:voice_key voices/orgs/42/x unknown"], ["400"]],
)
def test_what_members_read_names_no_address_setting_or_key(server: TTSServer, script) -> None:
    server.script(script)
    with ChatterboxEngine(server.url, API_KEY, timeout=5.0, retries=1, backoff=0.01) as engine:
        error = failure(engine)
    public = error.public_message
    host = server.url.removeprefix("http://")
    assert host in str(error)  # the full message, for the log, says where
    for internal in (host, "127.0.0.1", "TTS_", "voices/", "http"):
        assert internal not in public, public
    assert public.endswith(".")


def test_misconfiguration_reads_as_such_to_members(server: TTSServer) -> None:
    with ChatterboxEngine(server.url, "wrong-key", timeout=5.0) as engine:
        error = failure(engine)
    assert "TTS_API_KEY" in str(error)
    assert "TTS_" not in error.public_message and "administrator" in error.public_message
    unreachable = f"http://127.0.0.1:{free_port()}"
    with ChatterboxEngine(unreachable, timeout=1.0, retries=0) as engine:
        error = failure(engine)
    assert error.public_message == "The speech service is unavailable right now."
