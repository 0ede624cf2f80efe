"""Webhooks: endpoints (secrets encrypted), events and deliveries (the outbox), attempts.

Revision ID: 0013_webhooks
Revises: 0012_analytics_sources
Create Date: 2026-12-08

- `webhook_endpoints`: an org's URLs, subscribed event types and signing secret (a
  Fernet token, `dashboard.encryption`; the previous one kept 24 hours after a rotation).
- `webhook_events`: what happened, with the payload as it will be sent.
- `webhook_deliveries`: one per event and subscribed endpoint, written in the event's
  transaction (the outbox); the sweep reads `(status, next_attempt_at)`.
- `webhook_attempts`: each try, the endpoint's delivery log.

Composite foreign keys on `(org_id, …)` keep every row in its endpoint's org.
PostgreSQL: row-level security like every tenant table.
"""

import sqlalchemy as sa
from alembic import op

import dashboard.models.base

revision = "0013_webhooks"
down_revision = "0012_analytics_sources"
branch_labels = None
depends_on = None

CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"
TABLES = ("webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts")
UTC = dashboard.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", UTC, nullable=True),
        sa.Column("disabled_at", UTC, nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", UTC, nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTC, server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name=op.f("ck_webhook_endpoints_failures_positive")
        ),
        sa.CheckConstraint(
            "length(description) <= 200", name=op.f("ck_webhook_endpoints_description_length")
        ),
        sa.CheckConstraint(
            "length(url) BETWEEN 1 AND 2000", name=op.f("ck_webhook_endpoints_url_length")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_webhook_endpoints_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_endpoints_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("org_id", "id", name="uq_webhook_endpoints_org_id_id"),
    )
    op.create_index(
        "ix_webhook_endpoints_org_id_created_at",
        "webhook_endpoints",
        ["org_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_events_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("org_id", "id", name="uq_webhook_events_org_id_id"),
    )
    op.create_index(
        "ix_webhook_events_org_id_created_at",
        "webhook_events",
        ["org_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("attempted_at", UTC, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "endpoint_id"],
            ["webhook_endpoints.org_id", "webhook_endpoints.id"],
            name="fk_webhook_attempts_endpoint",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_attempts_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        "ix_webhook_attempts_endpoint_id_attempted_at",
        "webhook_attempts",
        ["endpoint_id", "attempted_at"],
        unique=False,
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                "cancelled",
                name="webhook_delivery_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_positive")),
        sa.ForeignKeyConstraint(
            ["org_id", "endpoint_id"],
            ["webhook_endpoints.org_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id", "event_id"],
            ["webhook_events.org_id", "webhook_events.id"],
            name="fk_webhook_deliveries_event",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_deliveries_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_created_at",
        "webhook_deliveries",
        ["endpoint_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )

    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_org_rows ON {table} FOR ALL "
                f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS {table}_org_rows ON {table}")
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_id_created_at", table_name="webhook_deliveries")

    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_attempts_endpoint_id_attempted_at", table_name="webhook_attempts")

    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_events_org_id_created_at", table_name="webhook_events")

    op.drop_table("webhook_events")
    op.drop_index("ix_webhook_endpoints_org_id_created_at", table_name="webhook_endpoints")

    op.drop_table("webhook_endpoints")
