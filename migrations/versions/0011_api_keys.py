"""API keys, their per-day request counters and idempotent requests; who submitted what.

Revision ID: 0011_api_keys
Revises: 0010_usage_ledger
Create Date: 2026-12-07

- `api_keys`: one row per organisation API key; only the secret's keyed hash is
  stored (unique), with its last four characters for people to recognise it.
- `api_key_days`: requests, errors and characters per key per day (an upsert per
  API request, not a row).
- `api_idempotency_keys`: `Idempotency-Key` of a generation submission, kept a day.
- `generations.api_key_id` and `usage_ledger.api_key_id`: the key that submitted a
  generation and was charged for it (NULL from the dashboard; no foreign key); the ledger's index
  on `(api_key_id, counted_at)` serves a key's own monthly limit.

PostgreSQL: row-level security like every tenant table; `api_keys_own_read` also lets
a request read the one key whose hash it presents in `app.api_key_hash`, which is how
an API request finds its organisation before any organisation is in scope.
"""

import sqlalchemy as sa
from alembic import op

import dashboard.models.base

revision = "0011_api_keys"
down_revision = "0010_usage_ledger"
branch_labels = None
depends_on = None

CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"
PRESENTED_KEY = "NULLIF(current_setting('app.api_key_hash', true), '')"
TABLES = ("api_keys", "api_key_days", "api_idempotency_keys")
UTC = dashboard.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("last_four", sa.String(length=4), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("monthly_character_limit", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTC, nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("last_used_at", UTC, nullable=True),
        sa.Column("last_used_ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.CheckConstraint("length(last_four) = 4", name=op.f("ck_api_keys_last_four_length")),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name=op.f("ck_api_keys_name_length")),
        sa.CheckConstraint(
            "monthly_character_limit IS NULL OR monthly_character_limit >= 1",
            name=op.f("ck_api_keys_monthly_character_limit_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_api_keys_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_api_keys_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["users.id"], name=op.f("fk_api_keys_revoked_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("org_id", "id", name="uq_api_keys_org_id_id"),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )  # fmt: skip
    op.create_index("ix_api_keys_org_id_created_at", "api_keys", ["org_id", "created_at"])

    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTC, server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "api_key_id"], ["api_keys.org_id", "api_keys.id"],
            name="fk_api_idempotency_keys_org_id_api_keys", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"],
            name=op.f("fk_api_idempotency_keys_org_id_organizations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_keys_api_key_id_key"),
    )  # fmt: skip
    op.create_index("ix_api_idempotency_keys_created_at", "api_idempotency_keys", ["created_at"])

    op.create_table(
        "api_key_days",
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("requests", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("characters", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "requests >= 0 AND errors >= 0 AND characters >= 0",
            name=op.f("ck_api_key_days_counts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "api_key_id"], ["api_keys.org_id", "api_keys.id"],
            name="fk_api_key_days_org_id_api_keys", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"],
            name=op.f("fk_api_key_days_org_id_organizations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "day", name=op.f("pk_api_key_days")),
    )  # fmt: skip
    op.create_index("ix_api_key_days_org_id_day", "api_key_days", ["org_id", "day"])

    postgres = op.get_bind().dialect.name == "postgresql"
    # No foreign keys: keys are revoked, never deleted while their org lives (and the
    # org's deletion takes its generations and ledger with it).
    op.add_column("generations", sa.Column("api_key_id", sa.Uuid(), nullable=True))
    op.add_column("usage_ledger", sa.Column("api_key_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_usage_ledger_api_key_id_counted_at", "usage_ledger", ["api_key_id", "counted_at"]
    )

    if postgres:
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_org_rows ON {table} FOR ALL "
                f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
            )
        op.execute(
            "CREATE POLICY api_keys_own_read ON api_keys FOR SELECT "
            f"USING (secret_hash = {PRESENTED_KEY})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS api_keys_own_read ON api_keys")
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS {table}_org_rows ON {table}")
    op.drop_index("ix_usage_ledger_api_key_id_counted_at", table_name="usage_ledger")
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): no copy of the big tables.
    op.drop_column("usage_ledger", "api_key_id")
    op.drop_column("generations", "api_key_id")
    op.drop_index("ix_api_key_days_org_id_day", table_name="api_key_days")
    op.drop_table("api_key_days")
    op.drop_index("ix_api_idempotency_keys_created_at", table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
    op.drop_index("ix_api_keys_org_id_created_at", table_name="api_keys")
    op.drop_table("api_keys")
