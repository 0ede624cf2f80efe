"""Account forms; Flask-WTF adds the CSRF token to each."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from dashboard.passwords import MAX_LENGTH, password_problem


def strong_password(_form: FlaskForm, field: PasswordField) -> None:
    if problem := password_problem(field.data or ""):
        raise ValidationError(problem)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=MAX_LENGTH)])
    next = HiddenField()


class SignupForm(FlaskForm):
    display_name = StringField("Your name", validators=[InputRequired(), Length(max=100)])
    email = EmailField(
        "Email",
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    org_name = StringField("Organisation", validators=[InputRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[InputRequired(), strong_password])
    confirm = PasswordField(
        "Repeat password", validators=[InputRequired(), EqualTo("password", "Passwords differ.")]
    )
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired()])
    password = PasswordField("New password", validators=[InputRequired(), strong_password])
    confirm = PasswordField(
        "Repeat new password",
        validators=[InputRequired(), EqualTo("password", "Passwords differ.")],
    )
