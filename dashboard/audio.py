"""Inspect audio by decoding it (never by file name or declared type)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

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
