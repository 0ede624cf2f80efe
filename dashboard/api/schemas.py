"""What the public API reads and writes, as marshmallow schemas (the OpenAPI document's source).

Names are snake_case, times ISO 8601 in UTC, ids UUIDs. Rules come from where the
dashboard keeps them: the text length and the four parameters' ranges from the
generation model and form (`PARAMETERS`), the categories from the model's enum.
Unknown fields are refused (422) rather than ignored, so a typo in a parameter's
name is not silently a default.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from dashboard import edge
from dashboard.api.representations import (  # noqa: F401  (the API's output schemas)
    GenerationSchema,
    VoiceSchema,
    audio_url_template,
    generation_json,
)
from dashboard.generations.forms import PARAMETERS, Parameter
from dashboard.history.queries import QUERY_MAX as HISTORY_QUERY_MAX
from dashboard.models import GenerationStatus, VoiceCategory
from dashboard.models.generations import TEXT_MAX
from dashboard.voices.forms import normalise_text
from dashboard.voices.queries import QUERY_MAX as LIBRARY_QUERY_MAX

LIMIT_MAX = 100
LIMIT_DEFAULT = 20


class Holdable(fields.String):
    """A string with no character a database can't store (`dashboard.edge`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if char := edge.first_unholdable(text):
            raise ma.ValidationError(
                f"Contains {edge.describe(char)}, which can't be saved; remove it and try again."
            )
        return text


class Strict(ma.Schema):
    """Refuse fields the schema doesn't know."""

    class Meta:
        unknown = ma.RAISE


def parameter_field(parameter: Parameter) -> fields.Field:
    """Return the field of one sampling parameter: its range and default from the form's."""
    bounds = validate.Range(min=parameter.low, max=parameter.high, error=parameter.describe())
    description = f"{parameter.label}: {parameter.hint} Default {parameter.default:g}."
    if parameter.integer:
        return fields.Integer(
            strict=True, load_default=parameter.default, validate=bounds,
            metadata={"description": description},
        )  # fmt: skip
    return fields.Float(
        allow_nan=False, load_default=parameter.default, validate=bounds,
        metadata={"description": description},
    )  # fmt: skip


# ------------------------------------------------------------------------- voices


class VoiceListQuery(Strict):
    q = Holdable(
        load_default="", validate=validate.Length(max=LIBRARY_QUERY_MAX),
        metadata={"description": "Words to find in the name or description."},
    )  # fmt: skip
    category = fields.Enum(VoiceCategory, by_value=True, load_default=None)
    language = fields.String(
        load_default=None, validate=validate.Length(min=2, max=35),
        metadata={"description": "Exact BCP 47 tag, e.g. en-GB."},
    )  # fmt: skip
    cursor = fields.String(
        load_default=None, metadata={"description": "`next_cursor` of the previous page."}
    )
    limit = fields.Integer(
        load_default=LIMIT_DEFAULT, validate=validate.Range(min=1, max=LIMIT_MAX)
    )


class VoicePage(ma.Schema):
    data = fields.List(fields.Nested(VoiceSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "null on the last page."}
    )


# -------------------------------------------------------------------- generations


class GenerationCreate(Strict):
    text = Holdable(
        required=True,
        validate=validate.Length(
            min=1, max=TEXT_MAX,
            error=f"Keep the text between 1 and {TEXT_MAX:,} characters (after trimming); "
            "split longer scripts into several generations.",
        ),
        metadata={"description": f"What to say: 1 to {TEXT_MAX:,} characters once trimmed."},
    )  # fmt: skip
    voice_id = fields.UUID(required=True)
    temperature = parameter_field(PARAMETERS[0])
    top_p = parameter_field(PARAMETERS[1])
    top_k = parameter_field(PARAMETERS[2])
    repetition_penalty = parameter_field(PARAMETERS[3])

    @ma.pre_load
    def _trim(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            return {**data, "text": normalise_text(data["text"])}
        return data


class GenerationListQuery(Strict):
    voice_id = fields.UUID(load_default=None)
    status = fields.Enum(GenerationStatus, by_value=True, load_default=None)
    from_ = fields.Date(
        data_key="from", load_default=None,
        metadata={"description": "First day (UTC) to include, YYYY-MM-DD."},
    )  # fmt: skip
    to = fields.Date(
        load_default=None, metadata={"description": "Last day (UTC) to include, YYYY-MM-DD."}
    )
    q = Holdable(
        load_default="", validate=validate.Length(max=HISTORY_QUERY_MAX),
        metadata={"description": "Text to find in the generations' text."},
    )  # fmt: skip
    cursor = fields.String(load_default=None)
    limit = fields.Integer(
        load_default=LIMIT_DEFAULT, validate=validate.Range(min=1, max=LIMIT_MAX)
    )

    @ma.validates_schema
    def _dates_in_order(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ma.ValidationError("`from` is after `to`; swap them.", "from")


class GenerationPage(ma.Schema):
    data = fields.List(fields.Nested(GenerationSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class IdempotencyHeader(ma.Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key", load_default=None, validate=validate.Length(min=1, max=255),
        metadata={"description": "Send the same key to retry safely; kept 24 hours."},
    )  # fmt: skip

    class Meta:
        unknown = ma.EXCLUDE  # every other header


# ------------------------------------------------------------------------- usage


class UsageFigures(ma.Schema):
    used = fields.Integer(required=True)
    limit = fields.Integer(allow_none=True, required=True)
    remaining = fields.Integer(allow_none=True, required=True)


class UsageSchema(ma.Schema):
    """This calendar month's characters (UTC) of the organisation and of the calling key."""

    organization = fields.Nested(UsageFigures, required=True)
    key = fields.Nested(UsageFigures, required=True)
    period_start = fields.DateTime(required=True)
    resets_at = fields.DateTime(required=True)
