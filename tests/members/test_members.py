"""Members, roles and invitations: the access matrix, the owner rules, invitations from
creation to acceptance, htmx fragments, and that no GET changes anything."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import re
import socketserver
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dashboard import tenancy
from dashboard.auth.passwords import hash_password
from dashboard.extensions import db
from dashboard.members import services
from dashboard.models import Invitation, MemberRole, Membership, Organization, utcnow
from tests import factories
from tests.databases import make_config
from tests.http import HX, login

PASSWORD = "correct horse battery"
OWNER, ADMIN, MEMBER = MemberRole.OWNER, MemberRole.ADMIN, MemberRole.MEMBER


@pytest.fixture
def team(app):
    """Org "acme": one owner, one admin, two members, a pending invitation; org "other"
    with its own member and invitation. Returns detached users and row ids."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        acme = factories.make_org(slug="acme", name="Acme Audio")
        other = factories.make_org(slug="other", name="Other Org")
        users, ids = {}, {}
        for key, role in [("owner", OWNER), ("admin", ADMIN), ("member", MEMBER)]:
            users[key] = factories.make_user(
                email=f"{key}@acme.example",
                display_name=f"{key.title()} Person",
                password_hash=hash_password(PASSWORD),
            )
            ids[key] = factories.make_membership(users[key], acme, role).id
        users["target"] = factories.make_user(
            email="target@acme.example", display_name="Tara Target"
        )
        ids["target"] = factories.make_membership(users["target"], acme, MEMBER).id
        users["outsider"] = factories.make_user(email="outsider@other.example")
        ids["outsider"] = factories.make_membership(users["outsider"], other, OWNER).id
        ids["invitation"] = add_invitation(acme.id, "pending@example.com")[0]
        ids["other_invitation"] = add_invitation(other.id, "elsewhere@example.com")[0]
        ids["acme"], ids["other"] = acme.id, other.id
        db.session.commit()
        users = {key: factories.detach(user) for key, user in users.items()}
    return {"users": users, "ids": ids}


