"""The base of every form: text no page or database can hold is refused first.

Flask-WTF adds and checks the CSRF token. On top of that, `Form.validate` looks at
what the client sent for each field (every value of it: selects, repeated fields,
hidden fields, the entries of a FieldList and the fields of a FormField) and refuses
a field holding a character `dashboard.edge` calls unholdable, or a file where text
is expected, before any of that field's validators runs, so no validator, service
or query ever sees one. The error is the field's own, inline; a hidden field's also
goes to the form's errors, since nobody sees the field. The value is shown back with
the character marked (U+FFFD), because a page can't even encode some of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from flask_wtf import FlaskForm
from werkzeug.datastructures import FileStorage
from wtforms import Field, FieldList, FileField, FormField

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


def leaf_problem(leaf: Field) -> str | None:
    """Return why what the client sent for `leaf` can't be used at all, or None.

    A text field that received a file part (Flask-WTF reads files and text under one
    name) would hand a file object to code expecting a string.
    """
    label = leaf.label.text or leaf.name
    if char := first_unholdable_in(leaf):
        return field_refusal(label, char)
    if not isinstance(leaf, FileField) and any(not isinstance(v, str) for v in leaf.raw_data or ()):
        return f"{label} takes text, not a file; type it in and try again."
    return None


def _refuse(field: Field) -> str | None:
    """Give each part of `field` that can't be used its error; return one of them.

    The value is shown back without what couldn't be used: unholdable characters are
    marked (U+FFFD), as a page can't hold them, and a file becomes nothing.
    """
    message = None
    for leaf in leaves(field):
        if problem := leaf_problem(leaf):
            leaf.errors, message = [problem], problem
            leaf.raw_data = [scrub(v) for v in leaf.raw_data if isinstance(v, str)]
            if isinstance(leaf.data, str):
                leaf.data = scrub(leaf.data)
            elif isinstance(leaf.data, FileStorage):
                leaf.data = None
    if message and isinstance(field, FieldList):
        field.errors = [message]
    return message


class Form(FlaskForm):
    """A Flask-WTF form that refuses what no field can use, before any validator runs."""

    # The first such refusal's message, for views that answer with one sentence (400).
    refusal: str | None = None

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        refused = {
            name
            for name, field in self._fields.items()
            if any(leaf_problem(leaf) for leaf in leaves(field))
        }
        if not refused:
            return super().validate(extra_validators)
        valid = True
        for name, field in self._fields.items():
            if name in refused:
                message = _refuse(field)
                self.refusal = self.refusal or message
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


def form_status(form: FlaskForm) -> int:
    """Return the status a form page answers with: 422 when what was sent has errors."""
    return 422 if form.errors else 200
