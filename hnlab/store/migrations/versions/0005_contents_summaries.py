"""contents (what stories link to, with full-text search) and summaries (with their provenance)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

``contents`` keeps one current row per story: the outcome of fetching its URL, where
the raw response sits in the WARC archive, and the extracted fields. Its ``search``
column is a generated ``tsvector`` (title weighted above the body) with a GIN index.

``summaries`` keeps every summary made, with what reproduces it: the method
(``llm`` or ``extractive``), the model, the prompt version and the SHA-256 of the
input. ``cited`` holds the comment ids a thread summary cites, so erasing a deleted
comment also erases the summaries that quote it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

SEARCH = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(text, '')), 'B')"
)


def upgrade() -> None:
    op.create_table(
        "contents",
        sa.Column("hn_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text()),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("http_status", sa.SmallInteger()),
        sa.Column("content_type", sa.Text()),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("retry_at", TS),
        sa.Column("title", sa.Text()),
        sa.Column("author", sa.Text()),
        sa.Column("published", sa.Date()),
        sa.Column("language", sa.String(16)),
        sa.Column("text", sa.Text()),
        sa.Column("markdown", sa.Text()),
        sa.Column("word_count", sa.Integer()),
        sa.Column("extractor", sa.Text()),
        sa.Column("extractor_version", sa.Text()),
        sa.Column("warc_file", sa.Text()),
        sa.Column("warc_offset", sa.BigInteger()),
        sa.Column("search", postgresql.TSVECTOR(), sa.Computed(SEARCH, persisted=True)),
    )
    op.create_index("ix_contents_search", "contents", ["search"], postgresql_using="gin")
    op.create_index("ix_contents_outcome", "contents", ["outcome"])
    op.create_index(
        "ix_contents_retry_at",
        "contents",
        ["retry_at"],
        postgresql_where=sa.text("retry_at IS NOT NULL"),
    )
    op.create_table(
        "summaries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("prompt_version", sa.Text(), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("cited", postgresql.ARRAY(sa.Integer()), nullable=False, server_default="{}"),
        sa.Column("dropped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("note", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint(
            "story_id", "kind", "model", "prompt_version", "input_hash", name="uq_summaries_input"
        ),
    )
    op.create_index("ix_summaries_story", "summaries", ["story_id", "created_at"])
    op.create_index("ix_summaries_cited", "summaries", ["cited"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_table("summaries")
    op.drop_table("contents")
