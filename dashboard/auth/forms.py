"""Account forms; Flask-WTF adds the CSRF token to each."""

from __future__ import annotations

from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from dashboard.auth.passwords import MAX_LENGTH, password_problem
from dashboard.forms import Form


def strong_password(_form: Form, field: PasswordField) -> None:
    if problem := password_problem(field.data or ""):
        raise ValidationError(problem)


class LoginForm(Form):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=MAX_LENGTH)])
    next = HiddenField("Return address")


class SignupForm(Form):
    display_name = StringField("Your name", validators=[InputRequired(), Length(max=100)])
    email = EmailField(
        "Email",
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    org_name = StringField("Organisation", validators=[Length(max=100)])
    password = PasswordField("Password", validators=[InputRequired(), strong_password])
    confirm = PasswordField(
        "Repeat password", validators=[InputRequired(), EqualTo("password", "Passwords differ.")]
    )
    next = HiddenField("Return address")

    @property
    def joining(self) -> bool:
        """Tell whether the person signs up to accept an invitation (`next` is a join link)."""
        return (self.next.data or "").startswith("/join/")

    def validate_org_name(self, field: StringField) -> None:
        # Someone accepting an invitation joins that organisation; a first one of their
        # own is optional. Everyone else needs one to land in.
        if not (field.data or "").strip() and not self.joining:
            raise ValidationError("Name your organisation (you can create more later).")


class ChangePasswordForm(Form):
    current = PasswordField("Current password", validators=[InputRequired()])
    password = PasswordField("New password", validators=[InputRequired(), strong_password])
    confirm = PasswordField(
        "Repeat new password",
        validators=[InputRequired(), EqualTo("password", "Passwords differ.")],
    )
