"""items: every item HN creates, its revisions, the id-range claims, and ``stories`` as a view

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``items`` becomes the one place for an item's content. The tracker's ``stories``
table kept a story's title, author and url beside when the tracker saw it; its
content moves into ``items`` and its sightings into ``story_sightings``, and
``stories`` becomes a view joining the two, with the same columns as before, so
every reader of ``stories`` keeps working and no title is stored twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

STORIES_VIEW = """
CREATE VIEW stories AS
SELECT s.hn_id, i.title, i."by",
       CASE WHEN i.type IN ('job', 'poll') THEN i.type
            WHEN lower(i.title) LIKE 'ask hn:%%' THEN 'ask'
            WHEN lower(i.title) LIKE 'show hn:%%' THEN 'show'
            ELSE i.type END::varchar(16) AS type,
       i.url, i.domain, i.time AS submitted_at, s.first_seen, s.last_seen
  FROM story_sightings s LEFT JOIN items i ON i.id = s.hn_id
"""


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("type", sa.Text()),
        sa.Column("by", sa.Text()),
        sa.Column("time", TS),
        sa.Column("parent", sa.Integer()),
        sa.Column("story_id", sa.Integer()),
        sa.Column("title", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("domain", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("score", sa.Integer()),
        sa.Column("descendants", sa.Integer()),
        sa.Column("dead", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("poll", sa.Integer()),
        sa.Column("parts", postgresql.ARRAY(sa.Integer())),
        sa.Column("extra", postgresql.JSONB()),
        sa.Column("first_fetched", TS, nullable=False),
        sa.Column("version_at", TS, nullable=False),
        sa.Column("settle_at", TS),
        sa.Column("settled_at", TS),
    )
    op.create_index("ix_items_story_id", "items", ["story_id", "id"])
    op.create_index("ix_items_time", "items", ["time"])
    op.create_index(
        "ix_items_unsettled",
        "items",
        ["settle_at"],
        postgresql_where=sa.text("settled_at IS NULL"),
    )
    op.create_index(
        "ix_items_orphans", "items", ["parent"], postgresql_where=sa.text("story_id IS NULL")
    )
    op.create_table(
        "item_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seen_at", TS, primary_key=True),
        sa.Column("replaced_at", TS, nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("dead", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "item_gaps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("tries", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("last_tried", TS, nullable=False),
        sa.Column("missing", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.create_table(
        "item_chunks",
        sa.Column("lo", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hi", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("done_at", TS),
        sa.Column("stored", sa.Integer()),
        sa.Column("gaps", sa.Integer()),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.CheckConstraint("purpose IN ('sync', 'backfill')", name="ck_item_chunks_purpose"),
        sa.CheckConstraint("lo <= hi", name="ck_item_chunks_range"),
    )
    op.create_index(
        "ix_item_chunks_open",
        "item_chunks",
        ["purpose", "lo"],
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.create_table(
        "story_sightings",
        sa.Column("hn_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )
    op.execute(
        """
        INSERT INTO items (id, type, "by", time, story_id, title, url, domain,
                           first_fetched, version_at, settle_at)
        SELECT hn_id, CASE WHEN type IN ('ask', 'show') THEN 'story' ELSE type END,
               "by", submitted_at, hn_id, title, url, domain, first_seen, first_seen,
               submitted_at + interval '2 hours'
          FROM stories
        """
    )
    op.execute(
        "INSERT INTO story_sightings (hn_id, first_seen, last_seen) "
        "SELECT hn_id, first_seen, last_seen FROM stories"
    )
    op.drop_table("stories")
    op.execute(STORIES_VIEW.replace("%%", "%"))


def downgrade() -> None:
    op.execute("CREATE TABLE stories_kept AS SELECT * FROM stories")
    op.execute("DROP VIEW stories")
    op.execute("ALTER TABLE stories_kept RENAME TO stories")
    op.execute("ALTER TABLE stories ADD PRIMARY KEY (hn_id)")
    for name in ("story_sightings", "item_chunks", "item_gaps", "item_revisions", "items"):
        op.drop_table(name)