def add_invitation(
    org_id, email_address, role=MEMBER, expires_in=dt.timedelta(days=1), accepted=False
) -> tuple[uuid.UUID, str]:
    """Insert an invitation directly; return its id and its token."""
    token = f"token-{uuid.uuid4().hex}"
    invitation = Invitation(
        org_id=org_id,
        email=email_address,
        role=role,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        expires_at=utcnow() + expires_in,
        accepted_at=utcnow() if accepted else None,
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation.id, token


def invitation_for(app, org_key, team, email_address, **kw) -> tuple[uuid.UUID, str]:
    with app.app_context(), tenancy.all_tenants("test setup"):
        found = add_invitation(team["ids"][org_key], email_address, **kw)
        db.session.commit()
        return found


def roles(app) -> dict[uuid.UUID, MemberRole]:
    """Every membership's role, across orgs."""
    with app.app_context(), tenancy.all_tenants("test check"):
        return dict(db.session.execute(select(Membership.id, Membership.role)).all())


def changed_roles(
    before: dict[uuid.UUID, MemberRole], changes: dict[uuid.UUID, MemberRole | None]
) -> dict[uuid.UUID, MemberRole]:
    """Return `before` with `changes` applied (None: the membership is gone).

    Tests compare the whole map, so a change that also touched another membership (a
    missing `where`, the wrong row) fails, not only one that missed its target.
    """
    after = {**before, **changes}
    return {mid: role for mid, role in after.items() if role is not None}


def invitations(app) -> dict[uuid.UUID, tuple]:
    with app.app_context(), tenancy.all_tenants("test check"):
        rows = db.session.execute(
            select(Invitation.id, Invitation.email, Invitation.accepted_at, Invitation.token_hash)
        ).all()
        return {row[0]: tuple(row[1:]) for row in rows}


def html_of(response) -> str:
    return response.get_data(as_text=True)


def main_of(response) -> str:
    """The page's <main>, without the layout's header (which holds the logout form)."""
    html = html_of(response)
    return html[html.index('<main class="container" id="main">') :]


def members_url(path: str = "") -> str:
    return f"/o/acme/members/{path}"


def join_url(token: str, slug: str = "acme") -> str:
    return f"/join/{slug}/{token}"


def invite(client, email_address: str, role: str, **kwargs):
    """Post the invite form of acme's members page."""
    return client.post(
        members_url("invitations"), data={"email": email_address, "role": role}, **kwargs
    )


def set_role(client, membership_id, role: str, **kwargs):
    """Post the role form of one of acme's members."""
    return client.post(members_url(f"{membership_id}/role"), data={"role": role}, **kwargs)


# --------------------------------------------------------------------- access matrix


def act(client, team, action):
    ids = team["ids"]
    if action == "list":
        return client.get(members_url())
    if action == "invite":
        return client.post(members_url("invitations"), data={"email": "new@x.example"})
    if action == "change_role":
        return set_role(client, ids["target"], "admin")
    if action == "remove":
        return client.post(members_url(f"{ids['target']}/remove"))
    if action == "revoke":
        return client.post(members_url(f"invitations/{ids['invitation']}/revoke"))
    if action == "leave":
        return client.post(members_url("leave"))
    if action == "remove_page":
        return client.get(members_url(f"{ids['target']}/remove"))
    if action == "leave_page":
        return client.get(members_url("leave"))
    raise AssertionError(action)


MATRIX = {
    "list": {"member": 200, "admin": 200, "owner": 200},
    "invite": {"member": 403, "admin": 303, "owner": 303},
    "change_role": {"member": 403, "admin": 303, "owner": 303},
    "remove": {"member": 403, "admin": 303, "owner": 303},
    "revoke": {"member": 403, "admin": 303, "owner": 303},
    # The only owner can't leave; everybody else can.
    "leave": {"member": 303, "admin": 303, "owner": 409},
    "remove_page": {"member": 403, "admin": 200, "owner": 200},
    "leave_page": {"member": 200, "admin": 200, "owner": 200},
}


@pytest.mark.parametrize(
    ("action", "who", "status"),
    [(action, who, status) for action, row in MATRIX.items() for who, status in row.items()],
)
def test_access_matrix(app, client, team, action, who, status):
    before_roles, before_invitations = roles(app), invitations(app)
    login(client, team["users"][who])
    response = act(client, team, action)
    assert response.status_code == status, html_of(response)
    after_roles, after_invitations = roles(app), invitations(app)
    ids = team["ids"]
    changed = status == 303
    role_changes = {
        "change_role": {ids["target"]: ADMIN},
        "remove": {ids["target"]: None},
        "leave": {ids[who]: None},
    }
    expected = changed_roles(before_roles, role_changes.get(action, {}) if changed else {})
    assert after_roles == expected
    if action == "invite" and changed:
        (new,) = after_invitations.keys() - before_invitations.keys()
        assert after_invitations[new][0] == "new@x.example"
        assert {k: v for k, v in after_invitations.items() if k != new} == before_invitations
    elif action == "revoke" and changed:
        assert after_invitations == {
            k: v for k, v in before_invitations.items() if k != ids["invitation"]
        }
    else:
        assert after_invitations == before_invitations
    if changed and action == "leave":
        assert response.headers["Location"] == "/home"
    if changed and action == "invite":
        assert response.headers["Location"] == "/o/acme/members/#invitations"
    elif changed and action != "leave":
        assert response.headers["Location"] == "/o/acme/members/"


def test_write_views_declare_their_roles(app):
    for endpoint in ("invite", "revoke", "change_role", "remove"):
        view = app.view_functions[f"members.{endpoint}"]
        assert view.required_roles == tenancy.MANAGERS, endpoint


def test_member_sees_a_read_only_page(client, team):
    login(client, team["users"]["member"])
    main = main_of(client.get(members_url()))
    assert "Owner Person" in main and "target@acme.example" in main
    assert "pending@example.com" in main  # pending invitations are listed for everyone
    assert "<form" not in main and "<select" not in main and "Remove" not in main
    assert "Invite someone" not in main
    assert 'href="/o/acme/members/leave"' in main
    assert "elsewhere@example.com" not in main and "outsider" not in main


def test_admin_sees_forms_but_none_for_owners(client, team):
    ids = team["ids"]
    login(client, team["users"]["admin"])
    main = main_of(client.get(members_url()))
    assert "Invite someone" in main
    assert f'action="/o/acme/members/{ids["target"]}/role"' in main
    assert f'href="/o/acme/members/{ids["target"]}/remove"' in main
    assert f"/o/acme/members/{ids['owner']}/" not in main  # no controls on the owner's row
    assert f"/o/acme/members/{ids['admin']}/" not in main  # nor on their own
    assert 'value="owner"' not in main  # admins can't grant owner
    assert f'action="/o/acme/members/invitations/{ids["invitation"]}/revoke"' in main


def test_owner_may_grant_owner(client, team):
    login(client, team["users"]["owner"])
    main = main_of(client.get(members_url()))
    assert 'value="owner"' in main
    assert "You are the only owner" in main  # instead of a Leave link


def test_members_are_listed_owners_first_with_join_date(client, team):
    login(client, team["users"]["member"])
    main = main_of(client.get(members_url()))
    order = [main.index(name) for name in ("Owner Person", "Admin Person", "Member Person")]
    assert order == sorted(order)
    today = utcnow()
    assert f"{today.day} {today.strftime('%b %Y')}" in main


def statements_for(count_queries, client, url) -> int:
    """Return how many SQL statements one GET of `url` runs."""
    with count_queries() as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_members_page_query_count_does_not_grow_with_the_team(app, client, team, count_queries):
    login(client, team["users"]["owner"])
    few = statements_for(count_queries, client, members_url())
    with app.app_context(), tenancy.all_tenants("test setup"):
        for n in range(15):
            user = factories.make_user(email=f"extra{n}@acme.example")
            db.session.add(Membership(user_id=user.id, org_id=team["ids"]["acme"], role=MEMBER))
            add_invitation(team["ids"]["acme"], f"invitee{n}@example.com")
        db.session.commit()
    assert statements_for(count_queries, client, members_url()) == few


# ------------------------------------------------------------------------ owner rules


def test_last_owner_cannot_step_down(app, client, team):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, team["ids"]["owner"], "admin")
    assert response.status_code == 409
    assert "only owner" in html_of(response)
    assert roles(app) == before


