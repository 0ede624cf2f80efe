"""Inspect audio by decoding it (never by file name or declared type)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile

# libsndfile's format names → the Content-Type we serve the object with.
CONTENT_TYPES = {
    "WAV": "audio/wav",
    "WAVEX": "audio/wav",
    "FLAC": "audio/flac",
    "OGG": "audio/ogg",
    "MP3": "audio/mpeg",
}


class InvalidAudio(ValueError):
    """The bytes are not audio in a format Voxboard accepts; the message says why."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What decoding told us about a piece of audio."""

    format: str
    content_type: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_ms(self) -> int:
        """Return the duration in whole milliseconds."""
        return round(self.frames * 1000 / self.sample_rate) if self.sample_rate else 0


def probe_audio(source: bytes | BinaryIO) -> AudioInfo:
    """Decode the header of `source` and return its format and duration.

    The stream is rewound afterwards so the caller can upload it.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    start = stream.tell()
    try:
        info = soundfile.info(stream)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidAudio(
            "This file could not be read as audio (WAV, MP3, FLAC or OGG expected)."
        ) from exc
    finally:
        stream.seek(start)
    content_type = CONTENT_TYPES.get(info.format)
    if content_type is None:
        raise InvalidAudio(f"Audio format {info.format_info} is not supported.")
    frames = info.frames
    if frames <= 0 or frames >= 2**62:  # some decoders report "unknown" as a huge count
        frames = _count_frames(stream)
    return AudioInfo(info.format, content_type, info.samplerate, info.channels, frames)


def _count_frames(stream: BinaryIO) -> int:
    start = stream.tell()
    try:
        with soundfile.SoundFile(stream) as sf:
            return sum(len(block) for block in sf.blocks(blocksize=65536))
    finally:
        stream.seek(start)


PEAK_COUNT = 160


def waveform_peaks(source: bytes, count: int = PEAK_COUNT) -> list[int]:
    """Return `count` loudness peaks (0–100) of the audio in `source`, for a waveform.

    Each peak is the largest absolute sample of its slice (all channels), scaled so
    the loudest slice is 100; silence is all zeros. Decoded once, when audio is
    written, so no page ever has to decode audio to draw it.
    """
    try:
        samples, _rate = soundfile.read(io.BytesIO(source), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InvalidAudio("This audio could not be decoded to draw its waveform.") from exc
    magnitude = np.abs(samples).max(axis=1) if samples.size else np.zeros(0, dtype="float32")
    if magnitude.size == 0:
        return [0] * count
    edges = np.linspace(0, magnitude.size, count + 1).astype(int)
    peaks = np.array(
        [magnitude[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    loudest = float(peaks.max())
    if loudest <= 0:
        return [0] * count
    return [int(round(100 * p / loudest)) for p in peaks]
