"""The speech-engine interface: what every engine takes and returns."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass


def _check_range(name: str, value: float, low: float, high: float) -> None:
    # `not low <= value <= high` also rejects NaN, which compares false with everything.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True, slots=True)
class SynthesisParams:
    """Sampling parameters of a generation; defaults and ranges follow the product brief."""

    temperature: float = 0.8  # 0.0–2.0
    top_p: float = 0.95  # 0.0–1.0
    top_k: int = 1000  # 1–10000
    repetition_penalty: float = 1.2  # 1.0–2.0

    def __post_init__(self) -> None:
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int):
            raise ValueError(f"top_k must be a whole number, got {self.top_k!r}")
        _check_range("top_k", self.top_k, 1, 10000)
        _check_range("repetition_penalty", self.repetition_penalty, 1.0, 2.0)


DEFAULT_PARAMS = SynthesisParams()


@dataclass(frozen=True, slots=True)
class VoiceRef:
    """What an engine needs to know about a voice (not the database row itself)."""

    name: str
    language: str = "en-US"  # BCP 47
    variant: str = "SYSTEM"  # "SYSTEM" | "CUSTOM"
    audio_key: str | None = None  # object-storage key of the reference audio (remote engines)


@dataclass(frozen=True, slots=True)
class SynthesisResult:
    """A finished synthesis: a complete WAV file plus what callers store about it."""

    wav: bytes  # a complete RIFF/WAVE file, 16-bit PCM mono
    sample_rate: int
    duration_ms: int
    engine: str  # name and version, e.g. "espeak-ng 1.52.0"


class EngineError(Exception):
    """A synthesis failure with a message a person understands.

    `retryable` tells the job runner whether trying again may help (a timeout, a 5xx, a
    dropped connection) or cannot (the engine refused the request itself, e.g. a 4xx).
    `public_message` is the version members see (no addresses, paths or setting names).
    """

    def __init__(self, message: str, *, retryable: bool = True, public: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self._public = public

    @property
    def public_message(self) -> str:
        """What members may read: ``public`` when the full message names internals.

        The full message (``str(exc)``) is for the log and operators: it may name the
        service's address or a setting. Engines pass ``public`` whenever it does.
        """
        return self._public or str(self)


def require_text(text: str) -> str:
    """Return `text` trimmed, or raise EngineError when nothing is left to speak."""
    if not isinstance(text, str):
        raise EngineError(f"Text to speak must be a string, not {type(text).__name__}.")
    stripped = text.strip()
    if not stripped:
        raise EngineError("There is no text to speak: the text is empty.")
    return stripped


class Engine(abc.ABC):
    """A text-to-speech engine; implementations must be safe to call from several threads."""

    name: str

    @abc.abstractmethod
    def synthesize(
        self, text: str, voice: VoiceRef, params: SynthesisParams = DEFAULT_PARAMS
    ) -> SynthesisResult:
        """Speak `text` with `voice` and return the audio; raise EngineError on failure."""
