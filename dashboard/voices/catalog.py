"""The 20 system voices every organisation can use (facts from the reference product)."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.models import VoiceCategory as C


@dataclass(frozen=True, slots=True)
class SystemVoiceSpec:
    """What the seed knows about one system voice."""

    name: str
    category: C
    language: str
    description: str


SYSTEM_VOICES: tuple[SystemVoiceSpec, ...] = (
    SystemVoiceSpec(
        "Aaron", C.AUDIOBOOK, "en-US", "Soothing and calm, like a self-help audiobook narrator"
    ),
    SystemVoiceSpec(
        "Abigail",
        C.CONVERSATIONAL,
        "en-GB",
        "Friendly and conversational with a warm, approachable tone",
    ),
    SystemVoiceSpec(
        "Anaya",
        C.CUSTOMER_SERVICE,
        "en-IN",
        "Polite and professional, patient with every kind of caller",
    ),
    SystemVoiceSpec(
        "Andy",
        C.GENERAL,
        "en-US",
        "Versatile and clear, an even delivery that suits almost any script",
    ),
    SystemVoiceSpec(
        "Archer", C.NARRATIVE, "en-US", "Laid-back storytelling with an unhurried, easy rhythm"
    ),
    SystemVoiceSpec(
        "Brian",
        C.CUSTOMER_SERVICE,
        "en-US",
        "Professional and helpful, confident without sounding scripted",
    ),
    SystemVoiceSpec(
        "Chloe",
        C.CORPORATE,
        "en-AU",
        "Bright and bubbly, bringing energy to company updates and explainers",
    ),
    SystemVoiceSpec(
        "Dylan", C.GENERAL, "en-US", "Thoughtful and intimate, as if speaking to one listener"
    ),
    SystemVoiceSpec(
        "Emmanuel", C.CHARACTERS, "en-US", "Quirky and distinctive, made for memorable characters"
    ),
    SystemVoiceSpec("Ethan", C.VOICEOVER, "en-US", "Polished and warm, a classic voiceover finish"),
    SystemVoiceSpec(
        "Evelyn", C.CONVERSATIONAL, "en-US", "Southern charm with a gentle, welcoming drawl"
    ),
    SystemVoiceSpec(
        "Gavin", C.MEDITATION, "en-US", "Calm and reassuring, slow enough to breathe along with"
    ),
    SystemVoiceSpec(
        "Gordon", C.MOTIVATIONAL, "en-US", "Warm and encouraging, like a coach who believes in you"
    ),
    SystemVoiceSpec(
        "Ivan", C.CHARACTERS, "ru-RU", "Deep and cinematic Russian voice with a commanding presence"
    ),
    SystemVoiceSpec(
        "Laura", C.CONVERSATIONAL, "en-US", "Authentic Midwestern, friendly and down to earth"
    ),
    SystemVoiceSpec(
        "Lucy", C.CUSTOMER_SERVICE, "en-US", "Direct and composed, gets to the point and stays calm"
    ),
    SystemVoiceSpec("Madison", C.PODCAST, "en-US", "Energetic and chatty, a natural podcast host"),
    SystemVoiceSpec(
        "Marisol", C.ADVERTISING, "en-US", "Confident and persuasive, made for ads that convert"
    ),
    SystemVoiceSpec(
        "Meera",
        C.CUSTOMER_SERVICE,
        "en-IN",
        "Friendly and helpful, clear and reassuring on support lines",
    ),
    SystemVoiceSpec(
        "Walter",
        C.NARRATIVE,
        "en-US",
        "Old and raspy, the wise voice of someone who has seen it all",
    ),
)
