"""Offline speech through eSpeak NG (the `espeakng-loader` wheel), driven with ctypes.

Voices
    A system voice is spoken with the `EspeakProfile` of its entry in the catalogue
    (`catalog.SYSTEM_VOICES`): an eSpeak language voice, a stock eSpeak variant that gives
    the timbre, and base pitch, speaking rate, pitch range and word gap. Any other voice
    (custom voices, or a system voice the catalogue does not know) gets `derive_profile`:
    the language comes from its BCP 47 tag (the full tag, then shorter prefixes, finally
    ``en-us``), the timbre and prosody from a SHA-256 of its name, so a voice always
    sounds the same everywhere. eSpeak cannot clone a voice, so reference audio
    (`VoiceRef.audio_key`) is ignored.

Sampling parameters, mapped onto eSpeak's prosody (defaults give the profile unchanged)
    temperature (0–2)          expressiveness: pitch range × (0.4 + 0.75·t), so 0 is
                               near-monotone, 0.8 is the profile's range, 2 is 1.9× it.
    repetition_penalty (1–2)   pace: speaking rate × (1 + 0.5·(rp − 1.2)), i.e. 0.9× at
                               1.0 and 1.4× at 2.0; the rate is clamped to 80–450 wpm.
    top_p (0–1)                deliberateness: below 0.95 a narrower nucleus adds a pause
                               between words, round((0.95 − p)·10) × 10 ms (up to 100 ms).
    top_k                      ignored: formant synthesis has no token list to truncate.

Determinism
    The same text, voice and parameters give byte-identical WAV files, in any process and
    whatever was synthesised before. Stock eSpeak voices do not: pitch flutter, roughness
    and breath noise keep state (a flutter phase, a cycle counter, libc `rand()`) across
    utterances, and a variant's "intonation" line leaks into the next voice. So the
    engine writes its own copies of the stock variants with those features switched off
    and intonation always set, into a private data directory (the packaged data
    symlinked, plus `voices/!v/vx-*`), and peak-normalises each clip in Python.

Threads
    eSpeak NG keeps global state and is not thread-safe: the library is loaded and
    initialised once per process on first use, and every synthesis (voice, parameters,
    text) runs under one module-level lock.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import espeakng_loader
import numpy as np

from dashboard.tts.base import (
    DEFAULT_PARAMS,
    Engine,
    EngineError,
    SynthesisParams,
    SynthesisResult,
    VoiceRef,
    require_text,
)
from dashboard.tts.catalog import EspeakProfile, system_voice

# speak_lib.h constants (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data folder calls exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # end with a sentence pause, as a person would
_EE_OK = 0
# What members read when the engine itself can't start (the log has the path and why).
ESPEAK_BROKEN = "The offline speech engine could not start; an administrator has to fix it."
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

# Well below eSpeak's normal 100 so its automatic gain control, state that outlives an
# utterance, never engages: the loudest profile peaks near 65% of full scale here.
# Every clip is then peak-normalised to the same level.
_ESPEAK_VOLUME = 30
_TARGET_PEAK = 29_000  # about −1 dBFS
_MAX_GAIN = 8.0

_FALLBACK_LANGUAGE = "en-us"

# Variant-file keywords copied from stock variants: timbre only, nothing stateful.
_TIMBRE_KEYWORDS = frozenset({"name", "gender", "pitch", "formant", "tone", "voicing", "echo"})

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


# Timbres for voices outside the catalogue: natural-sounding stock variants only (no robots).
_DERIVED_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m6", "m7", "Andy", "Denis", "Michael", "Gene",
    "f1", "f2", "f3", "f4", "f5", "steph", "linda", "Annie", "Andrea", "shelby",
)  # fmt: skip

# ~10 s read aloud: reference audio for seeding voices, in the voice's own language.
_SAMPLE_TEXTS: dict[str, str] = {
    "en": (
        "Hello, and thank you for listening. This short recording lets you hear how I "
        "sound when I read a few ordinary sentences aloud, at a natural pace."
    ),
    "ru": (
        "Здравствуйте и спасибо, что слушаете. Эта короткая запись позволяет услышать, "
        "как звучит мой голос, когда я спокойно читаю вслух несколько обычных фраз."
    ),
    "de": (
        "Hallo und vielen Dank fürs Zuhören. Mit dieser kurzen Aufnahme hören Sie, wie "
        "meine Stimme klingt, wenn ich ein paar ganz gewöhnliche Sätze vorlese."
    ),
    "es": (
        "Hola y gracias por escuchar. Esta breve grabación te permite oír cómo suena mi "
        "voz cuando leo en voz alta unas cuantas frases sencillas, con calma."
    ),
    "fr": (
        "Bonjour et merci de votre écoute. Ce court enregistrement vous permet d'entendre "
        "ma voix lorsque je lis à voix haute quelques phrases ordinaires, sans me presser."
    ),
}


def sample_text(language: str) -> str:
    """Return a 1–2 sentence sample (about 10 s spoken) in `language`, else in English."""
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return _SAMPLE_TEXTS.get(base, _SAMPLE_TEXTS["en"])


@cache
def _language_index() -> dict[str, str]:
    """Map every eSpeak language code (lower case) to its voice file, e.g. "en-gb" → "gmw/en".

    Read from the packaged `lang/` files, not the library, so resolving a voice never
    loads it; where several files claim a code, the lowest priority number wins, as in
    eSpeak's own selection.
    """
    lang_dir = Path(espeakng_loader.get_data_path()) / "lang"
    best: dict[str, tuple[int, str]] = {}
    for path in sorted(p for p in lang_dir.rglob("*") if p.is_file()):
        identifier = path.relative_to(lang_dir).as_posix()
        claims = [(path.name.lower(), 0)]
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "language":
                priority = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 5
                claims.append((fields[1].lower(), priority))
        for code, priority in claims:
            if code not in best or priority < best[code][0]:
                best[code] = (priority, identifier)
    return {code: identifier for code, (_, identifier) in best.items()}


def resolve_language(tag: str) -> str:
    """Return the eSpeak language for a BCP 47 tag: the tag, a shorter prefix, else en-us."""
    index = _language_index()
    parts = tag.strip().lower().replace("_", "-").split("-")
    for end in range(len(parts), 0, -1):
        candidate = "-".join(parts[:end])
        if candidate in index:
            return candidate
    return _FALLBACK_LANGUAGE


def derive_profile(name: str, language: str) -> EspeakProfile:
    """Return a stable profile for a voice outside the catalogue, from its name and language."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return EspeakProfile(
        language=resolve_language(language),
        variant=_DERIVED_VARIANTS[digest[0] % len(_DERIVED_VARIANTS)],
        pitch=35 + digest[1] % 31,  # 35–65
        rate=150 + digest[2] % 41,  # 150–190 wpm
        pitch_range=35 + digest[3] % 36,  # 35–70
    )


