"""History forms; Flask-WTF adds and checks the CSRF token of each."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

from wtforms import BooleanField, Field, HiddenField, SelectField
from wtforms.fields import SelectChoice

from dashboard.forms import Form
from dashboard.history.queries import HistoryFilters, Selection

# More ticked boxes than this is a job for "all generations matching these filters".
MAX_SELECTED = 5000
ACTIONS = (SelectChoice("download", "Download"), SelectChoice("delete", "Delete"))


class UUIDListField(Field):
    """Every value of a repeated field (`ids`) that is a UUID, in order, without repeats.

    A value that isn't one was never a checkbox of ours, so it is dropped, not refused;
    so is a file part sent under the name (Flask-WTF reads files and text together).
    """

    def process_formdata(self, valuelist: list[str]) -> None:
        found: dict[uuid.UUID, None] = {}
        for value in valuelist[: MAX_SELECTED * 2]:
            if not isinstance(value, str):
                continue
            try:
                found.setdefault(uuid.UUID(value), None)
            except ValueError:
                continue
        self.data = list(found)[:MAX_SELECTED]

    def _value(self) -> str:
        return ""


class DeleteGenerationForm(Form):
    """The confirmation button: only the CSRF token."""


class BulkForm(Form):
    """A bulk action on ticked generations, or on every generation matching the filters.

    The filters come as hidden fields named like the filter form's (`q`, `voice`,
    `status`, `from`, `to`); `upto` is when the page was shown (see `Selection`).
    `HistoryFilters.from_args` reads them; they are declared here so that what no
    database can hold is refused with the rest of the form (dashboard.forms).
    """

    action = SelectField(choices=list(ACTIONS), validate_choice=True)
    ids = UUIDListField()
    all_matching = BooleanField()
    confirmed = BooleanField()
    upto = HiddenField("Shown at")
    q = HiddenField("Search")
    voice = HiddenField("Voice")
    status = HiddenField("Status")
    date_from = HiddenField("From date", name="from")
    date_to = HiddenField("To date", name="to")

    def selection(self, args: Mapping[str, str]) -> Selection:
        """Return what the action applies to; `args` holds the hidden filter fields."""
        if not self.all_matching.data:
            return Selection(ids=tuple(self.ids.data or ()))
        return Selection(filters=HistoryFilters.from_args(args), upto=parse_upto(self.upto.data))


def parse_upto(value: str | None) -> dt.datetime | None:
    """Read the page's timestamp; one the page never wrote is ignored."""
    try:
        when = dt.datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else None
