"""Operator commands: `flask orgs ...`, `flask users ...` and `flask seed --demo`."""

from __future__ import annotations

import uuid

import click
import pytest
from sqlalchemy import func, select

from dashboard import tenancy
from dashboard.auth import login_sessions
from dashboard.auth.passwords import hash_password, verify_password
from dashboard.cli.demo import DEMO_ACCOUNTS
from dashboard.extensions import db
from dashboard.models import MemberRole, Membership, Organization, User, UserSession, Voice
from tests import factories
from tests.databases import both_databases

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "tr0ub4dor & three"


@pytest.fixture
def ada(app):
    """A user, owner of the org "acme"; returns nothing, tests look rows up by email/slug."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        user = factories.make_user(
            email="ada@example.com", display_name="Ada", password_hash=hash_password(PASSWORD)
        )
        factories.make_membership(
            user, factories.make_org(slug="acme", name="Acme Audio"), MemberRole.OWNER
        )
        db.session.commit()


@pytest.fixture
def bob(app):
    """A second user, bob@example.com, in no organisation yet."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        factories.make_user(email="bob@example.com")
        db.session.commit()


def user_by_email(email: str) -> User | None:
    return db.session.scalars(select(User).where(User.email == email)).one_or_none()


def roles(slug: str) -> dict[str, MemberRole]:
    """Return {email: role} of the members of the org `slug`."""
    rows = db.session.execute(
        select(User.email, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Organization, Organization.id == Membership.org_id)
        .where(Organization.slug == slug)
    ).all()
    return dict(rows)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def open_sessions_for(app, *emails: str) -> None:
    """Log each user in once (a server-side session row), as the login form would."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        for email in emails:
            login_sessions.start(user_by_email(email), "pytest", "127.0.0.1")
        db.session.commit()


def session_owners(app) -> list[str]:
    """Return the emails of the users with an open session, sorted."""
    with app.app_context(), tenancy.all_tenants("test"):
        return sorted(
            db.session.scalars(
                select(User.email).join(UserSession, UserSession.user_id == User.id).distinct()
            )
        )


def add_member(runner, email: str, slug: str, role: str):
    """Run `flask users add-member EMAIL SLUG --role ROLE`."""
    return runner.invoke(args=["users", "add-member", email, slug, "--role", role])


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[-1], result.output


# ------------------------------------------------------------------------- orgs


@both_databases
def test_orgs_create_prints_the_slug_and_makes_the_owner(app, runner, ada):
    result = runner.invoke(
        args=["orgs", "create", "Hopper Sound, Ltd.", "--owner", "ADA@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "hopper-sound-ltd\n"
    with app.app_context(), tenancy.all_tenants("test"):
        org = db.session.scalars(
            select(Organization).where(Organization.slug == "hopper-sound-ltd")
        ).one()
        assert org.name == "Hopper Sound, Ltd."
        assert roles("hopper-sound-ltd") == {"ada@example.com": MemberRole.OWNER}


def test_orgs_create_with_a_slug_and_no_owner(app, runner):
    result = runner.invoke(args=["orgs", "create", "Studio Nine", "--slug", "s9"])
    assert result.exit_code == 0, result.output
    assert result.output == "s9\n"
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("s9") == {}


@both_databases
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug", "acme"], "slug 'acme': That address is taken."),
        (["--slug", "Not_A_Slug"], "slug 'Not_A_Slug': Use 2–63 lower-case letters"),
        (["--slug", "admin"], "slug 'admin': That address is reserved."),
        (["--owner", "nobody@example.com"], "no user with email 'nobody@example.com'"),
    ],
)
def test_orgs_create_refuses_with_one_clear_line(app, runner, ada, args, message):
    result = runner.invoke(args=["orgs", "create", "Another", *args])
    assert_one_error_line(result, message)
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(Organization) == 1


def test_orgs_create_refuses_an_overlong_name(app, runner):
    result = runner.invoke(args=["orgs", "create", "x" * 101])
    assert_one_error_line(result, "1–100 characters")


@both_databases
def test_orgs_list_is_a_table_by_name_with_member_counts(app, runner, ada):
    with app.app_context(), tenancy.all_tenants("test setup"):
        zeta = factories.make_org(slug="zeta", name="zeta works")
        factories.make_org(slug="beta", name="Beta Voices")
        for _ in range(2):
            factories.make_membership(factories.make_user(), zeta)
        db.session.commit()

    result = runner.invoke(args=["orgs", "list"])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:3] == ["SLUG", "NAME", "MEMBERS"]
    assert [row.split("  ")[0] for row in rows] == ["acme", "beta", "zeta"]
    assert [row.split()[-3] for row in rows] == ["1", "0", "2"]  # then date and time


def test_orgs_list_says_when_there_are_none(runner):
    result = runner.invoke(args=["orgs", "list"])
    assert result.exit_code == 0
    assert "No organisations yet" in result.output


def test_commands_on_an_unmigrated_database_say_so(app, runner):
    with app.app_context():
        db.drop_all()
    result = runner.invoke(args=["orgs", "list"])
    assert_one_error_line(result, "no accounts tables; run `flask db upgrade` first")


# ------------------------------------------------------------------------ users


@both_databases
def test_users_create_reads_the_password_from_stdin(app, runner, ada):
    result = runner.invoke(
        args=[
            "users", "create", "Grace@Example.com", "--name", "Grace Hopper",
            "--org", "acme", "--role", "admin", "--password-stdin",
        ],
        input=f"{PASSWORD}\nignored second line\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "Created grace@example.com (Grace Hopper), admin of acme.\n"
    assert PASSWORD not in result.output
    with app.app_context(), tenancy.all_tenants("test"):
        grace = user_by_email("grace@example.com")
        assert grace.display_name == "Grace Hopper"
        assert verify_password(grace.password_hash, PASSWORD)
        assert roles("acme")["grace@example.com"] is MemberRole.ADMIN


def test_users_create_with_org_defaults_to_member(app, runner, ada):
    result = runner.invoke(
        args="users create g@example.com --name G --org acme --password-stdin".split(),
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("acme")["g@example.com"] is MemberRole.MEMBER


def test_users_create_prompts_hidden_with_confirmation_until_good(app, runner):
    answers = ["short", "short", PASSWORD, OTHER_PASSWORD, PASSWORD, PASSWORD]
    result = runner.invoke(
        args=["users", "create", "grace@example.com", "--name", "Grace"],
        input="\n".join(answers) + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password refused: Use at least 10 characters." in result.output
    assert "Error: The two entered values do not match." in result.output
    assert result.output.count("Repeat password: ") == 3
    assert PASSWORD not in result.output and "short" not in result.output  # not echoed
    with app.app_context(), tenancy.all_tenants("test"):
        assert verify_password(user_by_email("grace@example.com").password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("short\n", "password refused: Use at least 10 characters."),
        ("", "stdin has no password on its first line"),
        ("\n" + PASSWORD + "\n", "stdin has no password on its first line"),
        (" " * 12 + "\n", "password refused: A password can't be only spaces."),
    ],
)
def test_users_create_refuses_a_bad_password_on_stdin(app, runner, stdin, message):
    result = runner.invoke(
        args=["users", "create", "grace@example.com", "--name", "Grace", "--password-stdin"],
        input=stdin,
    )
    assert_one_error_line(result, message)
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(User) == 0


@both_databases
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ada@example.com", "--name", "Ada"], "ada@example.com already has an account"),
        (["ADA@example.com ", "--name", "Ada"], "ada@example.com already has an account"),
        (["g@example.com", "--name", "G", "--org", "nope"], "no organisation with slug 'nope'"),
        (["g@example.com", "--name", "G", "--role", "admin"], "--role needs --org"),
        (["not-an-email", "--name", "G"], "'not-an-email' is not an email address"),
        (["g@example.com", "--name", "  "], "--name needs 1–100 characters"),
    ],
)
def test_users_create_refuses_before_asking_for_a_password(app, runner, ada, args, message):
    result = runner.invoke(args=["users", "create", *args])  # no input: a prompt would abort
    assert_one_error_line(result, message)
    assert "Password" not in result.output
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(User) == 1


def test_users_create_refuses_an_unknown_role(runner):
    result = runner.invoke(
        args=["users", "create", "g@example.com", "--name", "G", "--role", "god"]
    )
    assert (
        result.exit_code == 2 and "'god' is not one of 'owner', 'admin', 'member'" in result.output
    )


def all_commands(group: click.Group, ctx: click.Context, path: str = ""):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, ctx, f"{path}{name} ")
        else:
            yield f"{path}{name}", command


def test_no_command_takes_a_password_as_an_argument(app):
    cli = app.cli
    with click.Context(cli) as ctx:
        commands = dict(all_commands(cli, ctx))
    mine = {"orgs create", "orgs list", "users create", "users add-member", "users set-password"}
    assert mine | {"users list", "seed"} <= commands.keys()
    for path, command in commands.items():
        for param in command.params:
            if param.name == "password_stdin":
                assert param.is_flag, path  # a switch, not a value
                continue
            assert "password" not in param.name, (path, param.name)
            assert not any("pass" in opt for opt in param.opts), (path, param.opts)


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "g@example.com", "--name", "G", "--password", PASSWORD],
        ["users", "set-password", "ada@example.com", "--password", PASSWORD],
    ],
)
def test_a_password_option_is_rejected(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and "No such option '--password'" in result.output


@both_databases
def test_add_member_adds_then_changes_the_role(app, runner, ada, bob):
    added = add_member(runner, "bob@example.com", "acme", "member")
    assert added.exit_code == 0, added.output
    assert added.output == "Added bob@example.com to acme as member.\n"
    changed = add_member(runner, "Bob@example.com", "acme", "owner")
    assert changed.output == "Changed bob@example.com's role in acme from member to owner.\n"
    same = add_member(runner, "bob@example.com", "acme", "owner")
    assert same.output == "bob@example.com is already owner of acme; nothing changed.\n"
    # With a second owner, the first may step down.
    demoted = add_member(runner, "ada@example.com", "acme", "admin")
    assert demoted.exit_code == 0, demoted.output
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("acme") == {
            "ada@example.com": MemberRole.ADMIN,
            "bob@example.com": MemberRole.OWNER,
        }


@both_databases
@pytest.mark.parametrize("role", ["admin", "member"])
def test_add_member_refuses_to_demote_the_last_owner(app, runner, ada, bob, role):
    with app.app_context(), tenancy.all_tenants("test setup"):
        acme = db.session.scalars(select(Organization).where(Organization.slug == "acme")).one()
        factories.make_membership(user_by_email("bob@example.com"), acme, MemberRole.ADMIN)
        db.session.commit()

    result = add_member(runner, "ada@example.com", "acme", role)
    # The web's words for the same rule (members.services.NEEDS_AN_OWNER): one rule, one message.
    assert_one_error_line(result, "An organisation needs at least one owner.")
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("acme") == {
            "ada@example.com": MemberRole.OWNER,
            "bob@example.com": MemberRole.ADMIN,
        }


@both_databases
def test_add_member_counts_only_that_organisations_owners(app, runner, ada, bob):
    """An owner of another organisation doesn't let acme's only owner step down."""
    with app.app_context(), tenancy.all_tenants("test setup"):
        factories.make_membership(
            user_by_email("bob@example.com"), factories.make_org(slug="beta"), MemberRole.OWNER
        )
        db.session.commit()

    result = add_member(runner, "ada@example.com", "acme", "member")
    assert_one_error_line(result, "An organisation needs at least one owner.")
    assert add_member(runner, "ada@example.com", "beta", "member").exit_code == 0
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("acme") == {"ada@example.com": MemberRole.OWNER}
        assert roles("beta")["ada@example.com"] is MemberRole.MEMBER


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "acme", "--role", "member"], "no user with email"),
        (["ada@example.com", "nope", "--role", "member"], "no organisation with slug 'nope'"),
    ],
)
def test_add_member_refuses_unknown_users_and_orgs(runner, ada, args, message):
    assert_one_error_line(runner.invoke(args=["users", "add-member", *args]), message)


def test_add_member_needs_a_role(runner, ada):
    result = runner.invoke(args=["users", "add-member", "ada@example.com", "acme"])
    assert result.exit_code == 2 and "Missing option '--role'" in result.output


@both_databases
def test_set_password_from_stdin_changes_it_and_ends_sessions(app, runner, ada, bob):
    open_sessions_for(app, "ada@example.com", "bob@example.com")

    result = runner.invoke(
        args=["users", "set-password", "ada@example.com", "--password-stdin"],
        input=OTHER_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password changed for ada@example.com" in result.output
    assert "sessions have ended" in result.output
    with app.app_context(), tenancy.all_tenants("test"):
        ada = user_by_email("ada@example.com")
        assert verify_password(ada.password_hash, OTHER_PASSWORD)
        assert not verify_password(ada.password_hash, PASSWORD)
    assert session_owners(app) == ["bob@example.com"]  # only ada's sessions ended


def test_set_password_by_prompt(app, runner, ada):
    result = runner.invoke(
        args=["users", "set-password", "ada@example.com"],
        input=f"{OTHER_PASSWORD}\n{PASSWORD}\n{OTHER_PASSWORD}\n{OTHER_PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Error: The two entered values do not match." in result.output
    with app.app_context(), tenancy.all_tenants("test"):
        assert verify_password(user_by_email("ada@example.com").password_hash, OTHER_PASSWORD)


def test_set_password_refuses_unknown_users_and_weak_passwords(app, runner, ada):
    unknown = runner.invoke(args=["users", "set-password", "nobody@example.com"])
    assert_one_error_line(unknown, "no user with email 'nobody@example.com'")
    weak = runner.invoke(
        args=["users", "set-password", "ada@example.com", "--password-stdin"], input="short\n"
    )
    assert_one_error_line(weak, "password refused")
    with app.app_context(), tenancy.all_tenants("test"):
        assert verify_password(user_by_email("ada@example.com").password_hash, PASSWORD)


@both_databases
def test_users_list_everyone_or_one_org(app, runner, ada):
    with app.app_context(), tenancy.all_tenants("test setup"):
        beta = factories.make_org(slug="beta", name="Beta")
        bob = factories.make_user(email="bob@example.com", display_name="Bob")
        factories.make_membership(bob, beta, MemberRole.ADMIN)
        factories.make_user(email="cy@example.com", display_name="Cy")
        ada = user_by_email("ada@example.com")
        factories.make_membership(ada, beta, MemberRole.MEMBER)
        db.session.commit()

    everyone = runner.invoke(args=["users", "list"])
    assert everyone.exit_code == 0, everyone.output
    header, *rows = everyone.output.splitlines()
    assert header.split()[:3] == ["EMAIL", "NAME", "ORGANISATIONS"]
    assert [row.split()[0] for row in rows] == [
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert "acme (owner), beta (member)" in rows[0]
    assert "beta (admin)" in rows[1] and " - " in rows[2]

    beta_only = runner.invoke(args=["users", "list", "--org", "beta"])
    header, *rows = beta_only.output.splitlines()
    assert header.split()[:3] == ["EMAIL", "NAME", "ROLE"]
    assert [row.split()[:3] for row in rows] == [
        ["ada@example.com", "Ada", "member"],
        ["bob@example.com", "Bob", "admin"],
    ]
    assert_one_error_line(runner.invoke(args=["users", "list", "--org", "nope"]), "nope")


# ------------------------------------------------------------------ seed --demo


def credentials(output: str) -> list[str]:
    """Return the login table `seed --demo` prints (the lines after "Log in at")."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Log in at"))
    return lines[start:]