def profile_for(voice: VoiceRef) -> EspeakProfile:
    """Return the profile eSpeak uses for `voice`: its catalogue entry's, else a derived one."""
    entry = system_voice(voice.name) if voice.variant == "SYSTEM" else None
    if entry is not None:
        return entry.espeak
    return derive_profile(voice.name, voice.language)


@dataclass(frozen=True, slots=True)
class _Prosody:
    """The espeak_SetParameter values for one synthesis."""

    rate: int
    pitch: int
    pitch_range: int
    word_gap: int


def _prosody(profile: EspeakProfile, params: SynthesisParams) -> _Prosody:
    """Combine a voice profile with sampling parameters (see the module docstring)."""
    rate = profile.rate * (1 + 0.5 * (params.repetition_penalty - 1.2))
    pitch_range = profile.pitch_range * (0.4 + 0.75 * params.temperature)
    extra_gap = max(0, round((0.95 - params.top_p) * 10))
    return _Prosody(
        rate=min(EspeakProfile.RATE_MAX, max(EspeakProfile.RATE_MIN, round(rate))),
        pitch=profile.pitch,
        pitch_range=min(100, max(0, round(pitch_range))),
        word_gap=profile.word_gap + extra_gap,
    )


def _variant_file_name(variant: str) -> str:
    return "vx-" + re.sub(r"[^a-z0-9]", "", variant.lower())