def test_last_owner_cannot_leave(app, client, team):
    login(client, team["users"]["owner"])
    response = client.post(members_url("leave"))
    assert response.status_code == 409
    assert "only owner" in html_of(response)
    assert team["ids"]["owner"] in roles(app)
    page = client.get(members_url("leave"))
    assert "only owner" in html_of(page) and 'method="post"' not in main_of(page)


def test_removing_yourself_goes_through_leave(app, client, team):
    login(client, team["users"]["owner"])
    response = client.post(members_url(f"{team['ids']['owner']}/remove"))
    assert response.status_code == 303 and response.headers["Location"] == members_url("leave")
    assert team["ids"]["owner"] in roles(app)


def test_last_owner_cannot_be_removed_by_the_service(app, team):
    with app.app_context(), tenancy.org_scope(team["ids"]["acme"]):
        owner = tenancy.get_scoped(Membership, team["ids"]["owner"])
        with pytest.raises(services.MemberError, match="only owner") as caught:
            services.remove_member(owner, owner)
        assert caught.value.status == 409
        problem = services.role_change_problem(owner, owner, ADMIN, [owner.id])
        assert problem is not None and problem.status == 409


@pytest.mark.parametrize("change", ["role", "remove"])
def test_an_owner_demoted_meanwhile_cannot_take_the_last_owner_away(app, team, change):
    """Two owners; another request demotes one while their own change is under way."""
    ids = team["ids"]
    promote(app, ids["admin"], OWNER)
    before = roles(app)
    with app.app_context(), tenancy.org_scope(ids["acme"]):
        actor = tenancy.get_scoped(Membership, ids["owner"])
        target = tenancy.get_scoped(Membership, ids["admin"])
        memberships = Membership.__table__
        db.session.execute(
            memberships.update().values(role=MEMBER).where(memberships.c.id == actor.id)
        )
        with pytest.raises(services.MemberError) as caught:
            if change == "role":
                services.change_role(actor, target, MEMBER)
            else:
                services.remove_member(actor, target)
        assert caught.value.message == "An organisation needs at least one owner."
        assert caught.value.status == 409
        db.session.rollback()
    assert roles(app) == before


def test_add_member_never_changes_a_role(app, team):
    """Roles change only where the last-owner rule is checked (`change_role`, `set_member_role`)."""
    with app.app_context(), tenancy.org_scope(team["ids"]["acme"]):
        acme = db.session.scalars(select(Organization).where(Organization.slug == "acme")).one()
        owner = db.session.merge(team["users"]["owner"])
        with pytest.raises(IntegrityError):
            services.add_member(acme, owner, MEMBER)
        db.session.rollback()
    assert roles(app)[team["ids"]["owner"]] is OWNER


def promote(app, membership_id, role):
    with app.app_context(), tenancy.all_tenants("test setup"):
        db.session.scalars(
            select(Membership).where(Membership.id == membership_id)
        ).one().role = role
        db.session.commit()


def test_owner_may_step_down_when_another_owner_exists(app, client, team):
    ids = team["ids"]
    promote(app, ids["admin"], OWNER)
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, ids["owner"], "member")
    assert response.status_code == 303 and response.headers["Location"] == members_url()
    assert roles(app) == changed_roles(before, {ids["owner"]: MEMBER})
    page = main_of(client.get(members_url()))
    assert "Owner Person is now a member." in page
    assert "<form" not in page  # a member now: the page is read-only


def test_stepping_down_over_htmx_reloads_the_page(app, client, team):
    ids = team["ids"]
    promote(app, ids["admin"], OWNER)
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, ids["owner"], "admin", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == members_url()
    assert roles(app) == changed_roles(before, {ids["owner"]: ADMIN})


