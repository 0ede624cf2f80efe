"""The offline eSpeak NG engine, exercised with real synthesis (no mocks)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import soundfile

from dashboard import PROJECT_ROOT
from dashboard.tts import (
    Engine,
    EngineError,
    EspeakEngine,
    SynthesisParams,
    SynthesisResult,
    VoiceRef,
    catalog,
    get_engine,
    sample_text,
)
from dashboard.tts.catalog import EspeakProfile
from dashboard.tts.espeak import derive_profile, profile_for, resolve_language

# The 20 system voices and their languages, as the product brief lists them.
SYSTEM_VOICES = {
    "Aaron": "en-US", "Abigail": "en-GB", "Anaya": "en-IN", "Andy": "en-US",
    "Archer": "en-US", "Brian": "en-US", "Chloe": "en-AU", "Dylan": "en-US",
    "Emmanuel": "en-US", "Ethan": "en-US", "Evelyn": "en-US", "Gavin": "en-US",
    "Gordon": "en-US", "Ivan": "ru-RU", "Laura": "en-US", "Lucy": "en-US",
    "Madison": "en-US", "Marisol": "en-US", "Meera": "en-IN", "Walter": "en-US",
}  # fmt: skip

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."  # 13 words


@pytest.fixture(scope="module")
def engine() -> Engine:
    return get_engine("espeak")


def system_voice(name: str) -> VoiceRef:
    return VoiceRef(name=name, language=SYSTEM_VOICES[name])


def decode(result: SynthesisResult) -> np.ndarray:
    samples, rate = soundfile.read(io.BytesIO(result.wav), dtype="float64")
    assert rate == result.sample_rate
    return samples


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples))))


def test_output_is_a_complete_mono_16_bit_wav(engine: Engine) -> None:
    result = engine.synthesize(SENTENCE, system_voice("Andy"))

    assert result.wav[:4] == b"RIFF" and result.wav[8:12] == b"WAVE"
    with wave.open(io.BytesIO(result.wav)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getcomptype() == "NONE"
        assert wav.getframerate() == result.sample_rate
        frames = wav.getnframes()
    info = soundfile.info(io.BytesIO(result.wav))
    assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
    assert info.frames == frames
    assert result.duration_ms == round(frames * 1000 / result.sample_rate)
    assert 1500 <= result.duration_ms <= 8000
    assert len(decode(result)) == frames
    assert result.engine.startswith("espeak-ng 1.")


def test_two_system_voices_sound_different(engine: Engine) -> None:
    abigail = engine.synthesize(SENTENCE, system_voice("Abigail"))
    walter = engine.synthesize(SENTENCE, system_voice("Walter"))

    assert abigail.wav != walter.wav
    assert abigail.duration_ms != walter.duration_ms  # Walter speaks more slowly


def test_every_system_voice_has_its_own_profile() -> None:
    assert {voice.name for voice in catalog.SYSTEM_VOICES} == set(SYSTEM_VOICES)
    profiles = [voice.espeak for voice in catalog.SYSTEM_VOICES]
    assert len(set(profiles)) == len(profiles)
    # Distinct timbres too, not just different prosody on the same one.
    assert len({profile.variant for profile in profiles}) == len(profiles)


@pytest.mark.parametrize("name", sorted(SYSTEM_VOICES))
def test_system_voice_profile_fits_its_language(name: str) -> None:
    profile = profile_for(system_voice(name))

    assert profile is catalog.system_voice(name).espeak
    assert resolve_language(profile.language) == profile.language  # bundled, not a fallback
    assert profile.language.split("-")[0] == SYSTEM_VOICES[name].split("-")[0]


def test_every_system_voice_speaks_its_sample(engine: Engine) -> None:
    durations = {}
    for name, language in SYSTEM_VOICES.items():
        result = engine.synthesize(sample_text(language), system_voice(name))
        assert rms(decode(result)) > 0.02, f"{name} is (nearly) silent"
        durations[name] = result.duration_ms
    assert all(5000 <= ms <= 14000 for ms in durations.values()), durations
    assert durations["Madison"] < durations["Gavin"]  # energetic vs calm


def test_ivan_reads_a_russian_sample(engine: Engine) -> None:
    text = sample_text("ru-RU")
    assert sum("\u0400" <= ch <= "\u04ff" for ch in text) > len(text) // 2
    assert profile_for(system_voice("Ivan")).language == "ru"

    result = engine.synthesize(text, system_voice("Ivan"))

    assert rms(decode(result)) > 0.02
    assert 5000 <= result.duration_ms <= 14000


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en-GB", "Hello"), ("en-IN", "Hello"), ("pt-BR", "Hello"), ("", "Hello"), ("de", "Hallo")],
)
def test_sample_text_falls_back_to_english(language: str, expected: str) -> None:
    assert sample_text(language).startswith(expected)


def test_same_input_gives_identical_bytes(engine: Engine) -> None:
    voice, params = system_voice("Evelyn"), SynthesisParams(temperature=1.3, top_p=0.6)
    first = engine.synthesize(SENTENCE, voice, params)
    # Other voices in between must not leave state behind in eSpeak.
    for name in ("Ivan", "Emmanuel", "Walter"):
        engine.synthesize(SENTENCE, system_voice(name), SynthesisParams(temperature=2.0))
    second = engine.synthesize(SENTENCE, voice, params)

    assert first == second


def test_repetition_penalty_changes_the_pace(engine: Engine) -> None:
    voice = system_voice("Brian")
    slow = engine.synthesize(SENTENCE, voice, SynthesisParams(repetition_penalty=1.0))
    fast = engine.synthesize(SENTENCE, voice, SynthesisParams(repetition_penalty=2.0))

    assert fast.duration_ms < slow.duration_ms * 0.8


def test_low_top_p_adds_pauses_and_temperature_changes_the_contour(engine: Engine) -> None:
    voice = system_voice("Laura")
    default = engine.synthesize(SENTENCE, voice)
    deliberate = engine.synthesize(SENTENCE, voice, SynthesisParams(top_p=0.2))
    flat = engine.synthesize(SENTENCE, voice, SynthesisParams(temperature=0.0))

    assert deliberate.duration_ms > default.duration_ms
    assert flat.wav != default.wav


def test_top_k_is_ignored(engine: Engine) -> None:
    voice = system_voice("Lucy")
    assert engine.synthesize(SENTENCE, voice, SynthesisParams(top_k=1)) == engine.synthesize(
        SENTENCE, voice, SynthesisParams(top_k=10000)
    )


@pytest.mark.parametrize(
    "field",
    [
        {"temperature": -0.1},
        {"temperature": 2.01},
        {"temperature": float("nan")},
        {"top_p": 1.5},
        {"top_p": -0.01},
        {"top_k": 0},
        {"top_k": 10001},
        {"top_k": 5.5},
        {"repetition_penalty": 0.99},
        {"repetition_penalty": 2.5},
        {"temperature": "hot"},
    ],
)
def test_out_of_range_params_raise_value_error(field: dict[str, Any]) -> None:
    name = next(iter(field))
    with pytest.raises(ValueError, match=name):
        SynthesisParams(**field)


def test_boundary_params_are_accepted() -> None:
    SynthesisParams(temperature=0.0, top_p=0.0, top_k=1, repetition_penalty=1.0)
    SynthesisParams(temperature=2.0, top_p=1.0, top_k=10000, repetition_penalty=2.0)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_raises_engine_error(engine: Engine, text: str) -> None:
    with pytest.raises(EngineError, match="no text"):
        engine.synthesize(text, system_voice("Andy"))


def test_markup_is_spoken_as_text_not_obeyed(engine: Engine) -> None:
    # No SSML flag: a tag must not be able to switch voice or insert long breaks.
    result = engine.synthesize('<break time="30s"/> Hello [[h@loU]]', system_voice("Andy"))
    assert result.duration_ms < 10000


def test_concurrent_synthesis_matches_sequential(engine: Engine) -> None:
    jobs = [(name, f"Request {i} for {name}.") for i, name in enumerate(list(SYSTEM_VOICES)[:8])]
    sequential = [engine.synthesize(text, system_voice(name)).wav for name, text in jobs]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(
            pool.map(lambda job: engine.synthesize(job[1], system_voice(job[0])).wav, jobs * 2)
        )

    assert concurrent == sequential * 2


# Profiles of voices outside the system table. The values are fixed: a custom voice
# must sound the same after an upgrade or on another machine. Worked out by hand from
# SHA-256 of the name, e.g. "Aaron" starts 32 4a 17 d2: variant 0x32 % 20 = 10 (f1),
# pitch 35 + 0x4a % 31 = 47, rate 150 + 0x17 % 41 = 173, range 35 + 0xd2 % 36 = 65.
DERIVED = {
    ("Aaron", "de-DE"): EspeakProfile("de", "f1", pitch=47, rate=173, pitch_range=65),
    ("Nadia", "en-US"): EspeakProfile("en-us", "Andrea", pitch=49, rate=187, pitch_range=57),
    ("Noor", "en-US"): EspeakProfile("en-us", "f3", pitch=65, rate=170, pitch_range=50),
}
CUSTOM_AARON = VoiceRef(name="Aaron", language="de-DE", variant="CUSTOM", audio_key="voices/x")


@pytest.mark.parametrize(("name", "language"), list(DERIVED))
def test_derived_profiles_have_their_fixed_values(name: str, language: str) -> None:
    assert derive_profile(name, language) == DERIVED[(name, language)]


def test_custom_voice_profile_follows_its_language_not_the_system_table(engine: Engine) -> None:
    profile = profile_for(CUSTOM_AARON)

    assert profile == DERIVED[("Aaron", "de-DE")]
    assert profile != catalog.system_voice("Aaron").espeak  # a custom "Aaron" is not the system one
    result = engine.synthesize(sample_text("de-DE"), CUSTOM_AARON)
    assert rms(decode(result)) > 0.02


# Run in a fresh interpreter: the profile and the speech of a custom voice, as JSON.
_IN_A_FRESH_PROCESS = """
import dataclasses, hashlib, json
from dashboard.tts import VoiceRef, get_engine, sample_text
from dashboard.tts.espeak import profile_for
voice = VoiceRef(name="Aaron", language="de-DE", variant="CUSTOM", audio_key="voices/x")
wav = get_engine("espeak").synthesize(sample_text("de-DE"), voice).wav
print(json.dumps({"profile": dataclasses.asdict(profile_for(voice)),
                  "wav": hashlib.sha256(wav).hexdigest()}))