def _deterministic_variant(stock_text: str) -> str:
    """Return a stock variant file reduced to its timbre, with stateful features off."""
    lines = []
    intonation = "0"
    for raw in stock_text.splitlines():
        fields = raw.split("//", 1)[0].split()
        if not fields:
            continue
        if fields[0] in _TIMBRE_KEYWORDS:
            lines.append(" ".join(fields))
        elif fields[0] == "intonation" and len(fields) > 1:
            intonation = fields[1]
    # flutter and roughness modulation depend on counters that survive between
    # utterances (roughness 8 is past eSpeak's table, i.e. none); intonation is a
    # global that is only written when a file names it, so always name it.
    lines += ["flutter 0", "roughness 8", f"intonation {intonation}"]
    return "\n".join(lines) + "\n"


def _remove_data_dir(root: Path, owner_pid: int) -> None:
    # Forked workers inherit the atexit hook but share the folder: only its creator
    # removes it.
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


class _Runtime:
    """The process's one initialised eSpeak NG; use only while holding `_LOCK`."""

    def __init__(self) -> None:
        self._packaged_data = Path(espeakng_loader.get_data_path())
        self._data_dir = self._build_data_dir()
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EngineError(
                f"The eSpeak NG library could not be loaded: {exc}", public=ESPEAK_BROKEN
            ) from exc
        self._declare(lib)
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(self._data_dir), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EngineError(
                f"eSpeak NG could not start with its data in {self._data_dir}.",
                public=ESPEAK_BROKEN,
            )
        self._lib = lib
        self.sample_rate: int = rate
        version = lib.espeak_Info(None)
        self.engine_label = f"espeak-ng {version.decode()}" if version else "espeak-ng"
        self._chunks: list[bytes] = []
        # Kept on the instance: ctypes must not free a callback that C still holds.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._variants_written: set[str] = set()

    @staticmethod
    def _declare(lib: ctypes.CDLL) -> None:
        """Declare the C signatures (speak_lib.h) so ctypes converts arguments correctly."""
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,  # text
            ctypes.c_size_t,  # size
            ctypes.c_uint,  # position
            ctypes.c_int,  # position_type
            ctypes.c_uint,  # end_position
            ctypes.c_uint,  # flags
            ctypes.POINTER(ctypes.c_uint),  # unique_identifier
            ctypes.c_void_p,  # user_data
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

    def _build_data_dir(self) -> Path:
        """Create a private espeak-ng-data: the packaged files plus our own variants.

        The packaged folder may be read-only and is shared, so it is mirrored by
        symlinks (copies where symlinks are not allowed) and removed at exit.
        """
        root = Path(tempfile.mkdtemp(prefix="voxboard-espeak-"))
        atexit.register(_remove_data_dir, root, os.getpid())
        for entry in sorted(self._packaged_data.iterdir()):
            if entry.name == "voices":
                continue
            try:
                (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
            except OSError:
                if entry.is_dir():
                    shutil.copytree(entry, root / entry.name)
                else:
                    shutil.copy2(entry, root / entry.name)
        (root / "voices" / "!v").mkdir(parents=True)
        return root

    def _variant(self, variant: str) -> str:
        """Return the file name of our deterministic copy of a stock variant, writing it once."""
        file_name = _variant_file_name(variant)
        if file_name not in self._variants_written:
            stock = self._packaged_data / "voices" / "!v" / variant
            if not stock.is_file():
                raise EngineError(f"eSpeak NG has no voice variant called {variant!r}.")
            text = stock.read_text(encoding="utf-8", errors="replace")
            (self._data_dir / "voices" / "!v" / file_name).write_text(
                _deterministic_variant(text), encoding="utf-8"
            )
            self._variants_written.add(file_name)
        return file_name

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * ctypes.sizeof(ctypes.c_short)))
        return 0  # 0 = carry on synthesising

    def speak(self, text: str, profile: EspeakProfile, prosody: _Prosody) -> bytes:
        """Return raw native-endian 16-bit samples for `text` spoken with `profile`."""
        identifier = _language_index().get(profile.language)
        if identifier is None:
            raise EngineError(f"eSpeak NG has no language {profile.language!r}.")
        voice_name = f"{identifier}+{self._variant(profile.variant)}"
        if self._lib.espeak_SetVoiceByName(voice_name.encode()) != _EE_OK:
            raise EngineError(f"eSpeak NG could not select the voice {voice_name!r}.")
        # Set every parameter each time: eSpeak keeps them between calls.
        for parameter, value in (
            (_RATE, prosody.rate),
            (_VOLUME, _ESPEAK_VOLUME),
            (_PITCH, prosody.pitch),
            (_RANGE, prosody.pitch_range),
            (_WORDGAP, prosody.word_gap),
        ):
            if self._lib.espeak_SetParameter(parameter, value, 0) != _EE_OK:
                raise EngineError(f"eSpeak NG rejected parameter {parameter} = {value}.")
        # A NUL would end the C string early; no SSML or phoneme flags, so markup is read
        # as plain text.
        encoded = text.replace("\x00", " ").encode("utf-8") + b"\x00"
        self._chunks = []
        status = self._lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        if status == _EE_OK:
            status = self._lib.espeak_Synchronize()
        pcm, self._chunks = b"".join(self._chunks), []
        if status != _EE_OK:
            raise EngineError(f"eSpeak NG failed to synthesise the text (error {status}).")
        return pcm


