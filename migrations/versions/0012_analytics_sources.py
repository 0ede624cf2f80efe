"""Analytics snapshots gain the day's billed characters and a breakdown by source.

Revision ID: 0012_analytics_sources
Revises: 0011_api_keys
Create Date: 2026-12-08

- `analytics_snapshots.characters_billed`: the day's usage-ledger lines added up
  (charges less refunds, by the day each line counts in), what the quota counts.
- `analytics_snapshots.by_source`: the same characters by where they came from:
  `"web"` (the dashboard) or an API key's id, each {"name", "kind", "submissions",
  "characters"}.

The upgrade fills both in for the snapshots already stored, from the ledger, so past
days agree with the quota without re-running `flask analytics snapshot`.
"""

import datetime as dt
import uuid
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0012_analytics_sources"
down_revision = "0011_api_keys"
branch_labels = None
depends_on = None

WEB_NAME = "Dashboard"
DELETED_KEY_NAME = "Deleted API key"


def upgrade() -> None:
    # Added in place: SQLite adds a column with a constant default without copying.
    op.add_column(
        "analytics_snapshots",
        sa.Column("characters_billed", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "analytics_snapshots",
        sa.Column("by_source", sa.JSON(), server_default="{}", nullable=False),
    )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        day = "(l.counted_at AT TIME ZONE 'UTC')::date"
    else:
        day = "date(l.counted_at)"
    rows = bind.execute(
        sa.text(
            f"SELECT l.org_id, {day} AS day, l.source, l.api_key_id, k.name, "
            "SUM(CASE WHEN l.kind = 'charge' THEN 1 ELSE 0 END), SUM(l.characters) "
            "FROM usage_ledger l LEFT JOIN api_keys k ON k.id = l.api_key_id "
            f"GROUP BY l.org_id, {day}, l.source, l.api_key_id, k.name"
        )
    )
    days: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for org_id, when, source, key_id, key_name, submissions, characters in rows:
        when = when if isinstance(when, str) else when.isoformat()
        if source == "web" or key_id is None:
            key, entry = "web", {"name": WEB_NAME, "kind": "web"}
        else:
            key = str(uuid.UUID(str(key_id)))
            entry = {"name": key_name or DELETED_KEY_NAME, "kind": "api"}
        tally = days[(str(uuid.UUID(str(org_id))), when)].setdefault(
            key, {**entry, "submissions": 0, "characters": 0}
        )
        tally["submissions"] += int(submissions or 0)
        tally["characters"] += int(characters or 0)
    snapshots = sa.table(
        "analytics_snapshots",
        sa.column("org_id", sa.Uuid()),
        sa.column("day", sa.Date()),
        sa.column("characters_billed", sa.BigInteger()),
        sa.column("by_source", sa.JSON()),
    )
    for (org_id, when), by_source in days.items():
        by_source = {key: by_source[key] for key in sorted(by_source)}
        bind.execute(
            snapshots.update()
            .where(
                snapshots.c.org_id == uuid.UUID(org_id),
                snapshots.c.day == dt.date.fromisoformat(when),
            )
            .values(
                characters_billed=sum(t["characters"] for t in by_source.values()),
                by_source=by_source,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("analytics_snapshots") as batch_op:
        batch_op.drop_column("by_source")
        batch_op.drop_column("characters_billed")
