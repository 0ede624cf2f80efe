"""Organisation forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, Length


class NewOrgForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=100)])
