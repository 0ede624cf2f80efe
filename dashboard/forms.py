"""The base of every form: text no page or database can hold is refused first.

Flask-WTF adds and checks the CSRF token. On top of that, `Form.validate` looks at
what the client sent for each field (every value of it: selects, repeated fields,
hidden fields, the entries of a FieldList and the fields of a FormField) and refuses
a field holding a character `dashboard.edge` calls unholdable before any of that
field's validators runs, so no validator, service or query ever sees one. The
error is the field's own, inline; a hidden field's also goes to the form's errors,
since nobody sees the field. The value is shown back with the character marked
(U+FFFD), because a page can't even encode some of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, FieldList, FormField

from dashboard.edge import field_refusal, first_unholdable, scrub


def leaves(field: Field) -> Iterator[Field]:
    """Yield the fields that hold what the client sent: entries and subfields, not lists."""
    if isinstance(field, FieldList):
        for entry in field.entries:
            yield from leaves(entry)
    elif isinstance(field, FormField):
        for subfield in field.form:
            yield from leaves(subfield)
    else:
        yield field


def first_unholdable_in(field: Field) -> str | None:
    """Return the first unholdable character the client sent for `field`, or None.

    Every value counts (a repeated field sends several); files are not text.
    """
    texts = (v for leaf in leaves(field) for v in leaf.raw_data or () if isinstance(v, str))
    return next((c for text in texts if (c := first_unholdable(text))), None)


def _refuse(field: Field) -> str | None:
    """Give each part of `field` holding an unholdable character its error; return one.

    The value is shown back with the character marked, as a page can't hold it.
    """
    message = None
    for leaf in leaves(field):
        if char := first_unholdable_in(leaf):
            message = field_refusal(leaf.label.text or leaf.name, char)
            leaf.errors = [message]
            if isinstance(leaf.data, str):
                leaf.data = scrub(leaf.data)
            leaf.raw_data = [scrub(v) if isinstance(v, str) else v for v in leaf.raw_data]
    if message and isinstance(field, FieldList):
        field.errors = [message]
    return message


class Form(FlaskForm):
    """A Flask-WTF form that refuses unholdable characters in any field, before validating."""

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        refused = {name for name, field in self._fields.items() if first_unholdable_in(field)}
        if not refused:
            return super().validate(extra_validators)
        valid = True
        for name, field in self._fields.items():
            if name in refused:
                message = _refuse(field)
                if getattr(field.widget, "input_type", None) == "hidden":
                    self.form_errors.append(message)  # nobody sees the field's own error
                valid = False
                continue
            # The other fields are validated as wtforms.Form.validate would: the given
            # extra validators, then the form's `validate_<name>` method.
            extra = list((extra_validators or {}).get(name, ()))
            if (inline := getattr(type(self), f"validate_{name}", None)) is not None:
                extra.append(inline)
            valid = field.validate(self, extra) and valid
        return valid
