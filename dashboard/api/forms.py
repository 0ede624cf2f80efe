"""The new-key form of the API keys page; Flask-WTF adds the CSRF token.

An expiry is a day (the browser's date picker sends YYYY-MM-DD): the key works until
the end of that day in UTC (23:59:59.999999), so "expires on 1 May" never stops a
key on the evening of 30 April anywhere. Today is allowed; yesterday is not.
"""

from __future__ import annotations

import datetime as dt

from wtforms import SelectMultipleField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import DateInput

from dashboard.forms import Form
from dashboard.models import ApiScope, utcnow
from dashboard.models.api_keys import NAME_MAX

# The column is a 32-bit INTEGER on PostgreSQL.
MAX_MONTHLY_LIMIT = 2**31 - 1


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def scope_choices() -> list[SelectChoice]:
    """Return the scopes as checkbox options (value, what it allows), in ApiScope's order."""
    return [SelectChoice(scope.value, scope.label) for scope in ApiScope]


def end_of_day(day: dt.date) -> dt.datetime:
    """Return the last moment of `day` in UTC: when a key "expiring on `day`" stops."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


def parse_limit(text: str | None) -> int | None:
    """Read a monthly limit ("10,000" and "10 000" are 10000); None when left empty."""
    digits = (text or "").replace(",", "").replace(" ", "")
    if not digits:
        return None
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_MONTHLY_LIMIT:
        raise ValidationError(
            f"Enter a whole number of characters from 1 to {MAX_MONTHLY_LIMIT:,}, "
            "or leave it empty to use only the organisation's limit."
        )
    return int(digits)


def parse_expiry(text: str | None, today: dt.date) -> dt.datetime | None:
    """Read an expiry day (YYYY-MM-DD, from `today` on) as the end of that day, UTC."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError("Enter the date as YYYY-MM-DD, e.g. 2030-01-31.") from None
    if day < today:
        raise ValidationError(
            f"Choose a day from today ({today.isoformat()}, UTC) on: "
            "a key can't be created already expired."
        )
    return end_of_day(day)


class NewKeyForm(Form):
    name = StringField(
        "Name",
        filters=[strip],
        validators=[
            DataRequired("Give the key a name, e.g. the program that will use it."),
            Length(max=NAME_MAX, message=f"Keep the name to {NAME_MAX} characters or fewer."),
        ],
    )
    scopes = SelectMultipleField("Scopes", choices=scope_choices())
    monthly_character_limit = StringField("Monthly character limit", filters=[strip])
    expires_on = StringField("Expires on", filters=[strip], widget=DateInput())

    def validate_scopes(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError("Choose at least one scope: what may programs do with it?")

    def validate_monthly_character_limit(self, field: StringField) -> None:
        parse_limit(field.data)

    def validate_expires_on(self, field: StringField) -> None:
        parse_expiry(field.data, utcnow().date())

    @property
    def chosen_scopes(self) -> list[ApiScope]:
        return [ApiScope(value) for value in self.scopes.data or ()]

    @property
    def limit(self) -> int | None:
        """Return the validated monthly limit (None: only the organisation's limit)."""
        return parse_limit(self.monthly_character_limit.data)

    @property
    def expires_at(self) -> dt.datetime | None:
        """Return the end (UTC) of the chosen day, or None for a key that doesn't expire."""
        return parse_expiry(self.expires_on.data, utcnow().date())
