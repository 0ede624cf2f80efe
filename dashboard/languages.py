"""Human names for BCP 47 language tags (CLDR data through Babel)."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError


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


def language_label(tag: str) -> str:
    """Return "English (United Kingdom)" for "en-GB"; unknown tags come back unchanged."""
    language, region = describe_language(tag)
    return f"{language} ({region})" if region else language
