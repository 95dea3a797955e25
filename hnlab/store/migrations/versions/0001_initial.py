"""posts, collection_runs, post_snapshots and runners

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("hn_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255)),
        sa.Column("url", sa.Text()),
        sa.Column("domain", sa.String(255)),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("collected_at", TS, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("is_dead", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )
    op.create_index("ix_posts_hn_id", "posts", ["hn_id"], unique=True)
    op.create_index("ix_posts_score", "posts", ["score"])
    op.create_index("ix_posts_created_at", "posts", ["created_at"])
    op.create_index("ix_posts_collected_at", "posts", ["collected_at"])

    op.create_table(
        "collection_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("slot", TS),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("posts_fetched", sa.Integer()),
        sa.Column("posts_saved", sa.Integer()),
        sa.Column("posts_cached", sa.Integer()),
        sa.Column("duplicates_skipped", sa.Integer()),
        sa.Column("errors", sa.Integer()),
        sa.Column("last_run", TS),
        sa.Column("duration_s", sa.Float()),
        sa.Column("details", postgresql.JSONB()),
        sa.Column("notebook_path", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("cache_pending", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.CheckConstraint(
            "trigger IN ('scheduled', 'manual', 'notebook', 'demo')",
            name="ck_collection_runs_trigger",
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped')",
            name="ck_collection_runs_status",
        ),
    )
    op.create_index("ux_collection_runs_slot", "collection_runs", ["slot"], unique=True)
    op.create_index("ix_collection_runs_started_at", "collection_runs", ["started_at"])

    op.create_table(
        "post_snapshots",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.BigInteger(),
            sa.ForeignKey("collection_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("hn_id", sa.Integer(), nullable=False),
        sa.Column("list", sa.String(8), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Integer()),
        sa.Column("comment_count", sa.Integer()),
        sa.Column("observed_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "list", "hn_id", name="uq_post_snapshots_run_list_item"),
    )
    op.create_index("ix_post_snapshots_observed_at", "post_snapshots", ["observed_at"])
    op.create_index(
        "ix_post_snapshots_hn_id_observed_at", "post_snapshots", ["hn_id", "observed_at"]
    )

    op.create_table(
        "runners",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_beat", TS, nullable=False),
        sa.Column("next_run_at", TS),
    )


def downgrade() -> None:
    op.drop_table("runners")
    op.drop_table("post_snapshots")
    op.drop_table("collection_runs")
    op.drop_table("posts")
