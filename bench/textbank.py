"""Realistic text-to-speech prompts, names and descriptions from a seeded word bank.

Texts are what people send a speech engine: narration, announcements, ads, support
lines, podcast intros. Sentences are assembled from templates and word lists, then
texts are cut from runs of sentences to a target length at a word boundary. Texts are
one line, as people type them into the form; a few words carry accents and curly
quotes, so character counts are of characters, not bytes.
"""

from __future__ import annotations

import random
import re

PLACES = [
    "the harbour",
    "the old mill",
    "Riverside Park",
    "the city library",
    "the night market",
    "the mountain pass",
    "the lighthouse",
    "the train station",
    "the museum of flight",
    "the corner café",
    "the north terminal",
    "the community garden",
    "Lisbon",
    "Kyoto",
    "the valley",
    "the west wing",
    "the reading room",
    "the bakery on Elm Street",
    "the festival grounds",
    "the observatory",
    "the ferry dock",
    "the science centre",
]
PEOPLE = [
    "our listeners",
    "the captain",
    "Dr. Okafor",
    "the new manager",
    "every customer",
    "the night nurse",
    "Grandma Rosa",
    "the quiet student",
    "our founder",
    "the detective",
    "the choir",
    "the engineers",
    "a young fox",
    "the old sailor",
    "Mrs. Lindqvist",
    "the pilot",
    "the gardener",
    "our support team",
    "the narrator",
    "the twins",
]
THINGS = [
    "the quarterly report",
    "a recipe for lemon bread",
    "the winter schedule",
    "a handwritten letter",
    "the new mobile app",
    "a box of old photographs",
    "the membership card",
    "a weather warning",
    "the refund policy",
    "a silver key",
    "the safety briefing",
    "an unfinished map",
    "the spring catalogue",
    "a cup of tea",
    "the evening news",
    "a brass compass",
    "the loyalty programme",
    "a lost umbrella",
    "the premium plan",
    "a jar of honey",
    "the user guide",
    "a paper lantern",
]
VERBS = [
    "discovered",
    "explained",
    "remembered",
    "announced",
    "carried",
    "described",
    "opened",
    "followed",
    "questioned",
    "celebrated",
    "delivered",
    "reviewed",
    "repaired",
    "imagined",
    "recorded",
    "shared",
    "noticed",
    "protected",
]
ADJECTIVES = [
    "quiet",
    "golden",
    "sudden",
    "gentle",
    "bright",
    "curious",
    "ancient",
    "busy",
    "hidden",
    "friendly",
    "remarkable",
    "foggy",
    "careful",
    "warm",
    "distant",
    "simple",
    "crisp",
    "patient",
    "vivid",
    "restless",
    "naïve",
    "steady",
]
TIMES = [
    "this morning",
    "last winter",
    "every Tuesday",
    "before sunrise",
    "after the storm",
    "in the spring of 1987",
    "at midnight",
    "later today",
    "over the weekend",
    "during the holidays",
    "at nine o’clock",
    "tomorrow afternoon",
    "once a year",
]
TEMPLATES = [
    "{person_c} {verb} {thing} near {place} {time}.",
    "Welcome back to {place}, where {person} {verb} {thing}.",
    "{time_c}, {person} {verb} {thing} and nobody said a word.",
    "Thank you for calling. Your call about {thing} is important to us.",
    "Please have {thing} ready before you reach {place}.",
    "In today’s episode, {person} {verb} {thing} at {place}.",
    "The {adj} light over {place} made everything feel {adj2}.",
    "Did you know that {person} {verb} {thing} {time}?",
    "Take a deep breath, and imagine {place}, {adj} and {adj2}.",
    "Introducing {thing}: {adj}, {adj2} and ready when you are.",
    "Chapter {number}. {person_c} {verb} {thing} {time}.",
    "For your safety, please keep {thing} with you at {place}.",
    "{person_c} smiled, because {thing} was exactly where it should be.",
    "Our offices near {place} are closed {time}; we will reply as soon as we can.",
    "It was a {adj} evening, and {person} still had {thing}.",
    "Step {number}: open {thing}, then follow the {adj} arrow to {place}.",
    "Save twenty percent on {thing} {time}, only at {place}.",
    "“Are you sure?” asked {person}, holding {thing}.",
    "The forecast for {place} is {adj}, with a {adj2} breeze {time}.",
    "You can change {thing} at any time in your account settings.",
]
FIRST_NAMES = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hiro",
    "Imani",
    "Jonas",
    "Keira",
    "Luca",
    "Maya",
    "Nikolai",
    "Olivia",
    "Pavel",
    "Quinn",
    "Rosa",
    "Samir",
    "Tessa",
    "Uma",
    "Victor",
    "Wren",
    "Xavier",
    "Yara",
    "Zoltan",
    "Amara",
    "Bjorn",
    "Camille",
    "Diego",
    "Esme",
    "Felix",
    "Ingrid",
    "Kofi",
    "Leila",
    "Mateo",
    "Noor",
    "Oskar",
    "Priya",
    "Rafael",
]
LAST_NAMES = [
    "Abbott",
    "Bianchi",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "García",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Valdez",
    "Weber",
    "Yilmaz",
    "Zhang",
]
VOICE_STYLES = [
    "Narrator",
    "Storyteller",
    "Announcer",
    "Host",
    "Guide",
    "Coach",
    "Anchor",
    "Reader",
    "Presenter",
    "Companion",
    "Voice",
    "Teller",
    "Concierge",
    "Mentor",
    "Commentator",
]
VOICE_TRAITS = [
    "warm",
    "calm",
    "bright",
    "deep",
    "gravelly",
    "crisp",
    "breathy",
    "smooth",
    "lively",
    "measured",
    "playful",
    "husky",
    "clear",
    "soft-spoken",
    "energetic",
    "velvety",
]
VOICE_USES = [
    "bedtime stories",
    "product tours",
    "meditation sessions",
    "news summaries",
    "support lines",
    "radio ads",
    "audiobook chapters",
    "museum guides",
    "game characters",
    "training videos",
    "podcast intros",
    "station announcements",
    "trailers",
]
ORG_WORDS = [
    "Acme",
    "Northwind",
    "Bluebird",
    "Lumen",
    "Harbor",
    "Cedar",
    "Summit",
    "Quill",
    "Echo",
    "Orbit",
    "Maple",
    "Atlas",
    "Beacon",
    "Coral",
    "Drift",
    "Ember",
    "Fable",
    "Granite",
]
ORG_KINDS = [
    "Studios",
    "Media",
    "Learning",
    "Health",
    "Games",
    "Audio",
    "Labs",
    "Press",
    "Radio",
    "Travel",
    "Bank",
    "Academy",
    "Podcasts",
    "Systems",
    "Publishing",
    "Support",
]
FAILURE_MESSAGES = [
    "The speech engine did not answer within 120 seconds.",
    "The speech engine refused the request: unsupported characters in the text.",
    "Audio storage is unavailable right now; the generation was not saved.",
    "The speech engine answered 503 Service Unavailable three times.",
    "eSpeak NG produced no audio for this text.",
]


