"""Daily analytics snapshots per organisation, behind row-level security.

Revision ID: 0006_analytics
Revises: 0005_generation_jobs
Create Date: 2026-12-01

One row per organisation and UTC day (`UNIQUE (org_id, day)`, whose index also serves
"the org's days from D1 to D2"), with the day's totals and JSON breakdowns by voice,
category and member. PostgreSQL: row-level security like the other tenant tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_analytics"
down_revision = "0005_generation_jobs"
branch_labels = None
depends_on = None

CURRENT_ORG = "NULLIF(current_setting('app.current_org', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "analytics_snapshots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("generations_succeeded", sa.Integer(), nullable=False),
        sa.Column("generations_failed", sa.Integer(), nullable=False),
        sa.Column("characters", sa.BigInteger(), nullable=False),
        sa.Column("audio_ms", sa.BigInteger(), nullable=False),
        sa.Column("voices_used", sa.Integer(), nullable=False),
        sa.Column("custom_voices", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("by_voice", sa.JSON(), nullable=False),
        sa.Column("by_category", sa.JSON(), nullable=False),
        sa.Column("by_member", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "generations_succeeded >= 0 AND generations_failed >= 0 AND characters >= 0 "
            "AND audio_ms >= 0 AND voices_used >= 0 AND custom_voices >= 0 AND members >= 0",
            name=op.f("ck_analytics_snapshots_counts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_analytics_snapshots_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_snapshots")),
        sa.UniqueConstraint("org_id", "day", name=op.f("uq_analytics_snapshots_org_id_day")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE analytics_snapshots ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE analytics_snapshots FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY analytics_snapshots_org_rows ON analytics_snapshots FOR ALL "
            f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS analytics_snapshots_org_rows ON analytics_snapshots")
    op.drop_table("analytics_snapshots")
