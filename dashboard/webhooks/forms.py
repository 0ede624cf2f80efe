"""The endpoint form of the webhooks page; Flask-WTF adds the CSRF token.

The form checks a URL is given, the lengths and at least one known event, and asks
`services.check_url` (the rule deliveries apply: scheme, host, no credentials) so every
error shows at once; `create_endpoint` applies the same rule again, and the view shows
a refusal from it on its field too.
"""

from __future__ import annotations

from wtforms import SelectMultipleField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import URLInput

from dashboard.forms import Form
from dashboard.models import WebhookEventType
from dashboard.models.webhooks import DESCRIPTION_MAX, URL_MAX
from dashboard.webhooks import services


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def event_choices() -> list[SelectChoice]:
    """Return the event types as checkbox options (value, what it means), in the enum's order."""
    return [SelectChoice(event.value, event.label) for event in WebhookEventType]


class EndpointForm(Form):
    url = StringField(
        "Endpoint URL",
        filters=[strip],
        widget=URLInput(),
        validators=[
            DataRequired("Enter the URL Voxboard should POST events to."),
            Length(max=URL_MAX, message=f"Keep the URL to {URL_MAX:,} characters or fewer."),
        ],
    )
    description = StringField(
        "Description",
        filters=[strip],
        validators=[
            Length(
                max=DESCRIPTION_MAX,
                message=f"Keep the description to {DESCRIPTION_MAX} characters or fewer.",
            )
        ],
    )
    event_types = SelectMultipleField("Events", choices=event_choices())

    def validate_url(self, field: StringField) -> None:
        try:
            services.check_url(field.data or "")
        except services.EndpointError as error:
            raise ValidationError(error.message) from None

    def validate_event_types(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError("Choose at least one event to send.")

    @property
    def chosen_events(self) -> list[str]:
        return list(self.event_types.data or ())
