"""Server-side login sessions (user_sessions), disabled users; drop users.session_token.

Revision ID: 0009_user_sessions
Revises: 0008_voice_languages
Create Date: 2026-12-02

A session cookie now names a `user_sessions` row, so logging out, changing the
password or disabling the user ends it on the server. The per-user token the old
cookies carried goes: everybody logs in once more after this upgrade. The table is
user-scoped like `users` (no row-level security: it is read before any organisation
is in scope); `flask rls grant` gives the web role DML on it like every other table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_user_sessions"
down_revision = "0008_voice_languages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"])
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("session_token")


def downgrade() -> None:
    # Every user gets a fresh random token, so no session from before survives.
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("session_token", sa.String(length=64), nullable=False, server_default="0")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE users SET session_token = md5(random()::text || id::text)")
    else:
        op.execute("UPDATE users SET session_token = lower(hex(randomblob(16)))")
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("session_token", server_default=None)
        batch_op.drop_column("disabled_at")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
