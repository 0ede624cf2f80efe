"""Human names for BCP 47 language tags (CLDR data through Babel)."""

from __future__ import annotations

from functools import cache, lru_cache

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers

DEFAULT_LANGUAGE = "en-US"


@lru_cache(maxsize=1024)
def describe_language(tag: str) -> tuple[str, str | None]:
    """Return (language, region or None) in English: "en-GB" → ("English", "United Kingdom")."""
    try:
        locale = Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return tag, None
    language = locale.get_language_name("en") or tag
    region = locale.get_territory_name("en") if locale.territory else None
    return language, region


@lru_cache(maxsize=2048)
def language_label(tag: str) -> str:
    """Return "English (United Kingdom)" for "en-GB"; unknown tags come back unchanged.

    A script is named when the tag has one ("Serbian (Latin, Serbia)"), since the same
    language and region can be written in two scripts.
    """
    language, region = describe_language(tag)
    try:
        script = Locale.parse(tag, sep="-").get_script_name("en")
    except (UnknownLocaleError, ValueError, TypeError):
        script = None
    details = [d for d in (script, region) if d]
    return f"{language} ({', '.join(details)})" if details else language


@cache
def language_choices() -> tuple[tuple[str, str], ...]:
    """Return every language-region tag CLDR knows, as (tag, label), sorted by label.

    Only tags with a region (en-GB, pt-BR…) are offered: a voice has an accent. Script
    subtags are kept where CLDR has them (sr-Latn-RS and sr-Cyrl-RS differ).
    """
    tags = set()
    for identifier in locale_identifiers():
        locale = Locale.parse(identifier)
        if not locale.territory:
            continue
        parts = [locale.language, locale.script, locale.territory]
        tags.add("-".join(p for p in parts if p))
    return tuple(sorted(((t, language_label(t)) for t in tags), key=lambda c: (c[1], c[0])))


def is_known_language(tag: str) -> bool:
    """Tell whether `tag` is one of `language_choices()` (exact, case-sensitive form)."""
    return tag in {t for t, _ in language_choices()}
