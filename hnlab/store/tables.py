"""The PostgreSQL tables, as SQLAlchemy Core. Migrations in ``hnlab/migrations`` create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

metadata = MetaData()

TRIGGERS = ("scheduled", "manual", "notebook", "demo")
STATUSES = ("running", "succeeded", "failed", "skipped")
STATISTICS = (
    "posts_fetched",
    "posts_saved",
    "posts_cached",
    "duplicates_skipped",
    "errors",
)


def _ts(name: str, **kwargs: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


posts = Table(
    "posts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("hn_id", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", String(255)),
    Column("url", Text),
    Column("domain", String(255)),
    Column("score", Integer, nullable=False),
    Column("comment_count", Integer, nullable=False),
    _ts("created_at", nullable=False),
    _ts("collected_at", nullable=False),
    Column("type", String(16), nullable=False),
    Column("is_dead", Boolean, nullable=False),
    _ts("last_seen_at", nullable=False),
    Index("ix_posts_hn_id", "hn_id", unique=True),
    Index("ix_posts_score", "score"),
    Index("ix_posts_created_at", "created_at"),
    Index("ix_posts_collected_at", "collected_at"),
)

collection_runs = Table(
    "collection_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    _ts("slot"),
    Column("trigger", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    Column("posts_fetched", Integer),
    Column("posts_saved", Integer),
    Column("posts_cached", Integer),
    Column("duplicates_skipped", Integer),
    Column("errors", Integer),
    _ts("last_run"),
    Column("duration_s", Float),
    Column("details", JSONB),
    Column("notebook_path", Text),
    Column("error", Text),
    Column("cache_pending", Boolean, nullable=False, server_default="false"),
    Column("host", String(255)),
    Column("pid", Integer),
    CheckConstraint(f"trigger IN {TRIGGERS!r}", name="ck_collection_runs_trigger"),
    CheckConstraint(f"status IN {STATUSES!r}", name="ck_collection_runs_status"),
    Index("ux_collection_runs_slot", "slot", unique=True),
    Index("ix_collection_runs_started_at", "started_at"),
)

post_snapshots = Table(
    "post_snapshots",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        BigInteger,
        ForeignKey("collection_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("hn_id", Integer, nullable=False),
    Column("list", String(8), nullable=False),
    Column("rank", SmallInteger, nullable=False),
    Column("score", Integer),
    Column("comment_count", Integer),
    _ts("observed_at", nullable=False),
    UniqueConstraint("run_id", "list", "hn_id", name="uq_post_snapshots_run_list_item"),
    Index("ix_post_snapshots_observed_at", "observed_at"),
    Index("ix_post_snapshots_hn_id_observed_at", "hn_id", "observed_at"),
)

runners = Table(
    "runners",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("mode", String(16), nullable=False),
    _ts("started_at", nullable=False),
    _ts("last_beat", nullable=False),
    _ts("next_run_at"),
)

# -- minute tracking (migration 0002) ---------------------------------------------------------
TICK_STATUSES = ("running", "succeeded", "failed", "missed")

# ``stories`` is a view (migration 0004): ``story_sightings`` joined to ``items``, so a
# story's title has one home. Its columns: hn_id, title, by, type (ask/show/story/job/
# poll, as the seed classifies), url, domain, submitted_at, first_seen, last_seen.
views = MetaData()
stories = Table(
    "stories",
    views,
    Column("hn_id", Integer, primary_key=True),
    Column("title", Text),
    Column("by", String(255)),
    Column("type", String(16)),
    Column("url", Text),
    Column("domain", String(255)),
    _ts("submitted_at"),
    _ts("first_seen", nullable=False),
    _ts("last_seen", nullable=False),
)
"""The ``stories`` view, for reading (its own MetaData: nothing creates it as a table)."""

story_sightings = Table(
    "story_sightings",
    metadata,
    Column("hn_id", Integer, primary_key=True, autoincrement=False),
    _ts("first_seen", nullable=False),
    _ts("last_seen", nullable=False),
)

# One row per minute: every tracked list's ranks end to end. ``lists`` holds the list
# codes in order and ``lens`` how many ranks each has; hn_ids, scores and comments are
# parallel arrays. Measured in scripts/bench_track_storage.py: 12.8 bytes per
# observation against 89.1 for one row per observation. Partitioned by month.
rank_minutes = Table(
    "rank_minutes",
    metadata,
    _ts("sampled_at", primary_key=True),
    Column("lists", ARRAY(SmallInteger), nullable=False),
    Column("lens", ARRAY(SmallInteger), nullable=False),
    Column("hn_ids", ARRAY(Integer), nullable=False),
    Column("scores", ARRAY(Integer), nullable=False),
    Column("comments", ARRAY(Integer), nullable=False),
    postgresql_partition_by="RANGE (sampled_at)",
)

# First and last minute each story was seen on each list: one story's path is then a
# primary-key range scan of rank_minutes, with no index on the arrays.
rank_spans = Table(
    "rank_spans",
    metadata,
    Column("hn_id", Integer, primary_key=True),
    Column("list", SmallInteger, primary_key=True),
    _ts("first_at", nullable=False),
    _ts("last_at", nullable=False),
)

track_ticks = Table(
    "track_ticks",
    metadata,
    _ts("slot", primary_key=True),
    Column("status", String(16), nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    Column("lists", Integer),
    Column("observations", Integer),
    Column("requests", Integer),
    Column("errors", Integer),
    Column("duration_s", Float),
    Column("error", Text),
    Column("host", String(255)),
    Column("pid", Integer),
    CheckConstraint(f"status IN {TICK_STATUSES!r}", name="ck_track_ticks_status"),
)

# -- job outcomes (migration 0003) ------------------------------------------------------------
job_outcomes = Table(
    "job_outcomes",
    metadata,
    Column("job_id", String(100), primary_key=True),
    Column("outcome", String(16), nullable=False),
    _ts("at", nullable=False),
    Column("error", Text),
    _ts("failing_since"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("runner", String(300), nullable=False),
    CheckConstraint("outcome IN ('succeeded', 'failed')", name="ck_job_outcomes_outcome"),
)
"""Each scheduled job's last outcome (one row a job, whichever runner ran it last)."""