def test_owner_with_a_co_owner_may_leave_and_demote_them(app, client, team):
    ids = team["ids"]
    promote(app, ids["admin"], OWNER)
    before = roles(app)
    login(client, team["users"]["owner"])
    assert set_role(client, ids["admin"], "member").status_code == 303
    assert roles(app) == changed_roles(before, {ids["admin"]: MEMBER})
    # now the only owner again
    assert client.post(members_url("leave")).status_code == 409
    assert roles(app) == changed_roles(before, {ids["admin"]: MEMBER})
    promote(app, ids["admin"], OWNER)
    response = client.post(members_url("leave"))
    assert response.status_code == 303
    assert roles(app) == changed_roles(before, {ids["owner"]: None})
    assert client.get(members_url()).status_code == 404  # no longer a member


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("{owner}/role", {"role": "member"}),  # change an owner
        ("{owner}/remove", {}),  # remove an owner
        ("{target}/role", {"role": "owner"}),  # grant owner
        ("{admin}/role", {"role": "member"}),  # change their own role
    ],
)
def test_admin_cannot_touch_owners_grant_owner_or_change_themselves(app, client, team, path, data):
    before = roles(app)
    login(client, team["users"]["admin"])
    response = client.post(members_url(path.format(**team["ids"])), data=data)
    assert response.status_code == 403
    assert re.search(r"Only owners can|your own role", html_of(response))
    assert roles(app) == before


def test_admin_cannot_invite_an_owner(app, client, team):
    before = invitations(app)
    login(client, team["users"]["admin"])
    response = invite(client, "boss@x.example", "owner")
    assert response.status_code == 403 and "Only owners can invite an owner" in html_of(response)
    assert invitations(app) == before


def test_admin_confirmation_page_for_an_owner_explains_the_refusal(client, team):
    login(client, team["users"]["admin"])
    response = client.get(members_url(f"{team['ids']['owner']}/remove"))
    assert response.status_code == 200
    assert "Only owners can remove an owner" in html_of(response)
    assert 'method="post"' not in main_of(response)


def test_member_cannot_change_their_own_role(app, client, team):
    before = roles(app)
    login(client, team["users"]["member"])
    response = set_role(client, team["ids"]["member"], "admin")
    assert response.status_code == 403
    assert roles(app) == before


def test_owner_may_make_someone_owner(app, client, team):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, team["ids"]["target"], "owner")
    assert response.status_code == 303
    assert roles(app) == changed_roles(before, {team["ids"]["target"]: OWNER})
    assert "Tara Target is now an owner." in html_of(client.get(members_url()))


@pytest.mark.parametrize("role", ["king", "", "OWNER", "owner "])
def test_invalid_role_is_422_with_the_page(app, client, team, role):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, team["ids"]["target"], role)
    assert response.status_code == 422 and "Choose a valid role" in html_of(response)
    assert roles(app) == before


def test_choosing_the_current_role_changes_nothing_and_says_nothing(app, client, team):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, team["ids"]["target"], "member")
    assert response.status_code == 303
    assert roles(app) == before
    assert "is now" not in html_of(client.get(members_url()))


def test_removing_a_member_keeps_everything_else(app, client, team):
    ids = team["ids"]
    before = invitations(app)
    login(client, team["users"]["admin"])
    response = client.post(members_url(f"{ids['target']}/remove"))
    assert response.status_code == 303
    assert "Tara Target was removed from Acme Audio." in html_of(client.get(members_url()))
    assert invitations(app) == before
    assert set(roles(app)) == {ids[k] for k in ("owner", "admin", "member", "outsider")}


# ------------------------------------------------------------------ other orgs → 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "{outsider}/role"),
        ("post", "{outsider}/remove"),
        ("get", "{outsider}/remove"),
        ("post", "invitations/{other_invitation}/revoke"),
        ("post", "{nonexistent}/role"),
    ],
)
@pytest.mark.parametrize("who", ["owner", "member"])
def test_another_orgs_ids_are_404(app, client, team, method, path, who):
    before = (roles(app), invitations(app))
    login(client, team["users"][who])
    url = members_url(path.format(nonexistent=uuid.uuid4(), **team["ids"]))
    response = client.open(url, method=method.upper(), data={"role": "member"})
    assert response.status_code == 404
    assert (roles(app), invitations(app)) == before


def test_used_invitation_cannot_be_revoked(app, client, team):
    used, _ = invitation_for(app, "acme", team, "used@example.com", accepted=True)
    before = invitations(app)
    login(client, team["users"]["owner"])
    assert client.post(members_url(f"invitations/{used}/revoke")).status_code == 404
    assert invitations(app) == before


# ------------------------------------------------------------------------ invitations


