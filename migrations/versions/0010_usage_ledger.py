"""The usage ledger: quota counts what was generated, not what is left in the history.

Revision ID: 0010_usage_ledger
Revises: 0009_user_sessions
Create Date: 2026-12-07

One append-only line per accepted submission (a charge) and per final failure (a
refund), with no foreign key to the generation or the user, so deleting either leaves
the month's sum alone. `(org_id, counted_at)` serves "this org's month". PostgreSQL:
row-level security like the other tenant tables.

The upgrade writes a charge for every generation that has not failed, counted when it
was created, so this month's usage is what it was before the upgrade (generations
deleted before it are gone and cannot be charged after the fact).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_usage_ledger"
down_revision = "0009_user_sessions"
branch_labels = None
depends_on = None

CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "usage_ledger",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("web", "api", name="usage_source", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "charge", "refund", name="usage_kind", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("characters", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'charge' AND characters > 0) OR (kind = 'refund' AND characters < 0)",
            name=op.f("ck_usage_ledger_sign_matches_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_usage_ledger_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_ledger")),
    )
    op.create_index("ix_usage_ledger_org_id_counted_at", "usage_ledger", ["org_id", "counted_at"])
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    # Ids for the backfill: PostgreSQL makes them; on SQLite a UUID is 32 hex digits
    # (SQLAlchemy's Uuid there). New rows get UUIDv7 from the app; nothing orders the
    # ledger by id.
    new_id = "gen_random_uuid()" if postgres else "lower(hex(randomblob(16)))"
    op.execute(
        "INSERT INTO usage_ledger "
        "(id, org_id, generation_id, user_id, source, kind, characters, counted_at, created_at) "
        f"SELECT {new_id}, org_id, id, created_by, 'web', 'charge', character_count, "
        "created_at, CURRENT_TIMESTAMP FROM generations "
        "WHERE status <> 'failed' AND character_count > 0"
    )
    if postgres:
        op.execute("ALTER TABLE usage_ledger ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE usage_ledger FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY usage_ledger_org_rows ON usage_ledger FOR ALL "
            f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS usage_ledger_org_rows ON usage_ledger")
    op.drop_index("ix_usage_ledger_org_id_counted_at", table_name="usage_ledger")
    op.drop_table("usage_ledger")
