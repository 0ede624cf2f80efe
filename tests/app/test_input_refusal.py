"""Text no page or database can hold is refused where it enters (dashboard.edge, forms).

The reproductions of the hardening issue (a NUL answered 500 on PostgreSQL): each now
answers 4xx with the message, writes nothing, and the page still renders — on SQLite
and on PostgreSQL as the web role. The property-based sweep over every route is
tests/app/test_input_fuzz.py.
"""

from __future__ import annotations

import html
import importlib
import io
import pkgutil
import re

import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import Field, FieldList, FormField, HiddenField, SelectField, StringField
from wtforms import Form as PlainForm
from wtforms.fields import SelectChoice
from wtforms.form import BaseForm
from wtforms.validators import ValidationError

import dashboard
from dashboard.auth.passwords import hash_password
from dashboard.edge import args_refusal, field_refusal, first_unholdable, scrub
from dashboard.extensions import db
from dashboard.forms import Form
from dashboard.models import MemberRole
from dashboard.tenancy.operator import operator_access
from tests import factories
from tests.databases import web_role
from tests.http import login, post_multipart
from tests.stored import changes, stored_state

PASSWORD = "correct horse battery"
NUL = "\x00"


@pytest.fixture
def owner(app):
    """Acme's owner (with a real password) and a system voice; returns the user, detached."""
    with app.app_context(), operator_access("test setup"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        user = factories.make_user(
            email="owner@acme.example", password_hash=hash_password(PASSWORD)
        )
        factories.make_membership(user, acme, MemberRole.OWNER)
        factories.make_voice(None, name="Aaron")
        db.session.commit()
        return factories.detach(user)


def page(response) -> str:
    """The body as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def field_error(response, name: str) -> str:
    match = re.search(rf'id="{name}-error"[^>]*>(.*?)</small>', page(response), re.S)
    assert match, f"no inline error for {name}: {page(response)[:2000]}"
    return match.group(1).strip()


# ------------------------------------------------------------------------ the rule

REFUSED = {
    "NUL": "\x00",
    "SOH": "\x01",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "unit separator": "\x1f",
    "DEL": "\x7f",
    "C1 PAD": "\x80",
    "C1 NEL": "\x85",
    "C1 APC": "\x9f",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
    "U+FDD0": "\ufdd0",
    "U+FDEF": "\ufdef",
    "U+FFFE": "\ufffe",
    "U+FFFF": "\uffff",
    "U+1FFFE": "\U0001fffe",
    "U+10FFFF": "\U0010ffff",
}
HELD = {
    "tab": "\t",
    "line feed": "\n",
    "carriage return": "\r",
    "no-break space": "\xa0",
    "right-to-left override": "\u202e",
    "right-to-left isolate": "\u2067",
    "zero-width joiner": "\u200d",
    "replacement character": "\ufffd",
    "U+FDCF": "\ufdcf",
    "U+FFFD": "\ufffd",
    "private use": "\ue000",
    "emoji": "\U0001f600",
    "U+10FFFD": "\U0010fffd",
    "accents": "é",
}


@pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
def test_the_rule_refuses_controls_surrogates_and_noncharacters(char):
    assert first_unholdable(f"ok{char}ok") == char
    assert scrub(f"a{char}b") == "a\ufffdb"


@pytest.mark.parametrize("char", HELD.values(), ids=HELD.keys())
def test_the_rule_keeps_whitespace_bidi_private_use_and_the_rest(char):
    assert first_unholdable(f"ok{char}ok") is None


def test_messages_name_the_character_as_a_person_can_look_it_up():
    assert field_refusal("Name", NUL) == (
        "Name contains a NUL character (U+0000), which can't be saved; "
        "remove it (paste the text as plain text) and try again."
    )
    assert "a control character (U+001B)" in field_refusal("Name", "\x1b")
    assert "surrogate pair, U+D800)" in field_refusal("Name", "\ud800")
    assert "internal use (U+FFFE)" in field_refusal("Name", "\ufffe")
    assert args_refusal("q", NUL).startswith("The link's “q” value contains a NUL character")


# ------------------------------------------------------------------- the base form


def dashboard_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(dashboard.__path__, prefix="dashboard.")]


def all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


def test_every_form_under_dashboard_inherits_the_base_form():
    for name in dashboard_modules():
        importlib.import_module(name)
    forms = [c for c in all_subclasses(BaseForm) if c.__module__.startswith("dashboard.")]
    assert len(forms) >= 10, "the walk found too few forms to prove anything"
    strays = sorted(
        f"{c.__module__}.{c.__qualname__}"
        for c in forms
        if c is not Form and not issubclass(c, Form)
    )
    assert not strays, f"these forms don't inherit dashboard.forms.Form: {strays}"


class Entry(PlainForm):
    word = StringField()


class Probe(Form):
    """Every kind of field that carries text, each with a validator that must not run."""

    name = StringField("Name")
    choice = SelectField("Choice", choices=[SelectChoice("a", "A")], validate_choice=False)
    secret = HiddenField()
    words = FieldList(StringField("Word"), min_entries=1)
    entry = FormField(Entry)

    ran: list[str]

    def validate_name(self, field: Field) -> None:
        self.ran.append(field.name)
        raise ValidationError("the name validator ran")


def probe(app: Flask, **formdata: str) -> Probe:
    with app.test_request_context(method="POST"):
        form = Probe(formdata=MultiDict(formdata))
        form.ran = []
        form.validate()
        return form


@pytest.mark.parametrize(
    "field",
    ["name", "choice", "secret", "words-0", "entry-word"],
)
def test_every_text_carrying_field_is_refused_before_its_validators(app, field):
    form = probe(app, **{field: f"a{NUL}b"})
    top = field.split("-")[0]
    expected = [field_refusal(form[top].label.text, NUL)]
    if top == "words":
        expected = [field_refusal("Word", NUL)]  # the entry's label
    if top == "entry":
        expected = {"word": [field_refusal("Word", NUL)]}
    assert form.errors[top] == expected
    assert form.ran == ([] if top == "name" else ["name"])  # other fields still validate


def test_a_hidden_field_refusal_is_also_a_form_error(app):
    form = probe(app, secret=f"x{NUL}")
    assert form.form_errors == [field_refusal("Secret", NUL)]


def test_the_refused_value_is_shown_back_with_the_character_marked(app):
    form = probe(app, name=f"a{NUL}b\ud800c")
    assert form.name.data == "a\ufffdb\ufffdc"
    assert form.name._value() == "a\ufffdb\ufffdc"


def test_every_value_of_a_repeated_field_is_checked(app):
    with app.test_request_context(
        method="POST", data=MultiDict([("choice", "a"), ("choice", f"a{NUL}")])
    ):
        form = Probe()
        form.ran = []
        assert not form.validate()
        assert "choice" in form.errors


# ---------------------------------------------------- the reproductions

QUERY_CASES = [
    "/o/acme/voices/?q=%00",
    "/o/acme/history/?q=%00",
    "/o/acme/history/?voice=deleted:a%00b",
    "/o/acme/voices/?%00=x",
    "/o/acme/voices/?q=%01",
    "/o/acme/voices/?q=%C2%9B",  # U+009B, the C1 control sequence introducer
    "/o/acme/voices/?q=%EF%BF%BE",  # U+FFFE
    "/o/acme/analytics/?by=%00",
    "/o/acme/generate/?text=a%00b",
]


@web_role
@pytest.mark.parametrize("url", QUERY_CASES)
def test_query_parameters_with_unholdable_text_are_400_with_the_reason(app, client, owner, url):
    login(client, owner)
    before = stored_state(app)
    response = client.get(url)
    assert response.status_code == 400
    assert "which can't be used; remove it from the address" in page(response)
    assert changes(before, stored_state(app)) == {}
    assert client.get(url.partition("?")[0]).status_code == 200


@web_role
def test_anonymous_query_parameters_are_refused_too(client, owner):
    response = client.get("/login?next=/o/acme/%00")
    assert response.status_code == 400
    assert "The link's “next” value contains a NUL character" in page(response)


@web_role
@pytest.mark.parametrize(
    "url",
    [
        "/o/acme/voices/?q=a%09b",
        "/o/acme/voices/?q=%E2%80%AEabc",
        "/o/acme/history/?q=%F0%9F%98%80",
    ],
)
def test_whitespace_bidi_and_emoji_in_the_query_are_searched(client, owner, url):
    login(client, owner)
    assert client.get(url).status_code == 200


@web_role
@pytest.mark.parametrize(
    "url",
    ["/join/acme/a%00b", "/join/ac%00me/token", "/o/ac%00me/", "/static/css/a%00b.css"],
)
def test_path_parameters_with_unholdable_text_are_404(app, client, owner, url):
    login(client, owner)
    before = stored_state(app)
    assert client.get(url).status_code == 404
    assert client.post(url).status_code in {404, 405}
    assert changes(before, stored_state(app)) == {}


def assert_refused_inline(app, response, before, field: str, label: str, char: str = NUL):
    assert response.status_code == 422, page(response)[:2000]
    assert field_error(response, field) == field_refusal(label, char)
    assert char not in response.get_data(as_text=True)
    assert changes(before, stored_state(app)) == {}


@web_role
@pytest.mark.parametrize("char", [NUL, "\x1b", "\ufffe"], ids=["nul", "escape", "ufffe"])
def test_new_organisation_name_is_refused_inline(app, client, owner, char):
    login(client, owner)
    before = stored_state(app)
    response = client.post("/orgs/new", data={"name": f"a{char}b"})
    assert_refused_inline(app, response, before, "name", "Name", char)
    assert 'value="a\ufffdb"' in page(response)
    assert client.get("/orgs/new").status_code == 200


SIGNUP = {
    "display_name": "Ada",
    "email": "ada@example.com",
    "org_name": "Ada's Org",
    "password": PASSWORD,
    "confirm": PASSWORD,
}


@web_role
@pytest.mark.parametrize(
    ("field", "label"), [("display_name", "Your name"), ("org_name", "Organisation")]
)
def test_signup_names_are_refused_inline_without_an_account(app, client, owner, field, label):
    before = stored_state(app)
    response = client.post("/signup", data={**SIGNUP, field: f"Ada{NUL}"})
    assert_refused_inline(app, response, before, field, label)
    assert client.get("/signup").status_code == 200


@web_role
def test_login_email_is_refused_inline_without_an_account(app, client, owner):
    before = stored_state(app)
    response = client.post("/login", data={"email": f"owner@acme.example{NUL}", "password": "x"})
    assert_refused_inline(app, response, before, "email", "Email")


@web_role
def test_login_hidden_next_is_refused_as_a_form_error(app, client, owner):
    before = stored_state(app)
    data = {"email": "owner@acme.example", "password": PASSWORD, "next": f"/o/acme/{NUL}"}
    response = client.post("/login", data=data)
    assert response.status_code == 422
    assert field_refusal("Return address", NUL) in page(response)
    assert changes(before, stored_state(app)) == {}


@web_role
@pytest.mark.parametrize(("field", "label"), [("name", "Name"), ("description", "Description")])
def test_new_voice_name_and_description_are_refused_inline(app, client, owner, field, label):
    login(client, owner)
    wav, _ = factories.speech_sample()
    data = {
        "name": "Studio Host",
        "category": "PODCAST",
        "language": "en-GB",
        "description": "Bright",
        "consent": "y",
        field: f"Studio{NUL}Host",
        "audio": FileStorage(io.BytesIO(wav), filename="host.wav", content_type="audio/wav"),
    }
    before = stored_state(app)
    response = post_multipart(client, "/o/acme/voices/new", data)
    assert_refused_inline(app, response, before, field, label)
    assert client.get("/o/acme/voices/").status_code == 200


@web_role
@pytest.mark.parametrize("char", [NUL, "\x07"], ids=["nul", "bell"])
def test_generation_text_is_refused_inline(app, client, owner, char):
    login(client, owner)
    with app.app_context():
        voice = db.session.scalars(db.select(dashboard.models.Voice)).one()
    before = stored_state(app)
    response = client.post(
        "/o/acme/generate/", data={"text": f"Hello{char} world", "voice": str(voice.id)}
    )
    assert_refused_inline(app, response, before, "text", "Text", char)


@web_role
def test_invitation_email_is_refused_inline(app, client, owner):
    login(client, owner)
    before = stored_state(app)
    response = client.post(
        "/o/acme/members/invitations", data={"email": f"a{NUL}@b.example", "role": "member"}
    )
    assert_refused_inline(app, response, before, "email", "Email")
    assert client.get("/o/acme/members/").status_code == 200


# --------------------------------------------------------- what the fuzz found


def test_a_file_where_text_is_expected_is_refused_before_the_validators(app):
    with app.test_request_context(method="POST"):
        sent = FileStorage(io.BytesIO(b"RIFF"), filename="x.wav")
        form = Probe(formdata=MultiDict([("name", sent)]))
        form.ran = []
        assert not form.validate()
        assert form.errors["name"] == ["Name takes text, not a file; type it in and try again."]
        assert form.ran == [] and form.name.data is None


@web_role
def test_a_file_as_the_current_password_is_422_not_500(app, client, owner):
    """Found by the fuzz: the file object reached the password check (AttributeError)."""
    login(client, owner)
    before = stored_state(app)
    data = {
        "current": FileStorage(io.BytesIO(b"RIFF...."), filename="x.wav"),
        "password": "another long password",
        "confirm": "another long password",
    }
    response = post_multipart(client, "/account/password", data)
    assert response.status_code == 422
    assert field_error(response, "current") == (
        "Current password takes text, not a file; type it in and try again."
    )
    assert changes(before, stored_state(app)) == {}


@web_role
@pytest.mark.parametrize("field", ["q", "voice", "from"])
@pytest.mark.parametrize("action", ["download", "delete"])
def test_bulk_action_filters_with_a_nul_are_400_not_500(app, client, owner, field, action):
    """Found by the fuzz: the bulk form's hidden filters reached ILIKE (DataError on PG)."""
    login(client, owner)
    before = stored_state(app)
    value = "deleted:a\x00b" if field == "voice" else "a\x00b"
    data = {"action": action, "all_matching": "y", "confirmed": "y", field: value}
    response = client.post("/o/acme/history/bulk", data=data)
    assert response.status_code == 400
    label = {"q": "Search", "voice": "Voice", "from": "From date"}[field]
    assert field_refusal(label, NUL) in page(response)
    assert changes(before, stored_state(app)) == {}


@web_role
@pytest.mark.parametrize("agent", ["a\x00b", "a\x01b", "a\x7fb"], ids=["nul", "soh", "del"])
def test_a_control_character_in_a_header_is_400_before_anything_is_written(
    app, client, owner, agent
):
    """Found while checking headers: a NUL in the User-Agent at login (stored with the
    session) answered 500 on PostgreSQL. HTTP forbids controls in header values."""
    before = stored_state(app)
    data = {"email": "owner@acme.example", "password": PASSWORD}
    response = client.post("/login", data=data, headers={"User-Agent": agent})
    assert response.status_code == 400
    assert "The request's “User-Agent” header contains" in page(response)
    assert changes(before, stored_state(app)) == {}


@web_role
@pytest.mark.parametrize("agent", ["Mozilla/5.0\t(X11)", "caf\xe9 \x85 browser"])
def test_tabs_and_latin_1_bytes_in_a_header_are_http_and_log_in(client, owner, agent):
    data = {"email": "owner@acme.example", "password": PASSWORD}
    assert client.post("/login", data=data, headers={"User-Agent": agent}).status_code == 303
