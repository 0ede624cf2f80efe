"""Row-level security on the tenant tables: the database's half of tenant isolation.

Revision ID: 0003_rls
Revises: 0002_accounts
Create Date: 2026-11-23

PostgreSQL only (SQLite has no row-level security; this revision is a no-op there).
Every policy reads the organisation (and user) that `dashboard/tenancy/rls.py` copies into
`app.current_org` / `app.current_user` at the start of each transaction. An unset or
empty setting matches nothing, so a connection that forgot to set it sees only system
voices. FORCE makes the table owner obey the policies too; only superusers and
BYPASSRLS roles (the operator role, see docs/operations.md) get past them.
"""

from alembic import op

revision = "0003_rls"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None

# `true`: a missing setting reads as NULL instead of raising; NULLIF: a setting that was
# set in an earlier transaction reverts to '' (not NULL), which must match nothing too.
CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"
CURRENT_USER = "NULLIF(current_setting('app.current_user', true), '')::uuid"

TENANT_TABLES = ("voices", "generations", "memberships", "invitations")

# (table, policy, command, USING, WITH CHECK). Permissive policies for one command are
# OR-ed, so each table's `*_org_rows` (FOR ALL: reads and writes of the org in scope) is
# widened for reads only by the SELECT policies: shared system voices, and a user's
# own memberships in every org (the org switcher runs before any org is in scope).
POLICIES: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("voices", "voices_org_rows", "ALL", f"org_id = {CURRENT_ORG}", f"org_id = {CURRENT_ORG}"),
    ("voices", "voices_system_read", "SELECT", "org_id IS NULL", None),
    (
        "generations",
        "generations_org_rows",
        "ALL",
        f"org_id = {CURRENT_ORG}",
        f"org_id = {CURRENT_ORG}",
    ),
    (
        "memberships",
        "memberships_org_rows",
        "ALL",
        f"org_id = {CURRENT_ORG}",
        f"org_id = {CURRENT_ORG}",
    ),
    ("memberships", "memberships_own_read", "SELECT", f"user_id = {CURRENT_USER}", None),
    (
        "invitations",
        "invitations_org_rows",
        "ALL",
        f"org_id = {CURRENT_ORG}",
        f"org_id = {CURRENT_ORG}",
    ),
)


def is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not is_postgresql():
        return
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for table, name, command, using, check in POLICIES:
        with_check = f" WITH CHECK ({check})" if check else ""
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} USING ({using}){with_check}")


def downgrade() -> None:
    if not is_postgresql():
        return
    for table, name, *_ in reversed(POLICIES):
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