# `TextBank.text` may stop up to this many characters short of the length asked for.
CUT_SLACK = 12


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class TextBank:
    """A seeded source of sentences, texts, names and descriptions."""

    def __init__(self, seed: int, sentences: int = 4000) -> None:
        self.rng = random.Random(seed)
        self.sentences = [self._sentence() for _ in range(sentences)]

    def _sentence(self) -> str:
        rng = self.rng
        person, time = rng.choice(PEOPLE), rng.choice(TIMES)
        adj, adj2 = rng.sample(ADJECTIVES, 2)
        return rng.choice(TEMPLATES).format(
            person=person,
            person_c=_capital(person),
            verb=rng.choice(VERBS),
            thing=rng.choice(THINGS),
            place=rng.choice(PLACES),
            time=time,
            time_c=_capital(time),
            adj=adj,
            adj2=adj2,
            number=rng.randint(1, 40),
        )

    def text(self, length: int, rng: random.Random | None = None) -> str:
        """Return a trimmed text of `length` characters or up to a dozen fewer (never more)."""
        rng = rng or self.rng
        pool = self.sentences
        parts: list[str] = []
        total = -1
        while total < length:
            sentence = pool[int(rng.random() * len(pool))]
            parts.append(sentence)
            total += len(sentence) + 1
        text = " ".join(parts)
        if len(text) > length:
            cut = text.rfind(" ", 0, length + 1)
            # Cut at a word boundary unless that would leave it shorter than asked for
            # by more than a word (then mid-word, as a pasted excerpt would be).
            text = text[: cut if cut >= length - CUT_SLACK else length]
        return text.strip()

    def person_name(self, index: int) -> str:
        """Return a display name; `index` makes it differ from its neighbours."""
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index // len(FIRST_NAMES) + index) % len(LAST_NAMES)]
        return f"{first} {last}"

    def org_name(self, index: int) -> str:
        """Return an organisation name (unique together with its slug's index)."""
        word = ORG_WORDS[index % len(ORG_WORDS)]
        kind = ORG_KINDS[(index // len(ORG_WORDS)) % len(ORG_KINDS)]
        return f"{word} {kind} {index}"

    def voice(self, index: int) -> tuple[str, str]:
        """Return a custom voice's (name, description); names are unique by `index`."""
        rng = self.rng
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        style = VOICE_STYLES[(index // len(FIRST_NAMES)) % len(VOICE_STYLES)]
        round_ = index // (len(FIRST_NAMES) * len(VOICE_STYLES))
        name = f"{first} the {style}" + (f" {round_ + 1}" if round_ else "")
        trait, trait2 = rng.sample(VOICE_TRAITS, 2)
        description = (
            f"A {trait}, {trait2} voice recorded in our own studio, made for "
            f"{rng.choice(VOICE_USES)} and {rng.choice(VOICE_USES)}."
        )
        return name, description


def slugify(text: str) -> str:
    """Return a URL slug for `text` (lower-case letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
