"""The generation form: text, voice and the four sampling parameters (Flask-WTF, CSRF).

Each parameter is a text field parsed here rather than a WTForms FloatField, so every
refusal reads like the slider's label ("Creativity must be a number from 0 to 2")
instead of "Not a valid float value".
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from wtforms import Field, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from dashboard.forms import Form
from dashboard.models.generations import REPETITION_PENALTY, TEMPERATURE, TEXT_MAX, TOP_K, TOP_P
from dashboard.tts import SynthesisParams
from dashboard.voices.forms import normalise_text


@dataclass(frozen=True, slots=True)
class Parameter:
    """A sampling parameter as the page shows it: its slider's label, range and step."""

    name: str
    label: str
    hint: str
    low: float
    high: float
    step: float
    default: float
    integer: bool = False

    def describe(self) -> str:
        low, high = (f"{int(v):,}" if self.integer else f"{v:g}" for v in (self.low, self.high))
        kind = "a whole number" if self.integer else "a number"
        return f"{self.label} must be {kind} from {low} to {high}."

    def parse(self, raw: str | None) -> float | int:
        """Return the value in `raw` (blank: the default) or raise ValueError(describe())."""
        text = (raw or "").strip()
        if not text:
            return self.default
        try:
            value = float(text)
        except ValueError:
            raise ValueError(self.describe()) from None
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise ValueError(self.describe())
        if self.integer:
            if value != int(value):
                raise ValueError(self.describe())
            return int(value)
        return value


# Labels, ranges, steps and defaults of the reference product's sliders.
PARAMETERS = (
    Parameter(
        "temperature", "Creativity", "Higher is more expressive and varied.",
        *TEMPERATURE[:2], 0.1, TEMPERATURE[2],
    ),
    Parameter(
        "top_p", "Voice variety", "Lower keeps the delivery more focused.",
        *TOP_P[:2], 0.05, TOP_P[2],
    ),
    Parameter(
        "top_k", "Expression range", "How many options the model weighs at each step.",
        *TOP_K[:2], 100, TOP_K[2], integer=True,
    ),
    Parameter(
        "repetition_penalty", "Natural flow", "Higher avoids repeating sounds and pacing.",
        *REPETITION_PENALTY[:2], 0.1, REPETITION_PENALTY[2],
    ),
)  # fmt: skip
PARAMETER_BY_NAME = {p.name: p for p in PARAMETERS}


class ParameterField(StringField):
    """A sampling parameter; `parameter` knows its range, and the value is parsed."""

    def __init__(self, parameter: Parameter, **kwargs) -> None:
        super().__init__(parameter.label, default=_show(parameter.default), **kwargs)
        self.parameter = parameter
        self.value: float | int = parameter.default

    def pre_validate(self, form: Form) -> None:
        try:
            self.value = self.parameter.parse(self.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _show(value: float | int) -> str:
    return f"{value:g}"


class GenerateForm(Form):
    """Text to speak, the voice and the four parameters.

    A NUL or another character no database stores is refused by the base `Form`.
    """

    text = TextAreaField(
        "Text",
        filters=[normalise_text],
        validators=[
            DataRequired("Type the text you want to hear."),
            Length(
                max=TEXT_MAX,
                message=f"Keep the text to {TEXT_MAX:,} characters or fewer; "
                "split longer scripts into several generations.",
            ),
        ],
    )
    voice = StringField("Voice", filters=[lambda v: v.strip() if isinstance(v, str) else v])
    temperature = ParameterField(PARAMETER_BY_NAME["temperature"])
    top_p = ParameterField(PARAMETER_BY_NAME["top_p"])
    top_k = ParameterField(PARAMETER_BY_NAME["top_k"])
    repetition_penalty = ParameterField(PARAMETER_BY_NAME["repetition_penalty"])

    def validate_voice(self, field: Field) -> None:
        if not field.data:
            raise ValidationError("Choose a voice.")
        try:
            uuid.UUID(field.data)
        except ValueError:
            raise ValidationError("Choose a voice from the list.") from None

    @property
    def voice_id(self) -> uuid.UUID:
        """Return the chosen voice's id (only after validation)."""
        return uuid.UUID(self.voice.data)

    def params(self) -> SynthesisParams:
        """Return the validated parameters."""
        return SynthesisParams(
            temperature=float(self.temperature.value),
            top_p=float(self.top_p.value),
            top_k=int(self.top_k.value),
            repetition_penalty=float(self.repetition_penalty.value),
        )

    def parameter_fields(self) -> list[ParameterField]:
        """Return the parameter fields in the page's order."""
        return [getattr(self, p.name) for p in PARAMETERS]


def prefill_from_args(args: Mapping[str, str]) -> dict[str, str]:
    """Return form data from `?text=`, `?voice=` and parameter arguments (links, regenerate).

    Values are only shown, never trusted: the form validates them again on submit.
    """
    data: dict[str, str] = {}
    if text := args.get("text"):
        data["text"] = text[: TEXT_MAX * 2]
    if voice := args.get("voice"):
        data["voice"] = voice[:64]
    for parameter in PARAMETERS:
        raw = args.get(parameter.name)
        if raw is None:
            continue
        try:
            data[parameter.name] = _show(parameter.parse(raw))
        except ValueError:
            continue  # a bad link falls back to the default
    return data