# -- items (migration 0004) -------------------------------------------------------------------
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("type", Text),
    Column("by", Text),
    _ts("time"),
    Column("parent", Integer),
    Column("story_id", Integer),
    Column("title", Text),
    Column("url", Text),
    Column("domain", Text),
    Column("text", Text),
    Column("score", Integer),
    Column("descendants", Integer),
    Column("dead", Boolean, nullable=False, server_default="false"),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("poll", Integer),
    Column("parts", ARRAY(Integer)),
    Column("extra", JSONB),
    _ts("first_fetched", nullable=False),
    _ts("version_at", nullable=False),
    _ts("settle_at"),
    _ts("settled_at"),
)
"""Every item once: HN's fields (``text`` is HN's HTML as given, ``title`` plain text),
the root story (``story_id``), unknown fields in ``extra``, when it was first fetched,
when its current version was first seen, and when it is due to settle and settled."""

item_revisions = Table(
    "item_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _ts("seen_at", primary_key=True),
    _ts("replaced_at", nullable=False),
    Column("title", Text),
    Column("url", Text),
    Column("text", Text),
    Column("dead", Boolean, nullable=False),
)
"""Earlier versions of an item, each with when it was first seen and when it was
replaced. A deleted item has none."""

item_gaps = Table(
    "item_gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tries", SmallInteger, nullable=False),
    Column("reason", Text, nullable=False),
    _ts("last_tried", nullable=False),
    Column("missing", Boolean, nullable=False, server_default="false"),
)
"""Ids the API answered ``null`` or garbage for: retried each pass until
``HNLAB_ITEMS_NULL_RETRIES`` tries, then ``missing``."""

item_chunks = Table(
    "item_chunks",
    metadata,
    Column("lo", Integer, primary_key=True, autoincrement=False),
    Column("hi", Integer, nullable=False),
    Column("purpose", String(16), nullable=False),
    _ts("created_at", nullable=False),
    _ts("done_at"),
    Column("stored", Integer),
    Column("gaps", Integer),
    Column("host", String(255)),
    Column("pid", Integer),
)
"""Id ranges, never overlapping, each claimed by one process (``FOR UPDATE SKIP
LOCKED``, held while it is fetched and written) and marked done."""

contents = Table(
    "contents",
    metadata,
    Column("hn_id", Integer, primary_key=True, autoincrement=False),
    Column("url", Text, nullable=False),
    Column("final_url", Text),
    Column("outcome", String(24), nullable=False),
    Column("detail", Text),
    Column("http_status", SmallInteger),
    Column("content_type", Text),
    _ts("fetched_at", nullable=False),
    Column("attempts", SmallInteger, nullable=False, server_default="1"),
    _ts("retry_at"),
    Column("title", Text),
    Column("author", Text),
    Column("published", Date),
    Column("language", String(16)),
    Column("text", Text),
    Column("markdown", Text),
    Column("word_count", Integer),
    Column("extractor", Text),
    Column("extractor_version", Text),
    Column("warc_file", Text),
    Column("warc_offset", BigInteger),
    Column(
        "search",
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(text, '')), 'B')",
            persisted=True,
        ),
    ),
)
"""One current row per story whose URL was fetched: the outcome (``ok``,
``robots_disallowed``, ``blocked_address``, ``http_error``, ``timeout``, ``too_large``,
``unsupported_type``, ``not_article``, ``error``), where the raw response sits in the
WARC archive, and the extracted fields. ``search`` is generated (title, then body)."""

summaries = Table(
    "summaries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("story_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("method", String(16), nullable=False),
    Column("model", Text, nullable=False),
    Column("prompt_version", Text, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("cited", ARRAY(Integer), nullable=False, server_default="{}"),
    Column("dropped", Integer, nullable=False, server_default="0"),
    Column("note", Text),
    _ts("created_at", nullable=False),
)
"""Every summary made: ``kind`` (article, thread), ``method`` (llm, extractive), the
model, prompt version and SHA-256 of the input that reproduce it, the comment ids
it cites, and how many sentences the citation check dropped."""