def demo_state() -> dict[str, tuple[MemberRole, str, list[uuid.UUID]]]:
    """Return {email: (role, password hash, open session ids)} of the demo org's members."""
    rows = db.session.execute(
        select(User.email, Membership.role, User.password_hash, User.id)
        .join(Membership, Membership.user_id == User.id)
        .join(Organization, Organization.id == Membership.org_id)
        .where(Organization.slug == "demo")
    ).all()
    return {
        email: (
            role,
            pw,
            sorted(
                db.session.scalars(select(UserSession.id).where(UserSession.user_id == user_id))
            ),
        )
        for email, role, pw, user_id in rows
    }


@both_databases
def test_seed_demo_creates_one_org_with_three_logins_and_reruns_change_nothing(app, runner, client):
    first = runner.invoke(args=["seed", "--demo"])
    assert first.exit_code == 0, first.output
    assert "System voices: 20 created" in first.output
    assert "Demo: created the organisation Demo Studio (demo)" in first.output
    table = credentials(first.output)
    assert table == [
        "Log in at http://127.0.0.1:5000/login as:",
        "  ROLE    EMAIL                      PASSWORD",
        "  owner   owner@demo.voxboard.test   demo-owner-2026",
        "  admin   admin@demo.voxboard.test   demo-admin-2026",
        "  member  member@demo.voxboard.test  demo-member-2026",
    ]
    with app.app_context(), tenancy.all_tenants("test"):
        org = db.session.scalars(select(Organization)).one()
        assert (org.slug, org.name) == ("demo", "Demo Studio")
        state = demo_state()
        assert {email: role for email, (role, _, _) in state.items()} == {
            "owner@demo.voxboard.test": MemberRole.OWNER,
            "admin@demo.voxboard.test": MemberRole.ADMIN,
            "member@demo.voxboard.test": MemberRole.MEMBER,
        }
        assert count(User) == 3 and count(Membership) == 3

    # Open sessions show whether a re-run reset anyone's password (which ends them).
    open_sessions_for(app, *(account.email for account in DEMO_ACCOUNTS))
    with app.app_context(), tenancy.all_tenants("test"):
        state = demo_state()
        assert all(sessions for _, _, sessions in state.values())
    second = runner.invoke(args=["seed", "--demo"])
    assert second.exit_code == 0, second.output
    assert "Demo: nothing to do; Demo Studio (demo) and its logins are there." in second.output
    assert credentials(second.output) == table
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(Organization) == 1 and count(User) == 3 and count(Membership) == 3
        assert demo_state() == state  # same hashes: nothing was reset

    # The printed logins work.
    for account in DEMO_ACCOUNTS:
        response = client.post(
            "/login", data={"email": account.email, "password": account.password}
        )
        assert response.status_code == 303, account.email
        client.post("/logout")


