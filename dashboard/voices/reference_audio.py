"""Check a custom voice's reference audio before anything is stored: size, a full decode,
duration, and a WAV cut short; `VoiceInputError` is how every voice input is refused."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import BinaryIO

import soundfile

from dashboard.audio import AudioInfo, InvalidAudio, probe_audio
from dashboard.formatting import megabytes
from dashboard.storage.uploads import read_chunks, stream_size

MIN_REFERENCE_MS = 10_000
MAX_REFERENCE_MS = 5 * 60_000
WAV_FORMATS = {"WAV", "WAVEX"}
_DECODE_BLOCK = 64 * 1024


class VoiceInputError(Exception):
    """Input the rules refuse; `message` is for the person, `field` names the input.

    `status` is the HTTP answer: 422 for what they typed or chose, 413 for a file over
    the size limit.
    """

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(frozen=True, slots=True)
class CheckedAudio:
    """Reference audio that passed every check, still in its (temporary, seekable) stream."""

    stream: BinaryIO
    size: int
    sha256: str
    info: AudioInfo


def _seconds(ms: int) -> str:
    if ms < 60_000:
        return f"{ms / 1000:.1f} seconds"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def check_reference_audio(stream: BinaryIO, max_bytes: int) -> CheckedAudio:
    """Decode `stream` all the way through and return what to store, or raise VoiceInputError.

    The format comes from decoding (soundfile), never from the file name or the declared
    type; the duration is counted from the decoded frames, and a WAV whose header
    announces more audio than the file holds is refused as incomplete.
    """
    size = stream_size(stream)
    if size == 0:
        raise VoiceInputError("The file is empty. Choose the audio file again.", "audio")
    if size > max_bytes:
        raise VoiceInputError(
            f"This file is {megabytes(size)}; the limit is {megabytes(max_bytes)}. "
            "MP3, FLAC or OGG hold the same audio in far fewer bytes than WAV.",
            "audio",
            status=413,
        )
    try:
        info = probe_audio(stream)
    except InvalidAudio:
        raise VoiceInputError(
            "This file could not be read as audio. Upload a WAV, MP3, FLAC or OGG recording.",
            "audio",
        ) from None
    if info.format in WAV_FORMATS:
        _refuse_incomplete_wav(stream, size)
    _check_duration(info.duration_ms)  # the header's claim: refuse hour-long files unread
    frames = _decoded_frames(stream)
    info = AudioInfo(info.format, info.content_type, info.sample_rate, info.channels, frames)
    _check_duration(info.duration_ms)
    digest = hashlib.sha256()
    for chunk in read_chunks(stream):
        digest.update(chunk)
    return CheckedAudio(stream, size, digest.hexdigest(), info)


def _check_duration(duration_ms: int) -> None:
    if duration_ms <= 0:
        raise VoiceInputError("This file contains no audio.", "audio")
    if duration_ms < MIN_REFERENCE_MS:
        raise VoiceInputError(
            f"This recording is only {_seconds(duration_ms)} long. A voice needs at least "
            f"{MIN_REFERENCE_MS // 1000} seconds of speech.",
            "audio",
        )
    if duration_ms > MAX_REFERENCE_MS:
        raise VoiceInputError(
            f"This recording is {_seconds(duration_ms)} long; a voice can use at most "
            f"{MAX_REFERENCE_MS // 60_000} minutes. Trim it and upload it again.",
            "audio",
        )


def _decoded_frames(stream: BinaryIO) -> int:
    """Decode every frame (headers can lie) and return how many there were."""
    stream.seek(0)
    frames = 0
    try:
        with soundfile.SoundFile(stream) as audio:
            while block := len(audio.read(_DECODE_BLOCK, dtype="int16")):
                frames += block
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise VoiceInputError(
            "This file is damaged: its audio can't be decoded all the way through. "
            "Export or record it again.",
            "audio",
        ) from exc
    finally:
        stream.seek(0)
    return frames


def _refuse_incomplete_wav(stream: BinaryIO, size: int) -> None:
    """Refuse a WAV cut short: its `data` chunk announces more bytes than the file has.

    libsndfile quietly plays what is there, which would store a clipped sample and
    report a misleading duration. Writers that stream (size 0 or 0xFFFFFFFF) are let
    through: they never knew the size.
    """
    stream.seek(0)
    try:
        head = stream.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # RF64 and friends: sizes live elsewhere; decoding still checks them
        order = "<" if head[:4] == b"RIFF" else ">"
        offset = 12
        while offset + 8 <= size:
            stream.seek(offset)
            chunk_id, chunk_size = struct.unpack(f"{order}4sI", stream.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                    share = max(1, min(99, available * 100 // chunk_size))
                    raise VoiceInputError(
                        f"This WAV file is incomplete: only {share}% of the audio its "
                        "header announces is there. It was probably cut off while being "
                        "copied or exported; export it again.",
                        "audio",
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)
    finally:
        stream.seek(0)
