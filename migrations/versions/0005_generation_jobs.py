"""Generations as background jobs, their history filters and monthly quotas.

Revision ID: 0005_generation_jobs
Revises: 0004_voice_search
Create Date: 2026-12-01

- `generations`: `attempts`, `started_at`, `finished_at` (the job's life, read by the
  reaper) and `peaks` (the player's waveform, computed once when the audio is written).
- History indexes, all ending in `(created_at DESC, id DESC)` so every filtered page is
  one index range scan: by voice (`voice_id` first, which also serves the foreign key's
  SET NULL; it replaces the plain `ix_generations_voice_id`), by status, and by the
  snapshot name of a deleted voice (partial, `voice_id IS NULL`). A partial index of
  unfinished rows for the reaper. No index on `text`: under row-level security
  PostgreSQL can't use one for ILIKE (not leakproof), so searches walk bounded
  windows of the history index instead.
- `organizations.monthly_character_limit` (NULL: unlimited).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_generation_jobs"
down_revision = "0004_voice_search"
branch_labels = None
depends_on = None

HISTORY_TAIL = [sa.text("created_at DESC"), sa.text("id DESC")]


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch_op:
        batch_op.add_column(sa.Column("peaks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint("attempts_positive", "attempts >= 0")
        batch_op.drop_index("ix_generations_voice_id")
    op.create_index(
        "ix_generations_voice_org_created",
        "generations",
        ["voice_id", "org_id", *HISTORY_TAIL],
        unique=False,
    )
    op.create_index(
        "ix_generations_org_status_created",
        "generations",
        ["org_id", "status", *HISTORY_TAIL],
        unique=False,
    )
    op.create_index(
        "ix_generations_org_deleted_voice",
        "generations",
        ["org_id", "voice_name", *HISTORY_TAIL],
        unique=False,
        sqlite_where=sa.text("voice_id IS NULL"),
        postgresql_where=sa.text("voice_id IS NULL"),
    )
    op.create_index(
        "ix_generations_unfinished",
        "generations",
        ["status", "updated_at"],
        unique=False,
        sqlite_where=sa.text("status IN ('queued', 'running')"),
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.add_column(sa.Column("monthly_character_limit", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            "monthly_character_limit_positive",
            "monthly_character_limit IS NULL OR monthly_character_limit >= 0",
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.drop_constraint("ck_organizations_monthly_character_limit_positive")
        batch_op.drop_column("monthly_character_limit")
    for name in (
        "ix_generations_unfinished",
        "ix_generations_org_deleted_voice",
        "ix_generations_org_status_created",
        "ix_generations_voice_org_created",
    ):
        op.drop_index(name, table_name="generations")
    with op.batch_alter_table("generations") as batch_op:
        batch_op.create_index("ix_generations_voice_id", ["voice_id"], unique=False)
        batch_op.drop_constraint("ck_generations_attempts_positive")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("started_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("peaks")