def test_invitation_stores_only_the_hash_and_shows_the_link_once(app, client, team):
    login(client, team["users"]["admin"])
    response = invite(client, " New.Person@X.Example ", "admin")
    assert response.status_code == 303
    assert response.headers["Location"] == members_url("#invitations")
    page = html_of(client.get(members_url()))
    link = re.search(r'value="(http://localhost/join/acme/[^"]+)"', page).group(1)
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43
    with app.app_context(), tenancy.all_tenants("test check"):
        invitation = db.session.scalars(
            select(Invitation).where(Invitation.email == "new.person@x.example")
        ).one()
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert invitation.role is ADMIN and invitation.org_id == team["ids"]["acme"]
        assert token not in repr([getattr(invitation, c.key) for c in Invitation.__table__.c])
        hours = (invitation.expires_at - utcnow()).total_seconds() / 3600
        assert 71.9 < hours <= 72
    again = html_of(client.get(members_url()))
    assert token not in again and "new.person@x.example" in again  # listed, link gone


def test_invitation_ttl_comes_from_settings(app, client, team):
    app.config["INVITATION_TTL_HOURS"] = 2
    login(client, team["users"]["owner"])
    invite(client, "soon@x.example", "member")
    with app.app_context(), tenancy.all_tenants("test check"):
        expires = db.session.scalar(
            select(Invitation.expires_at).where(Invitation.email == "soon@x.example")
        )
    assert 1.9 < (expires - utcnow()).total_seconds() / 3600 <= 2


@pytest.mark.parametrize(
    ("email_address", "message"),
    [
        ("TARGET@acme.example", "target@acme.example is already a member."),
        ("not-an-email", "Enter an email address."),
        ("", "This field is required."),
    ],
)
def test_bad_invitations_are_422_with_inline_errors(app, client, team, email_address, message):
    before = invitations(app)
    login(client, team["users"]["owner"])
    response = invite(client, email_address, "member")
    assert response.status_code == 422
    assert f'<small id="email-error" class="field-error">{message}</small>' in html_of(response)
    assert invitations(app) == before


def test_member_of_another_org_can_be_invited(app, client, team):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = invite(client, "outsider@other.example", "member")
    assert response.status_code == 303
    with app.app_context(), tenancy.all_tenants("test check"):
        invited = db.session.execute(
            select(Invitation.org_id, Invitation.role).where(
                Invitation.email == "outsider@other.example"
            )
        ).all()
    assert invited == [(team["ids"]["acme"], MEMBER)]
    assert roles(app) == before  # their membership of the other org is theirs still


def test_reinviting_replaces_the_pending_invitation(app, client, team):
    login(client, team["users"]["owner"])
    first = invite(client, "pending@example.com", "admin")
    assert first.status_code == 303
    page = html_of(client.get(members_url()))
    assert "It replaces their earlier invitation." in page
    with app.app_context(), tenancy.all_tenants("test check"):
        rows = db.session.scalars(
            select(Invitation).where(Invitation.email == "pending@example.com")
        ).all()
        assert len(rows) == 1 and rows[0].role is ADMIN
        assert rows[0].id != team["ids"]["invitation"]


def test_pending_list_excludes_expired_and_accepted(app, client, team):
    invitation_for(app, "acme", team, "expired@example.com", expires_in=dt.timedelta(hours=-1))
    invitation_for(app, "acme", team, "accepted@example.com", accepted=True)
    login(client, team["users"]["owner"])
    main = main_of(client.get(members_url()))
    assert "pending@example.com" in main
    assert "expired@example.com" not in main and "accepted@example.com" not in main
    assert "elsewhere@example.com" not in main
    assert re.search(r'Pending invitations <span class="count">1</span>', main)


def test_revoked_link_stops_working(app, client, team):
    _, token = invitation_for(app, "acme", team, "revoke-me@example.com")
    with app.app_context(), tenancy.all_tenants("test check"):
        invitation_id = db.session.scalar(
            select(Invitation.id).where(Invitation.email == "revoke-me@example.com")
        )
    login(client, team["users"]["owner"])
    response = client.post(members_url(f"invitations/{invitation_id}/revoke"))
    assert response.status_code == 303
    assert "The invitation for revoke-me@example.com was revoked." in html_of(
        client.get(members_url())
    )
    assert client.get(join_url(token)).status_code == 404


# ---------------------------------------------------------------------- accepting