_LOCK = threading.Lock()
_runtime: _Runtime | None = None


def _get_runtime() -> _Runtime:
    """Return the process's eSpeak runtime, starting it on first use; hold `_LOCK`."""
    global _runtime
    if _runtime is None:
        _runtime = _Runtime()
    return _runtime


def _normalise(pcm: bytes) -> bytes:
    """Scale native 16-bit samples to a common peak and return them little-endian."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    peak = int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
    if peak == 0:
        return samples.astype("<i2").tobytes()
    gain = min(_TARGET_PEAK / peak, _MAX_GAIN)
    scaled = np.clip(np.rint(samples * gain), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def _wav_bytes(pcm_le: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm_le)
    return buffer.getvalue()


class EspeakEngine(Engine):
    """Offline synthesis with eSpeak NG; robotic but instant, free and deterministic."""

    name = "espeak"

    def synthesize(
        self, text: str, voice: VoiceRef, params: SynthesisParams = DEFAULT_PARAMS
    ) -> SynthesisResult:
        """Speak `text` with `voice`; see the module docstring for how `params` apply."""
        text = require_text(text)
        profile = profile_for(voice)
        prosody = _prosody(profile, params)
        with _LOCK:
            runtime = _get_runtime()
            pcm = runtime.speak(text, profile, prosody)
            sample_rate, engine_label = runtime.sample_rate, runtime.engine_label
        if not pcm:
            raise EngineError("eSpeak NG produced no audio for this text.")
        samples = _normalise(pcm)
        frames = len(samples) // 2
        return SynthesisResult(
            wav=_wav_bytes(samples, sample_rate),
            sample_rate=sample_rate,
            duration_ms=round(frames * 1000 / sample_rate),
            engine=engine_label,
        )