def test_seed_demo_prints_the_login_url_for_base_url(runner):
    result = runner.invoke(args=["seed", "--demo", "--base-url", "http://localhost:8080"])
    assert result.exit_code == 0, result.output
    assert "Log in at http://localhost:8080/login as:" in result.output


@both_databases
def test_seed_demo_never_resets_what_someone_changed(app, runner):
    assert runner.invoke(args=["seed", "--demo"]).exit_code == 0
    result = runner.invoke(
        args=["users", "set-password", "member@demo.voxboard.test", "--password-stdin"],
        input=OTHER_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    open_sessions_for(app, *(account.email for account in DEMO_ACCOUNTS))
    with app.app_context(), tenancy.all_tenants("test"):
        admin = user_by_email("admin@demo.voxboard.test")
        db.session.delete(
            db.session.scalars(select(Membership).where(Membership.user_id == admin.id)).one()
        )
        db.session.commit()
        before = demo_state()

    again = runner.invoke(args=["seed", "--demo"])
    assert again.exit_code == 0, again.output
    assert (
        "Demo: Demo Studio (demo) was there; restored 1 missing login(s) and 0 missing voice(s)."
        in again.output
    )
    assert "  member  member@demo.voxboard.test  (changed since seeded; not reset)" in again.output
    assert (
        "member@demo.voxboard.test's password was changed after seeding and was left alone"
        in again.output
    )
    assert "demo-member-2026" not in again.output
    with app.app_context(), tenancy.all_tenants("test"):
        after = demo_state()
        assert after["member@demo.voxboard.test"] == before["member@demo.voxboard.test"]
        assert after["admin@demo.voxboard.test"][0] is MemberRole.ADMIN  # membership restored
        member = user_by_email("member@demo.voxboard.test")
        assert verify_password(member.password_hash, OTHER_PASSWORD)


def test_seed_demo_shows_a_changed_role_without_restoring_it(app, runner):
    assert runner.invoke(args=["seed", "--demo"]).exit_code == 0
    add_member(runner, "member@demo.voxboard.test", "demo", "admin")
    again = runner.invoke(args=["seed", "--demo"])
    assert "  admin (seeded as member)  member@demo.voxboard.test" in again.output
    with app.app_context(), tenancy.all_tenants("test"):
        assert roles("demo")["member@demo.voxboard.test"] is MemberRole.ADMIN


@both_databases
def test_seed_demo_is_refused_in_production(app, runner):
    app.config["ENV_NAME"] = "production"
    result = runner.invoke(args=["seed", "--demo"])
    assert_one_error_line(result, "--demo is refused in production (DASHBOARD_ENV=production)")
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(Organization) == 0 and count(User) == 0
        assert count(Voice) == 0  # refused before seeding anything


def test_seed_demo_leaves_a_real_org_that_took_the_slug_alone(app, runner, ada):
    with app.app_context(), tenancy.all_tenants("test setup"):
        db.session.scalars(
            select(Organization).where(Organization.slug == "acme")
        ).one().slug = "demo"
        db.session.commit()
    result = runner.invoke(args=["seed", "--demo"])
    assert_one_error_line(result, "the slug 'demo' belongs to 'Acme Audio', which isn't the demo")
    with app.app_context(), tenancy.all_tenants("test"):
        assert count(User) == 1 and roles("demo") == {"ada@example.com": MemberRole.OWNER}
