"""Analytics revision per organisation: the analytics page's cache key.

Revision ID: 0007_analytics_revision
Revises: 0006_analytics
Create Date: 2026-12-01

`organizations.analytics_revision` (NOT NULL, 0 for existing rows) is bumped by the
snapshot upsert in the same transaction as the snapshot rows it changes. The org row
is loaded on every org page anyway, so the analytics page can tell whether its
cached figures of past days are still current without a statement of its own.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_analytics_revision"
down_revision = "0006_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.add_column(
            sa.Column("analytics_revision", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.drop_column("analytics_revision")
