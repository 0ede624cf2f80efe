"""Initial schema: organisations, users, memberships, voices, generations.

Reviewed by hand after autogenerate: timestamps use the plain `DateTime(timezone=True)`
(the model's UTCDateTime only changes how Python sees values), defaults are the
portable CURRENT_TIMESTAMP, and every rule of product.md is a named constraint.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_organizations_name_length")
        ),
        sa.CheckConstraint(
            "length(slug) BETWEEN 2 AND 63", name=op.f("ck_organizations_slug_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.CheckConstraint("length(email) BETWEEN 3 AND 254", name=op.f("ck_users_email_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "admin",
                "member",
                name="member_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_memberships_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("user_id", "org_id", name=op.f("uq_memberships_user_id_org_id")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_org_id"), ["org_id"], unique=False)

    op.create_table(
        "voices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column(
            "category",
            sa.Enum(
                "AUDIOBOOK",
                "CONVERSATIONAL",
                "CUSTOMER_SERVICE",
                "GENERAL",
                "NARRATIVE",
                "CHARACTERS",
                "MEDITATION",
                "MOTIVATIONAL",
                "PODCAST",
                "ADVERTISING",
                "VOICEOVER",
                "CORPORATE",
                name="voice_category",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="GENERAL",
            nullable=False,
        ),
        sa.Column("language", sa.String(length=35), server_default="en-US", nullable=False),
        sa.Column(
            "variant",
            sa.Enum(
                "SYSTEM", "CUSTOM", name="voice_variant", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("audio_key", sa.String(length=1024), nullable=True),
        sa.Column("audio_sha256", sa.String(length=64), nullable=True),
        sa.Column("audio_size", sa.BigInteger(), nullable=True),
        sa.Column("audio_duration_ms", sa.Integer(), nullable=True),
        sa.Column("audio_content_type", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(variant = 'SYSTEM' AND org_id IS NULL) "
            "OR (variant = 'CUSTOM' AND org_id IS NOT NULL)",
            name=op.f("ck_voices_variant_matches_org"),
        ),
        sa.CheckConstraint(
            "audio_duration_ms IS NULL OR audio_duration_ms >= 0",
            name=op.f("ck_voices_audio_duration_positive"),
        ),
        sa.CheckConstraint(
            "audio_size IS NULL OR audio_size >= 0", name=op.f("ck_voices_audio_size_positive")
        ),
        sa.CheckConstraint(
            "description IS NULL OR length(description) <= 500",
            name=op.f("ck_voices_description_length"),
        ),
        sa.CheckConstraint(
            "length(language) BETWEEN 2 AND 35", name=op.f("ck_voices_language_length")
        ),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name=op.f("ck_voices_name_length")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_voices_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voices")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_voices_org_id_name")),
    )
    with op.batch_alter_table("voices", schema=None) as batch_op:
        batch_op.create_index("ix_voices_variant", ["variant"], unique=False)
        batch_op.create_index(
            "uq_voices_system_name",
            ["name"],
            unique=True,
            sqlite_where=sa.text("org_id IS NULL"),
            postgresql_where=sa.text("org_id IS NULL"),
        )

    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("voice_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("voice_name", sa.String(length=100), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("top_p", sa.Float(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("repetition_penalty", sa.Float(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                name="generation_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="queued",
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("character_count", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("engine", sa.String(length=64), nullable=True),
        sa.Column("audio_key", sa.String(length=1024), nullable=True),
        sa.Column("audio_size", sa.BigInteger(), nullable=True),
        sa.Column("audio_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status <> 'failed' OR error IS NOT NULL", name=op.f("ck_generations_failed_has_error")
        ),
        sa.CheckConstraint(
            "status <> 'succeeded' OR audio_key IS NOT NULL",
            name=op.f("ck_generations_succeeded_has_audio"),
        ),
        sa.CheckConstraint(
            "audio_size IS NULL OR audio_size >= 0", name=op.f("ck_generations_audio_size_positive")
        ),
        sa.CheckConstraint(
            "character_count = length(text)", name=op.f("ck_generations_character_count_matches")
        ),
        sa.CheckConstraint(
            "duration_ms IS NULL OR duration_ms >= 0", name=op.f("ck_generations_duration_positive")
        ),
        sa.CheckConstraint(
            "length(text) BETWEEN 1 AND 5000", name=op.f("ck_generations_text_length")
        ),
        sa.CheckConstraint(
            "length(voice_name) BETWEEN 1 AND 100", name=op.f("ck_generations_voice_name_length")
        ),
        sa.CheckConstraint(
            "repetition_penalty >= 1.0 AND repetition_penalty <= 2.0",
            name=op.f("ck_generations_repetition_penalty_range"),
        ),
        sa.CheckConstraint(
            "temperature >= 0.0 AND temperature <= 2.0",
            name=op.f("ck_generations_temperature_range"),
        ),
        sa.CheckConstraint("text = trim(text)", name=op.f("ck_generations_text_trimmed")),
        sa.CheckConstraint(
            "top_k >= 1 AND top_k <= 10000", name=op.f("ck_generations_top_k_range")
        ),
        sa.CheckConstraint(
            "top_p >= 0.0 AND top_p <= 1.0", name=op.f("ck_generations_top_p_range")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_generations_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_generations_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["voice_id"],
            ["voices.id"],
            name=op.f("fk_generations_voice_id_voices"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index("ix_generations_created_by", ["created_by"], unique=False)
        batch_op.create_index(
            "ix_generations_org_created",
            ["org_id", sa.text("created_at DESC"), sa.text("id DESC")],
            unique=False,
        )
        batch_op.create_index("ix_generations_voice_id", ["voice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_voice_id")
        batch_op.drop_index("ix_generations_org_created")
        batch_op.drop_index("ix_generations_created_by")

    op.drop_table("generations")
    with op.batch_alter_table("voices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_voices_system_name",
            sqlite_where=sa.text("org_id IS NULL"),
            postgresql_where=sa.text("org_id IS NULL"),
        )
        batch_op.drop_index("ix_voices_variant")

    op.drop_table("voices")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_org_id"))

    op.drop_table("memberships")
    op.drop_table("users")
    op.drop_table("organizations")
