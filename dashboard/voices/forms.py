"""Custom-voice forms; Flask-WTF adds the CSRF token to each.

The audio itself is checked by `reference_audio.check_reference_audio` (by decoding it), not
here: a form only knows whether a file was sent.
"""

from __future__ import annotations

from functools import cache

from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from dashboard.forms import Form
from dashboard.models import VoiceCategory
from dashboard.models.voices import DESCRIPTION_MAX, NAME_MAX
from dashboard.voices.languages import DEFAULT_LANGUAGE, language_choices
from dashboard.voices.services import CustomVoiceFields

CONSENT_MESSAGE = "Confirm that you have the right to use this voice."


def category_choices() -> list[SelectChoice]:
    """Return the twelve categories as select options, in the product's order."""
    return [SelectChoice(c.value, c.label) for c in VoiceCategory]


@cache
def _language_lookup() -> dict[str, str]:
    """Map every tag and every label, lower-cased, to its tag."""
    lookup: dict[str, str] = {}
    for tag, label in language_choices():
        lookup.setdefault(label.lower(), tag)
        lookup[tag.lower()] = tag
    return lookup


def resolve_language(text: str | None) -> str | None:
    """Return the tag `text` names: a tag in any case ("en-gb", "en_GB") or its label
    ("English (United Kingdom)"); None when it names none of `language_choices()`."""
    key = (text or "").strip().replace("_", "-").lower()
    return _language_lookup().get(key)


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def normalise_text(value: str | None) -> str | None:
    """Trim, and count a line break as one character (browsers send CRLF)."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


class VoiceForm(Form):
    """Fields shared by creating and editing a custom voice."""

    name = StringField(
        "Name",
        filters=[strip],
        validators=[
            DataRequired("Give the voice a name."),
            Length(max=NAME_MAX, message=f"Keep the name to {NAME_MAX} characters or fewer."),
        ],
    )
    category = SelectField(
        "Category", choices=category_choices(), default=VoiceCategory.GENERAL.value
    )
    language = StringField("Language", filters=[strip], default=DEFAULT_LANGUAGE)
    description = TextAreaField(
        "Description",
        filters=[normalise_text],
        validators=[
            Length(
                max=DESCRIPTION_MAX,
                message=f"Keep the description to {DESCRIPTION_MAX} characters or fewer.",
            )
        ],
    )
    audio = FileField("Reference audio")
    consent = BooleanField("I have the right to use this voice")

    def validate_language(self, field: StringField) -> None:
        tag = resolve_language(field.data)
        if tag is None:
            raise ValidationError(
                "Pick a language from the list, for example en-GB for English (United Kingdom)."
            )
        field.data = tag

    @property
    def has_audio(self) -> bool:
        """Tell whether a file (uploaded or recorded) came with the form."""
        return bool(self.audio.data)  # FileStorage is false when no file was chosen

    def values(self) -> CustomVoiceFields:
        """Return the validated fields as the services take them."""
        return CustomVoiceFields(
            name=self.name.data,
            description=self.description.data or None,
            category=VoiceCategory(self.category.data),
            language=self.language.data,
        )


class NewVoiceForm(VoiceForm):
    """Create a voice: the audio and the consent are required."""

    def validate_audio(self, field: FileField) -> None:
        if not self.has_audio:
            raise ValidationError("Choose an audio file or record one.")

    def validate_consent(self, field: BooleanField) -> None:
        if not field.data:
            raise ValidationError(CONSENT_MESSAGE)


class EditVoiceForm(VoiceForm):
    """Edit a voice: new audio is optional, and needs the consent only when it comes."""

    def validate_consent(self, field: BooleanField) -> None:
        if self.has_audio and not field.data:
            raise ValidationError(CONSENT_MESSAGE + " It applies to the new audio too.")


class DeleteVoiceForm(Form):
    """The confirmation button: only the CSRF token."""
