"""The 20 system voices, one entry each: what the library shows and the seed writes, and the
eSpeak profile the offline engine speaks it with (facts from the reference product)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dashboard.models import VoiceCategory as C


@dataclass(frozen=True, slots=True)
class EspeakProfile:
    """How eSpeak renders one voice: language voice, timbre and base prosody."""

    # espeakRATE's range in words per minute; the engine clamps adjusted rates to it too.
    RATE_MIN: ClassVar[int] = 80
    RATE_MAX: ClassVar[int] = 450

    language: str  # eSpeak language, e.g. "en-us", "en-gb-x-rp", "ru"
    variant: str  # stock variant in espeak-ng-data/voices/!v lending the timbre, e.g. "f3"
    pitch: int  # espeakPITCH 0–100; 50 is the variant's natural pitch
    rate: int  # espeakRATE, words per minute (80–450; 175 is eSpeak's normal)
    pitch_range: int  # espeakRANGE 0–100; 0 is monotone, 50 normal
    word_gap: int = 0  # espeakWORDGAP, extra pause between words in 10 ms units

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 100 or not 0 <= self.pitch_range <= 100:
            raise ValueError("pitch and pitch_range must be between 0 and 100")
        if not self.RATE_MIN <= self.rate <= self.RATE_MAX:
            raise ValueError(f"rate must be between {self.RATE_MIN} and {self.RATE_MAX} wpm")
        if self.word_gap < 0:
            raise ValueError("word_gap cannot be negative")


@dataclass(frozen=True, slots=True)
class SystemVoice:
    """One system voice: its library facts and how the offline engine speaks it."""

    name: str
    category: C
    language: str  # BCP 47, as the library shows it
    description: str
    espeak: EspeakProfile


# The bundled eSpeak data has no Indian or Australian English. Anaya uses Received
# Pronunciation (the norm formal Indian English is taught against); Meera uses the
# Caribbean voice, whose dental "th" stops and evener syllable timing are the nearest
# bundled match to Indian English rhythm; Chloe (en-AU) uses British English, which
# shares Australian's non-rhotic vowels. Every variant is different: distinct timbres,
# not just different prosody on the same one.
SYSTEM_VOICES: tuple[SystemVoice, ...] = (
    SystemVoice(
        "Aaron",
        C.AUDIOBOOK,
        "en-US",
        "Soothing and calm, like a self-help audiobook narrator",
        # Low, unhurried, gently contoured.
        EspeakProfile("en-us", "m3", pitch=42, rate=150, pitch_range=38),
    ),
    SystemVoice(
        "Abigail",
        C.CONVERSATIONAL,
        "en-GB",
        "Friendly and conversational with a warm, approachable tone",
        # Warm, approachable British conversation.
        EspeakProfile("en-gb", "f4", pitch=56, rate=172, pitch_range=62),
    ),
    SystemVoice(
        "Anaya",
        C.CUSTOMER_SERVICE,
        "en-IN",
        "Polite and professional, patient with every kind of caller",
        # Received Pronunciation stands in for Indian English.
        EspeakProfile("en-gb-x-rp", "steph", pitch=54, rate=165, pitch_range=45),
    ),
    SystemVoice(
        "Andy",
        C.GENERAL,
        "en-US",
        "Versatile and clear, an even delivery that suits almost any script",
        # eSpeak's neutral defaults on a plain male timbre.
        EspeakProfile("en-us", "m6", pitch=50, rate=175, pitch_range=50),
    ),
    SystemVoice(
        "Archer",
        C.NARRATIVE,
        "en-US",
        "Laid-back storytelling with an unhurried, easy rhythm",
        # Relaxed pace, low but lively contour.
        EspeakProfile("en-us", "m7", pitch=44, rate=150, pitch_range=58),
    ),
    SystemVoice(
        "Brian",
        C.CUSTOMER_SERVICE,
        "en-US",
        "Professional and helpful, confident without sounding scripted",
        # Measured, businesslike contour.
        EspeakProfile("en-us", "john", pitch=48, rate=172, pitch_range=44),
    ),
    SystemVoice(
        "Chloe",
        C.CORPORATE,
        "en-AU",
        "Bright and bubbly, bringing energy to company updates and explainers",
        # High, quick, wide; British English stands in for Australian.
        EspeakProfile("en-gb", "Andrea", pitch=58, rate=188, pitch_range=76),
    ),
    SystemVoice(
        "Dylan",
        C.GENERAL,
        "en-US",
        "Thoughtful and intimate, as if speaking to one listener",
        # Soft timbre, slow, narrow.
        EspeakProfile("en-us", "victor", pitch=44, rate=155, pitch_range=36),
    ),
    SystemVoice(
        "Emmanuel",
        C.CHARACTERS,
        "en-US",
        "Quirky and distinctive, made for memorable characters",
        # New York vowels, bouncy and very wide.
        EspeakProfile("en-us-nyc", "Jacky", pitch=60, rate=185, pitch_range=85),
    ),
    SystemVoice(
        "Ethan",
        C.VOICEOVER,
        "en-US",
        "Polished and warm, a classic voiceover finish",
        # Polished, warm voice-over.
        EspeakProfile("en-us", "Michael", pitch=46, rate=165, pitch_range=55),
    ),
    SystemVoice(
        "Evelyn",
        C.CONVERSATIONAL,
        "en-US",
        "Southern charm with a gentle, welcoming drawl",
        # Unhurried and melodic.
        EspeakProfile("en-us", "f3", pitch=54, rate=148, pitch_range=72, word_gap=1),
    ),
    SystemVoice(
        "Gavin",
        C.MEDITATION,
        "en-US",
        "Calm and reassuring, slow enough to breathe along with",
        # Deep, slow, almost level, small pauses.
        EspeakProfile("en-us", "m4", pitch=36, rate=138, pitch_range=26, word_gap=1),
    ),
    SystemVoice(
        "Gordon",
        C.MOTIVATIONAL,
        "en-US",
        "Warm and encouraging, like a coach who believes in you",
        # Upbeat pace and lift.
        EspeakProfile("en-us", "robert", pitch=52, rate=182, pitch_range=68),
    ),
    SystemVoice(
        "Ivan",
        C.CHARACTERS,
        "ru-RU",
        "Deep and cinematic Russian voice with a commanding presence",
        # Very low, deliberate.
        EspeakProfile("ru", "Storm", pitch=22, rate=150, pitch_range=45),
    ),
    SystemVoice(
        "Laura",
        C.CONVERSATIONAL,
        "en-US",
        "Authentic Midwestern, friendly and down to earth",
        # General American, even and friendly.
        EspeakProfile("en-us", "f2", pitch=52, rate=170, pitch_range=50),
    ),
    SystemVoice(
        "Lucy",
        C.CUSTOMER_SERVICE,
        "en-US",
        "Direct and composed, gets to the point and stays calm",
        # Steady pace, restrained contour.
        EspeakProfile("en-us", "f1", pitch=50, rate=175, pitch_range=32),
    ),
    SystemVoice(
        "Madison",
        C.PODCAST,
        "en-US",
        "Energetic and chatty, a natural podcast host",
        # Fast and wide.
        EspeakProfile("en-us", "Annie", pitch=60, rate=215, pitch_range=80),
    ),
    SystemVoice(
        "Marisol",
        C.ADVERTISING,
        "en-US",
        "Confident and persuasive, made for ads that convert",
        # Confident, persuasive advertising read.
        EspeakProfile("en-us", "belinda", pitch=54, rate=180, pitch_range=64),
    ),
    SystemVoice(
        "Meera",
        C.CUSTOMER_SERVICE,
        "en-IN",
        "Friendly and helpful, clear and reassuring on support lines",
        # Caribbean English stands in for Indian English.
        EspeakProfile("en-029", "f5", pitch=56, rate=170, pitch_range=58),
    ),
    SystemVoice(
        "Walter",
        C.NARRATIVE,
        "en-US",
        "Old and raspy, the wise voice of someone who has seen it all",
        # Low, slow, narrow.
        EspeakProfile("en-us", "grandpa", pitch=30, rate=135, pitch_range=38),
    ),
)

_BY_NAME: dict[str, SystemVoice] = {voice.name: voice for voice in SYSTEM_VOICES}


def system_voice(name: str) -> SystemVoice | None:
    """Return the catalogue entry called exactly `name`, or None (a name it doesn't hold)."""
    return _BY_NAME.get(name)
