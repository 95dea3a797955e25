"""minute tracking: stories, rank_minutes (partitioned by month), rank_spans, track_ticks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
INTS = postgresql.ARRAY(sa.Integer())
SMALLINTS = postgresql.ARRAY(sa.SmallInteger())


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("hn_id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.Text()),
        sa.Column("by", sa.String(255)),
        sa.Column("type", sa.String(16)),
        sa.Column("url", sa.Text()),
        sa.Column("domain", sa.String(255)),
        sa.Column("submitted_at", TS),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )
    op.create_table(
        "rank_minutes",
        sa.Column("sampled_at", TS, primary_key=True),
        sa.Column("lists", SMALLINTS, nullable=False),
        sa.Column("lens", SMALLINTS, nullable=False),
        sa.Column("hn_ids", INTS, nullable=False),
        sa.Column("scores", INTS, nullable=False),
        sa.Column("comments", INTS, nullable=False),
        postgresql_partition_by="RANGE (sampled_at)",
    )
    op.create_table(
        "rank_spans",
        sa.Column("hn_id", sa.Integer(), primary_key=True),
        sa.Column("list", sa.SmallInteger(), primary_key=True),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
    )
    op.create_table(
        "track_ticks",
        sa.Column("slot", TS, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("lists", sa.Integer()),
        sa.Column("observations", sa.Integer()),
        sa.Column("requests", sa.Integer()),
        sa.Column("errors", sa.Integer()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'missed')", name="ck_track_ticks_status"
        ),
    )


def downgrade() -> None:
    for table in ("track_ticks", "rank_spans", "rank_minutes", "stories"):
        op.drop_table(table)
