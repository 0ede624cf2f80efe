"""Voice library search and paging: trigram indexes (PostgreSQL) and a keyset index.

Revision ID: 0004_voice_search
Revises: 0003_rls
Create Date: 2026-11-24

PostgreSQL: `pg_trgm` (a trusted extension, so the database owner may create it) and
GIN trigram indexes on `voices.name` and `voices.description`, which serve both the
typo-tolerant `<%` (word similarity) match and `ILIKE '%…%'`. SQLite has no trigram
indexes: the same names become plain B-tree indexes there, so the models (which
declare them with PostgreSQL-only options) and the schema agree on both databases.

Both: `(org_id, created_at, id)` for keyset paging of an org's voices, newest first.

Downgrade drops the indexes and leaves the extension: other objects in the database
may use it, and an unused extension costs nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_voice_search"
down_revision = "0003_rls"
branch_labels = None
depends_on = None

TRIGRAM_COLUMNS = {"ix_voices_name_trgm": "name", "ix_voices_description_trgm": "description"}


def trigram_opclass() -> str:
    """Return `gin_trgm_ops` qualified by the schema pg_trgm lives in.

    The extension is per database, installed into whichever schema was first on the
    search path when it was created; qualifying the operator class keeps this
    migration working for a schema that isn't on that path.
    """
    bind = op.get_bind()
    schema = bind.scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    )
    return f"{bind.dialect.identifier_preparer.quote_schema(schema)}.gin_trgm_ops"


def upgrade() -> None:
    op.create_index(
        "ix_voices_org_id_created_at_id", "voices", ["org_id", "created_at", "id"], unique=False
    )
    if op.get_bind().dialect.name != "postgresql":
        for name, column in TRIGRAM_COLUMNS.items():
            op.create_index(name, "voices", [column], unique=False)
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    opclass = trigram_opclass()
    for name, column in TRIGRAM_COLUMNS.items():
        op.create_index(
            name,
            "voices",
            [column],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={column: opclass},
        )


def downgrade() -> None:
    for name in TRIGRAM_COLUMNS:
        op.drop_index(name, table_name="voices")
    op.drop_index("ix_voices_org_id_created_at_id", table_name="voices")
