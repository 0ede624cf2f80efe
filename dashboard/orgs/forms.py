"""Organisation forms."""

from __future__ import annotations

from wtforms import StringField
from wtforms.validators import InputRequired, Length

from dashboard.forms import Form


class NewOrgForm(Form):
    name = StringField("Name", validators=[InputRequired(), Length(max=100)])
