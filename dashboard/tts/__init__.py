"""Speech engines: one interface (`Engine`), chosen by name with `get_engine`.

Engines are built on request and load nothing heavy at import: eSpeak's shared library
starts on the first synthesis, a remote engine would open its client on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dashboard.tts.base import (
    DEFAULT_PARAMS,
    Engine,
    EngineError,
    SynthesisParams,
    SynthesisResult,
    VoiceRef,
)
from dashboard.tts.chatterbox import ChatterboxEngine
from dashboard.tts.espeak import EspeakEngine, sample_text

__all__ = [
    "DEFAULT_PARAMS",
    "ENGINES",
    "ChatterboxEngine",
    "Engine",
    "EngineError",
    "EspeakEngine",
    "SynthesisParams",
    "SynthesisResult",
    "VoiceRef",
    "app_engine",
    "get_engine",
    "sample_text",
]

# Engine name → factory taking the app's settings (TTS_URL, TTS_API_KEY, ...).
ENGINES: dict[str, Callable[[Mapping[str, Any]], Engine]] = {
    "espeak": lambda _config: EspeakEngine(),
    "chatterbox": ChatterboxEngine.from_config,
}


def get_engine(name: str, config: Mapping[str, Any] | None = None) -> Engine:
    """Build the engine called `name` (case-insensitive); EngineError if there is none."""
    factory = ENGINES.get(name.strip().lower())
    if factory is None:
        known = ", ".join(sorted(ENGINES))
        raise EngineError(f"Unknown speech engine {name!r}; available engines: {known}.")
    return factory(config or {})


ENGINE_EXTENSION_KEY = "voxboard.tts"


def app_engine(app: Any) -> Engine:
    """Return the engine `TTS_ENGINE` names for `app`, built once and then shared."""
    engine = app.extensions.get(ENGINE_EXTENSION_KEY)
    if engine is None:
        engine = get_engine(app.config.get("TTS_ENGINE") or "espeak", app.config)
        app.extensions[ENGINE_EXTENSION_KEY] = engine
    return engine