"""


def test_a_custom_voice_sounds_the_same_in_any_process(engine: Engine) -> None:
    """Nothing process-dependent (str hashing, set order, first use) shapes a voice."""
    wav = engine.synthesize(sample_text("de-DE"), CUSTOM_AARON).wav
    here = {
        "profile": dataclasses.asdict(profile_for(CUSTOM_AARON)),
        "wav": hashlib.sha256(wav).hexdigest(),
    }
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", _IN_A_FRESH_PROCESS],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(done.stdout) == here, f"PYTHONHASHSEED={seed}"
    assert here["profile"] == dataclasses.asdict(DERIVED[("Aaron", "de-DE")])


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en-US", "en-us"),
        ("en-GB", "en-gb"),
        ("en-IN", "en"),  # no Indian English bundled: the base subtag's voice
        ("ru-RU", "ru"),
        ("pt_BR", "pt-br"),
        ("fr-CA-x-quebec", "fr"),
        ("tlh", "en-us"),  # unknown language: American English
        ("", "en-us"),
    ],
)
def test_resolve_language_falls_back_by_subtag(tag: str, expected: str) -> None:
    assert resolve_language(tag) == expected


def test_get_engine_builds_espeak_and_rejects_unknown_names() -> None:
    assert isinstance(get_engine("espeak"), EspeakEngine)
    assert isinstance(get_engine(" ESPEAK "), EspeakEngine)
    with pytest.raises(EngineError, match="Unknown speech engine 'nope'.*espeak"):
        get_engine("nope")


def test_importing_the_package_does_not_load_espeak() -> None:
    code = (
        "import sys, dashboard.tts, dashboard.tts.espeak as e; "
        "maps = open('/proc/self/maps').read() if sys.platform == 'linux' else ''; "
        "assert e._runtime is None and 'libespeak-ng' not in maps; "
        "dashboard.tts.get_engine('espeak'); assert e._runtime is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