@pytest.fixture
def newcomer(app, team):
    """A registered user (with a password) who isn't in acme yet, and an invitation for them."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user(
            email="newcomer@example.com",
            display_name="Nia Newcomer",
            password_hash=hash_password(PASSWORD),
        )
        invitation_id, token = add_invitation(team["ids"]["acme"], user.email, role=ADMIN)
        db.session.commit()
        return factories.detach(user), invitation_id, token


def test_accepting_joins_with_the_invited_role(app, client, team, newcomer):
    user, invitation_id, token = newcomer
    login(client, user)
    page = client.get(join_url(token))
    assert page.status_code == 200
    html = html_of(page)
    assert "Join Acme Audio as admin?" in html and "newcomer@example.com" in html
    assert f'action="{join_url(token)}"' in html
    response = client.post(join_url(token))
    assert response.status_code == 303 and response.headers["Location"] == "/o/acme/"
    home = client.get("/o/acme/")
    assert home.status_code == 200 and "Welcome to Acme Audio" in html_of(home)
    with app.app_context(), tenancy.all_tenants("test check"):
        membership = db.session.scalars(
            select(Membership).where(Membership.user_id == user.id)
        ).one()
        assert membership.role is ADMIN and membership.org_id == team["ids"]["acme"]
        invitation = db.session.scalars(
            select(Invitation).where(Invitation.id == invitation_id)
        ).one()
        assert invitation.accepted_at is not None and invitation.accepted_by == user.id


def test_an_invitation_works_once(app, client, team, newcomer):
    user, _, token = newcomer
    login(client, user)
    assert client.post(join_url(token)).status_code == 303
    assert client.post("/o/acme/members/leave").status_code == 303
    for method in ("GET", "POST"):
        response = client.open(join_url(token), method=method)
        assert response.status_code == 410
        assert "already been used" in html_of(response)
    with app.app_context(), tenancy.all_tenants("test check"):
        assert db.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is None


def test_the_service_refuses_a_second_use_even_when_racing(app, team, newcomer):
    user, invitation_id, _ = newcomer
    with app.app_context(), tenancy.org_scope(team["ids"]["acme"], user.id):
        invitation = tenancy.get_scoped(Invitation, invitation_id)
        user = db.session.merge(user)
        # Another request used the link between our read and our write.
        db.session.execute(
            Invitation.__table__.update()
            .values(accepted_at=utcnow())
            .where(Invitation.__table__.c.id == invitation_id)
        )
        with pytest.raises(services.InvitationGone):
            services.accept(invitation, user)
        db.session.rollback()


def test_expired_invitation_is_410(app, client, team):
    with app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user(email="late@example.com")
        _, token = add_invitation(team["ids"]["acme"], user.email, expires_in=-dt.timedelta(1))
        db.session.commit()
        user = factories.detach(user)
    login(client, user)
    for method in ("GET", "POST"):
        response = client.open(join_url(token), method=method)
        assert response.status_code == 410 and "expired" in html_of(response)
        assert "Ask the person who invited you for a new link" in html_of(response)
    with app.app_context(), tenancy.all_tenants("test check"):
        assert db.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is None


def test_expired_invitation_says_so_before_asking_to_log_in(client, team, app):
    _, token = invitation_for(app, "acme", team, "late@example.com", expires_in=-dt.timedelta(1))
    assert client.get(join_url(token)).status_code == 410


@pytest.mark.parametrize(
    "url",
    [
        join_url("no-such-token"),
        join_url("token", slug="no-such-org"),
    ],
)
def test_unknown_token_or_org_is_404(client, team, url):
    login(client, team["users"]["outsider"])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


def test_another_orgs_token_under_this_slug_is_404(app, client, team):
    _, token = invitation_for(app, "other", team, "outsider@other.example")
    login(client, team["users"]["outsider"])
    assert client.get(join_url(token, slug="acme")).status_code == 404
    assert client.post(join_url(token, slug="acme")).status_code == 404


def test_email_mismatch_is_403_naming_both_addresses(app, client, team, newcomer):
    _, _, token = newcomer
    login(client, team["users"]["outsider"])
    before = roles(app)
    for method in ("GET", "POST"):
        response = client.open(join_url(token), method=method)
        assert response.status_code == 403
        html = html_of(response)
        assert "newcomer@example.com" in html and "outsider@other.example" in html
        assert f'action="{join_url(token)}/switch-account"' in html
    assert roles(app) == before
    switched = client.post(f"{join_url(token)}/switch-account")
    assert switched.status_code == 303
    assert switched.headers["Location"] == join_url(token)
    back = client.get(join_url(token))  # logged out now: asked to log in as the addressee
    assert back.status_code == 302 and urlsplit(back.headers["Location"]).path == "/login"
    assert "as newcomer@example.com to join Acme Audio" in html_of(client.get("/login"))


def test_already_a_member_goes_to_the_org_home(app, client, team):
    _, token = invitation_for(app, "acme", team, "target@acme.example")
    login(client, team["users"]["target"])
    before = (roles(app), invitations(app))
    for method in ("GET", "POST"):
        response = client.open(join_url(token), method=method)
        assert response.status_code == 302 and response.headers["Location"] == "/o/acme/"
    assert "already a member of Acme Audio" in html_of(client.get("/o/acme/"))
    assert (roles(app), invitations(app)) == before


def test_logged_out_accept_logs_in_and_comes_back(app, client, team, newcomer):
    _, _, token = newcomer
    response = client.get(join_url(token))
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [join_url(token)]
    login_page = html_of(client.get(response.headers["Location"]))
    assert "Log in or create an account as newcomer@example.com" in login_page
    assert f'value="{join_url(token)}"' in login_page  # the form carries next
    logged_in = client.post(
        "/login",
        data={"email": "newcomer@example.com", "password": PASSWORD, "next": join_url(token)},
    )
    assert logged_in.status_code == 303 and logged_in.headers["Location"] == join_url(token)
    assert client.get(join_url(token)).status_code == 200
    assert client.post(join_url(token)).headers["Location"] == "/o/acme/"


def test_sign_up_with_next_lands_on_the_accept_page(app, client, team):
    _, token = invitation_for(app, "acme", team, "fresh@example.com")
    login_page = html_of(client.get(f"/login?next={join_url(token)}"))
    signup_link = re.search(r'href="(/signup\?next=[^"]+)"', login_page).group(1)
    assert parse_qs(urlsplit(signup_link.replace("&amp;", "&")).query)["next"] == [join_url(token)]
    response = client.post(
        "/signup",
        data={
            "display_name": "Fresh Face",
            "email": "fresh@example.com",
            "org_name": "Fresh Sounds",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "next": join_url(token),
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == join_url(token)
    assert "Join Acme Audio as member?" in html_of(client.get(join_url(token)))
    assert client.post(join_url(token)).status_code == 303
    assert client.get("/o/acme/").status_code == 200


# ------------------------------------------------------------------------------ htmx


def test_htmx_role_change_gets_the_members_block(app, client, team):
    before = roles(app)
    login(client, team["users"]["owner"])
    response = set_role(client, team["ids"]["target"], "admin", headers=HX)
    assert response.status_code == 200
    assert roles(app) == changed_roles(before, {team["ids"]["target"]: ADMIN})
    assert "HX-Request" in response.headers["Vary"]
    html = html_of(response).strip()
    assert html.startswith('<section id="members"') and html.endswith("</section>")
    assert "<html" not in html and "site-header" not in html and 'id="invitations"' not in html
    assert "Tara Target is now an admin." in html


def test_htmx_invite_gets_the_invitations_block_with_the_link(app, client, team):
    login(client, team["users"]["owner"])
    response = invite(client, "hx@example.com", "member", headers=HX)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = html_of(response).strip()
    assert html.startswith('<section id="invitations"') and "<html" not in html
    assert re.search(r'value="http://localhost/join/acme/[\w-]{43}"', html)


def test_htmx_refusals_get_the_block_with_their_status(app, client, team):
    before = (roles(app), invitations(app))
    login(client, team["users"]["owner"])
    invalid = invite(client, "nope", "member", headers=HX)
    assert invalid.status_code == 422
    assert html_of(invalid).strip().startswith('<section id="invitations"')
    assert "Enter an email address." in html_of(invalid)
    last_owner = set_role(client, team["ids"]["owner"], "admin", headers=HX)
    assert last_owner.status_code == 409
    assert html_of(last_owner).strip().startswith('<section id="members"')
    assert "only owner" in html_of(last_owner)
    assert (roles(app), invitations(app)) == before


def test_htmx_remove_and_revoke_get_their_blocks(app, client, team):
    login(client, team["users"]["admin"])
    removed = client.post(members_url(f"{team['ids']['target']}/remove"), headers=HX)
    assert removed.status_code == 200
    assert html_of(removed).strip().startswith('<section id="members"')
    assert "Tara Target was removed" in html_of(removed)
    revoked = client.post(
        members_url(f"invitations/{team['ids']['invitation']}/revoke"), headers=HX
    )
    assert revoked.status_code == 200
    assert html_of(revoked).strip().startswith('<section id="invitations"')
    assert "No pending invitations." in html_of(revoked)


def test_htmx_leave_redirects_the_whole_page(app, client, team):
    login(client, team["users"]["member"])
    response = client.post(members_url("leave"), headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/home"


def test_page_loads_the_shared_script_and_has_no_inline_script(client, team):
    login(client, team["users"]["owner"])
    html = html_of(client.get(members_url()))
    # Copy buttons and in-place refusals are app.js's, shared with the API keys page.
    assert '<script src="/static/js/app.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


# ------------------------------------------------------------------ GET is read-only


def test_no_get_changes_state(app, client, team, newcomer):
    _, _, token = newcomer
    before = (roles(app), invitations(app))
    ids = team["ids"]
    login(client, team["users"]["owner"])
    for url in (
        members_url(),
        members_url(f"{ids['target']}/remove"),
        members_url(f"{ids['owner']}/remove"),
        members_url("leave"),
    ):
        assert client.get(url).status_code in {200, 302}, url
    for url in (
        members_url(f"{ids['target']}/role"),
        members_url("invitations"),
        members_url(f"invitations/{ids['invitation']}/revoke"),
        f"{join_url(token)}/switch-account",
    ):
        assert client.get(url).status_code == 405, url
    login(client, newcomer[0])
    assert client.get(join_url(token)).status_code == 200
    assert (roles(app), invitations(app)) == before


# ------------------------------------------------------------------------------ mail


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: no TLS, no auth; keeps each message."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        lines: list[bytes] | None = None
        while line := self.rfile.readline():
            if lines is not None:
                if line == b".\r\n":
                    self.server.messages.append(b"".join(lines))  # type: ignore[attr-defined]
                    lines = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                lines = []
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, list[bytes]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"smtp://127.0.0.1:{server.server_address[1]}?from=noreply@voxboard.test", server.messages  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join()


def test_invitation_is_emailed_when_smtp_is_configured(app, client, team, smtp_server):
    url, messages = smtp_server
    app.config["SMTP_URL"] = url
    login(client, team["users"]["owner"])
    invite(client, "mailme@example.com", "admin")
    page = html_of(client.get(members_url()))
    link = re.search(r'value="(http://localhost/join/acme/[^"]+)"', page).group(1)
    assert "We also emailed the link to mailme@example.com." in page
    assert len(messages) == 1
    message = email.message_from_bytes(messages[0], policy=email.policy.default)
    assert message["To"] == "mailme@example.com" and message["From"] == "noreply@voxboard.test"
    assert "Owner Person invited you to Acme Audio" in message["Subject"]
    assert link in message.get_content()


def test_failed_email_keeps_the_invitation_and_warns(app, client, team):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"  # nobody listens on the discard port
    login(client, team["users"]["owner"])
    response = invite(client, "unlucky@example.com", "member")
    assert response.status_code == 303
    page = html_of(client.get(members_url()))
    assert "The email could not be sent" in page
    assert "127.0.0.1:9" not in page and "Connection refused" not in page  # the log's, not theirs
    assert re.search(r'value="http://localhost/join/acme/[\w-]{43}"', page)
    assert any(row[0] == "unlucky@example.com" for row in invitations(app).values())


# --------------------------------------------------- PostgreSQL, as the web role (RLS)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_members_flow_as_the_web_role_under_row_level_security(
    app, team, newcomer, pg_app_url, tmp_path
):
    """The same flows with row-level security binding the connection, not just the filter."""
    from dashboard import create_app

    web = create_app(make_config(pg_app_url, tmp_path))
    owner_client, newcomer_client = web.test_client(), web.test_client()
    ids, (newcomer_user, _, token) = team["ids"], newcomer
    _, foreign_token = invitation_for(app, "other", team, "newcomer@example.com")
    before = roles(app)
    try:
        login(owner_client, team["users"]["owner"])
        page = main_of(owner_client.get(members_url()))
        assert "target@acme.example" in page and "pending@example.com" in page
        assert "outsider@other.example" not in page and "elsewhere@example.com" not in page
        invited = invite(owner_client, "rls@x.example", "admin")
        assert invited.status_code == 303
        changed = set_role(owner_client, ids["target"], "admin")
        # Row-level security hides rows from an UPDATE without an error: the status alone
        # can't tell a change from a silent no-op, the rows can.
        assert changed.status_code == 303
        assert roles(app) == changed_roles(before, {ids["target"]: ADMIN})
        assert "Tara Target is now an admin." in html_of(owner_client.get(members_url()))
        refused = set_role(owner_client, ids["owner"], "member")
        assert refused.status_code == 409  # the only owner
        assert owner_client.post(members_url("leave")).status_code == 409  # owners locked
        assert owner_client.post(members_url(f"{ids['outsider']}/remove")).status_code == 404
        assert roles(app) == changed_roles(before, {ids["target"]: ADMIN})

        login(newcomer_client, newcomer_user)
        assert newcomer_client.get(join_url(foreign_token)).status_code == 404  # other org's
        assert newcomer_client.get(join_url(token)).status_code == 200
        joined = newcomer_client.post(join_url(token))
        assert joined.status_code == 303 and joined.headers["Location"] == "/o/acme/"
        assert newcomer_client.get("/o/acme/members/").status_code == 200
        assert newcomer_client.post(join_url(token)).status_code == 302  # already a member
    finally:
        with web.app_context():
            db.session.remove()
            db.engine.dispose()
    after = roles(app)
    with app.app_context(), tenancy.all_tenants("test check"):
        joined_as = db.session.execute(
            select(Membership.id, Membership.org_id).where(Membership.user_id == newcomer_user.id)
        ).one()
    assert joined_as.org_id == ids["acme"]
    assert after == changed_roles(before, {ids["target"]: ADMIN, joined_as.id: ADMIN})
    assert any(row[0] == "rls@x.example" for row in invitations(app).values())
