"""The system-voice catalogue: one entry per voice, each with the profile eSpeak speaks it with."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.models import VoiceCategory
from dashboard.tts import VoiceRef
from dashboard.tts.catalog import SYSTEM_VOICES, EspeakProfile, SystemVoice, system_voice
from dashboard.tts.espeak import derive_profile, profile_for, resolve_language


def test_the_catalogue_has_twenty_voices_with_unique_names() -> None:
    names = [voice.name for voice in SYSTEM_VOICES]

    assert len(names) == 20
    assert len(set(names)) == len(names)
    assert len({name.lower() for name in names}) == len(names)


@pytest.mark.parametrize("voice", SYSTEM_VOICES, ids=lambda voice: voice.name)
def test_every_entry_has_its_facts_and_an_espeak_profile(voice: SystemVoice) -> None:
    assert voice.name and voice.name == voice.name.strip()
    assert isinstance(voice.category, VoiceCategory)
    assert voice.language and voice.description
    assert isinstance(voice.espeak, EspeakProfile)
    assert resolve_language(voice.espeak.language) == voice.espeak.language  # bundled


@pytest.mark.parametrize("voice", SYSTEM_VOICES, ids=lambda voice: voice.name)
def test_the_engine_speaks_a_system_voice_with_its_entrys_profile(voice: SystemVoice) -> None:
    assert system_voice(voice.name) is voice
    assert profile_for(VoiceRef(name=voice.name, language=voice.language)) is voice.espeak


@pytest.mark.parametrize("name", ["Nobody", "aaron", "AARON", " Aaron", ""])
def test_a_name_the_catalogue_does_not_hold_gets_a_derived_profile(name: str) -> None:
    assert system_voice(name) is None
    ref = VoiceRef(name=name, language="en-GB")

    assert profile_for(ref) == derive_profile(name, "en-GB")


def test_a_custom_voice_named_like_a_system_voice_gets_a_derived_profile() -> None:
    ref = VoiceRef(name="Walter", language="en-US", variant="CUSTOM")

    assert profile_for(ref) == derive_profile("Walter", "en-US")
    assert profile_for(ref) != system_voice("Walter").espeak


@pytest.mark.parametrize(
    "values",
    [
        {"pitch": -1},
        {"pitch": 101},
        {"pitch_range": 101},
        {"rate": EspeakProfile.RATE_MIN - 1},
        {"rate": EspeakProfile.RATE_MAX + 1},
        {"word_gap": -1},
    ],
)
def test_espeak_profile_refuses_values_out_of_range(values: dict[str, Any]) -> None:
    base: dict[str, Any] = {"pitch": 50, "rate": 175, "pitch_range": 50}
    with pytest.raises(ValueError):
        EspeakProfile("en-us", "m1", **{**base, **values})
