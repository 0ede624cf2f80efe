"""Member and invitation forms; Flask-WTF adds the CSRF token to each.

The role fields accept every role: whether the caller may grant it is a rule of
`services`, answered with a message rather than "Not a valid choice". Views narrow
the choices shown to what the caller may grant.
"""

from __future__ import annotations

from wtforms import EmailField, SelectField
from wtforms.fields import SelectChoice
from wtforms.validators import Email, InputRequired, Length

from dashboard.forms import Form
from dashboard.models import MemberRole


def role_choices(roles: list[MemberRole] | None = None) -> list[SelectChoice]:
    """Return select options for `roles` (all roles by default)."""
    return [SelectChoice(role.value, role.value.capitalize()) for role in roles or MemberRole]


def strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class InviteForm(Form):
    email = EmailField(
        "Email",
        filters=[strip],  # pasted addresses often carry spaces
        validators=[
            InputRequired(),
            Email(check_deliverability=False, message="Enter an email address."),
            Length(max=254),
        ],
    )
    role = SelectField("Role", choices=role_choices(), default=MemberRole.MEMBER.value)

    @property
    def chosen_role(self) -> MemberRole:
        return MemberRole(self.role.data)


class RoleForm(Form):
    role = SelectField("Role", choices=role_choices())

    @property
    def chosen_role(self) -> MemberRole:
        return MemberRole(self.role.data)


class ConfirmForm(Form):
    """A button that confirms an action (remove, leave, revoke, join): only the CSRF token."""
