"""Loaders: DataFrames from PostgreSQL (SQL run here) and from the RocksDB cache.

Light to import: no httpx, apscheduler or rocksdict until a function needs them.
Every loader returns typed columns: UTC datetimes, nullable integers
(``Int64``), ``string`` and ``category`` where they fit. With no ``engine`` a
loader uses the settings from the environment (the embedded server by default).
Heavy filtering (time windows, top-N ranks) happens in PostgreSQL.

The metrics computed from these frames are in ``metrics``; the ranking
research in ``ranking``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

if TYPE_CHECKING:
    from hnlab.config import Settings

__all__ = [
    "collection_summary",
    "engine",
    "latest_observation",
    "load_metadata",
    "load_posts",
    "load_ranks",
    "load_runs",
    "load_snapshots",
    "load_stories",
    "load_titles",
    "window",
]

_POST_TYPES: dict[str, str] = {
    "id": "string",
    "hn_id": "Int64",
    "title": "string",
    "author": "string",
    "url": "string",
    "domain": "category",
    "score": "Int64",
    "comment_count": "Int64",
    "type": "category",
    "is_dead": "boolean",
}
_SNAPSHOT_TYPES: dict[str, str] = {
    "run_id": "Int64",
    "hn_id": "Int64",
    "list": "category",
    "rank": "Int64",
    "score": "Int64",
    "comment_count": "Int64",
}
_RUN_TYPES: dict[str, str] = {
    "id": "Int64",
    "trigger": "category",
    "status": "category",
    "posts_fetched": "Int64",
    "posts_saved": "Int64",
    "posts_cached": "Int64",
    "duplicates_skipped": "Int64",
    "errors": "Int64",
    "duration_s": "Float64",
    "notebook_path": "string",
    "error": "string",
}


_RANK_TYPES = {
    "rank": "int16",
    "hn_id": "int64",
    "score": "Int64",
    "comment_count": "Int64",
}
_STORY_TYPES = {
    "hn_id": "int64",
    "title": "string",
    "by": "string",
    "type": "category",
    "url": "string",
    "domain": "string",
}


def _settings() -> Settings:
    from hnlab.config import Settings

    return Settings.from_env()


def _engine(engine: sa.Engine | str | None) -> sa.Engine:
    from hnlab.store import db

    if isinstance(engine, sa.Engine):
        return engine
    if isinstance(engine, str):
        return db.make_engine(engine)
    return db.prepare(_settings()).engine()


def _typed(df: pd.DataFrame, types: dict[str, str], times: tuple[str, ...]) -> pd.DataFrame:
    for column, kind in types.items():
        if column in df:
            df[column] = df[column].astype(kind)  # type: ignore[call-overload]
    for column in times:
        if column in df:
            df[column] = pd.to_datetime(df[column], utc=True)
    return df


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    clauses = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return clauses


def _read(engine: sa.Engine | str | None, stmt: Any) -> pd.DataFrame:
    with _connection(engine) as conn:
        return pd.read_sql(stmt, conn)


@contextlib.contextmanager
def _connection(engine: sa.Engine | str | None) -> Iterator[sa.Connection]:
    """A connection; an engine made here from a URL or the settings is disposed after."""
    eng = _engine(engine)
    try:
        with eng.connect() as conn:
            yield conn
    finally:
        if eng is not engine:
            eng.dispose()


def engine(database_url: str | None = None) -> sa.Engine:
    """A sync engine for the loaders: ``database_url``, or the settings (embedded by default)."""
    return _engine(database_url)


def window(
    hours: float, engine: sa.Engine | str | None = None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(since, until)`` covering the last ``hours`` of collected data (not of the clock).

    ``until`` is just after the newest snapshot, so a notebook shows the same
    window whenever it is opened; both are None when nothing is collected yet.
    """
    latest = latest_observation(engine)
    if latest is None:
        return None, None
    until = latest + pd.Timedelta(seconds=1)
    return until - pd.Timedelta(hours=hours), until


def load_posts(
    since: datetime | None = None,
    until: datetime | None = None,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Stored posts first collected in ``[since, until)`` (UTC), newest first."""
    from hnlab.store.tables import posts

    stmt = sa.select(posts).where(*_window(posts.c.collected_at, since, until))
    df = _read(engine, stmt.order_by(posts.c.collected_at.desc(), posts.c.hn_id))
    df["id"] = df["id"].astype(str)
    return _typed(df, _POST_TYPES, ("created_at", "collected_at", "last_seen_at"))


def load_snapshots(
    since: datetime | None = None,
    until: datetime | None = None,
    engine: sa.Engine | str | None = None,
    *,
    list_name: str = "top",
    top_n: int | None = None,
) -> pd.DataFrame:
    """Snapshot rows of one list observed in ``[since, until)``; ``top_n`` keeps ranks <= N.

    The filters run in PostgreSQL, so a year of snapshots loads only what is asked for.
    """
    from hnlab.store.tables import post_snapshots as s

    cols = [
        s.c.run_id,
        s.c.hn_id,
        s.c.list,
        s.c.rank,
        s.c.score,
        s.c.comment_count,
        s.c.observed_at,
    ]
    where = [s.c.list == list_name, *_window(s.c.observed_at, since, until)]
    if top_n is not None:
        where.append(s.c.rank <= top_n)
    df = _read(engine, sa.select(*cols).where(*where).order_by(s.c.observed_at, s.c.rank))
    return _typed(df, _SNAPSHOT_TYPES, ("observed_at",))


def load_runs(
    since: datetime | None = None,
    until: datetime | None = None,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Run records started in ``[since, until)``, oldest first."""
    from hnlab.store.tables import collection_runs as r

    cols = [
        r.c.id,
        r.c.slot,
        r.c.trigger,
        r.c.status,
        r.c.started_at,
        r.c.finished_at,
        r.c.posts_fetched,
        r.c.posts_saved,
        r.c.posts_cached,
        r.c.duplicates_skipped,
        r.c.errors,
        r.c.last_run,
        r.c.duration_s,
        r.c.notebook_path,
        r.c.error,
    ]
    stmt = sa.select(*cols).where(*_window(r.c.started_at, since, until)).order_by(r.c.id)
    return _typed(
        _read(engine, stmt), _RUN_TYPES, ("slot", "started_at", "finished_at", "last_run")
    )


def latest_observation(engine: sa.Engine | str | None = None) -> pd.Timestamp | None:
    """The newest observation, hourly snapshot or tracked minute: the anchor for "the last
    N hours" of collected data."""
    sql = (
        "SELECT greatest((SELECT max(observed_at) FROM post_snapshots),"
        " (SELECT max(sampled_at) FROM rank_minutes))"
    )
    with _connection(engine) as conn:
        value = conn.execute(sa.text(sql)).scalar()
    return None if value is None else pd.Timestamp(value).tz_convert("UTC")


_RANKS_SQL = """
SELECT (extract(epoch FROM m.sampled_at) * 1000000)::bigint AS sampled_at,
       l.code AS list, r.rank, r.hn_id, r.score, r.comment_count
  FROM rank_minutes m
 CROSS JOIN LATERAL (
       SELECT x.code, x.len, (sum(x.len) OVER (ORDER BY x.i) - x.len)::int AS start
         FROM unnest(m.lists, m.lens) WITH ORDINALITY AS x(code, len, i)) l
 CROSS JOIN LATERAL unnest(
       m.hn_ids[l.start + 1 : l.start + least(l.len, :max_rank)],
       m.scores[l.start + 1 : l.start + least(l.len, :max_rank)],
       m.comments[l.start + 1 : l.start + least(l.len, :max_rank)])
       WITH ORDINALITY AS r(hn_id, score, comment_count, rank)
 WHERE m.sampled_at >= :since AND m.sampled_at < :until {filters}
 ORDER BY m.sampled_at, l.code, r.rank
"""


def load_ranks(
    since: datetime | None,
    until: datetime | None,
    engine: sa.Engine | str | None = None,
    *,
    lists: Sequence[str] | None = None,
    hn_ids: Sequence[int] | None = None,
    max_rank: int | None = None,
) -> pd.DataFrame:
    """The minute tracker's observations in ``[since, until)``: one row per story per list
    per minute, ordered by time, list and rank.

    Columns: ``sampled_at`` (UTC), ``list`` (category: top, new, best, ask, show, job),
    ``rank`` (1 = first), ``hn_id``, ``score`` and ``comment_count`` (nullable: <NA>
    when the API answered null, deleted or failed for that story that minute).
    ``None`` for ``since`` or ``until`` leaves that end open. ``hn_ids`` reads only
    the minutes in which those stories were seen (via ``rank_spans``).
    """
    from hnlab.config import STORY_LISTS

    filters = []
    params: dict[str, Any] = {
        "since": since or datetime(1970, 1, 1, tzinfo=UTC),
        "until": until or datetime(9999, 1, 1, tzinfo=UTC),
        "max_rank": int(max_rank) if max_rank is not None else 32767,
    }
    if lists is not None:
        unknown = sorted(set(lists) - set(STORY_LISTS))
        if unknown:
            raise ValueError(f"lists must be some of {', '.join(STORY_LISTS)}, got {unknown}")
        filters.append("AND l.code = ANY(:codes)")
        params["codes"] = [STORY_LISTS.index(name) for name in lists]
    if hn_ids is not None:
        filters.append(
            "AND r.hn_id = ANY(:ids) AND m.sampled_at BETWEEN "
            "(SELECT min(first_at) FROM rank_spans WHERE hn_id = ANY(:ids)) AND "
            "(SELECT max(last_at) FROM rank_spans WHERE hn_id = ANY(:ids))"
        )
        params["ids"] = [int(i) for i in hn_ids]
    sql = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", _RANKS_SQL.format(filters=" ".join(filters)))
    df = _copy_csv(engine, sql, params)
    df["sampled_at"] = pd.to_datetime(df["sampled_at"].astype("int64"), unit="us", utc=True).astype(
        "datetime64[us, UTC]"
    )
    df["list"] = pd.Categorical.from_codes(
        df["list"].astype("int64"), categories=pd.Index(STORY_LISTS)
    )
    return _typed(df, _RANK_TYPES, ())


def _copy_csv(engine: sa.Engine | str | None, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """Rows of ``sql`` through ``COPY … TO STDOUT`` and pyarrow's CSV reader.

    For million-row reads: three times faster than ``pd.read_sql``, which builds a
    Python object per value. Empty fields are NULL; integers only, so no quoting.
    """
    import io

    import pyarrow.csv

    buffer = io.BytesIO()
    with _connection(engine) as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params) as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    table = pyarrow.csv.read_csv(buffer)
    frame: pd.DataFrame = table.to_pandas(types_mapper={pyarrow.int64(): pd.Int64Dtype()}.get)
    return frame


def load_stories(
    hn_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Each tracked story's static facts, once, with the first and last time it was seen.

    Columns: ``hn_id``, ``title``, ``by``, ``type``, ``url``, ``domain``,
    ``submitted_at``, ``first_seen``, ``last_seen`` (UTC). ``since``/``until`` keep
    the stories seen at some time in ``[since, until)``.
    """
    from hnlab.store.tables import stories as st

    where: list[Any] = []
    if hn_ids is not None:
        where.append(st.c.hn_id.in_([int(i) for i in hn_ids]))
    if since is not None:
        where.append(st.c.last_seen >= since)
    if until is not None:
        where.append(st.c.first_seen < until)
    df = _read(engine, sa.select(st).where(*where).order_by(st.c.hn_id))
    return _typed(df, _STORY_TYPES, ("submitted_at", "first_seen", "last_seen"))


_TITLES_SQL = """
    SELECT id, time, title AS text FROM items
     WHERE title IS NOT NULL AND type IS DISTINCT FROM 'comment'
       AND time >= :since AND time < :until
    UNION ALL
    SELECT hn_id, created_at, title FROM posts
     WHERE created_at >= :since AND created_at < :until AND title <> ''
       AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id = posts.hn_id)
    ORDER BY time, id
"""


def load_titles(
    since: datetime | None = None,
    until: datetime | None = None,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Every story title hnlab holds, as the documents ``term_trends``, ``bursts`` and
    ``topics`` take: every story, job and poll in ``items`` (the item stream's and the
    tracker's), and the hourly collection's posts not among them, once each.

    Columns: ``id`` (the HN id, int64), ``time`` (submission time, UTC), ``text`` (the
    title, string); stories submitted in ``[since, until)``, oldest first.
    """
    low = since or datetime(1970, 1, 1, tzinfo=UTC)
    high = until or datetime(9999, 1, 1, tzinfo=UTC)
    df = _read(engine, sa.text(_TITLES_SQL).bindparams(since=low, until=high))
    return _typed(df, {"id": "int64", "text": "string"}, ("time",))


def collection_summary(engine: sa.Engine | str | None = None) -> dict[str, Any]:
    """What the database holds, for a front page: the span of runs (UTC), counts of runs
    by status, posts and snapshots stored, and the newest run (``last_run``, or None)."""
    from hnlab.store.tables import collection_runs as r

    when = sa.func.coalesce(r.c.slot, r.c.started_at)
    totals = sa.select(
        sa.func.min(when).label("first_run_at"),
        sa.func.max(when).label("last_run_at"),
        sa.func.count().label("runs"),
        *(
            sa.func.count().filter(r.c.status == status).label(status)
            for status in ("succeeded", "failed", "skipped")
        ),
        sa.select(sa.func.count()).select_from(sa.text("posts")).scalar_subquery().label("posts"),
        sa.select(sa.func.count())
        .select_from(sa.text("post_snapshots"))
        .scalar_subquery()
        .label("snapshots"),
    )
    last = sa.select(
        r.c.id, r.c.trigger, r.c.status, when.label("at"), r.c.posts_saved, r.c.error
    ).order_by(r.c.id.desc())
    with _connection(engine) as conn:
        summary = dict(conn.execute(totals).mappings().one())
        row = conn.execute(last.limit(1)).mappings().first()
    summary["last_run"] = dict(row) if row else None
    return summary


def load_metadata(rocksdb_path: str | Path | None = None) -> pd.DataFrame:
    """The RocksDB cache as a DataFrame, read as a secondary instance.

    It never takes the writer's lock, so a running collection is neither blocked
    nor broken; a corrupt block raises CacheCorruptError instead of a short frame.
    """
    from hnlab.store.cache import RocksDBStore

    path = Path(rocksdb_path) if rocksdb_path else _settings().rocksdb
    with RocksDBStore(path, mode="secondary") as store:
        rows = list(store.iter_metadata())
    columns = [
        "hn_id",
        "title",
        "author",
        "url",
        "points",
        "num_comments",
        "post_type",
        "created_at",
        "collected_at",
    ]
    df = pd.DataFrame(rows, columns=columns)
    df = _typed(
        df,
        {
            "hn_id": "Int64",
            "title": "string",
            "author": "string",
            "url": "string",
            "points": "Int64",
            "num_comments": "Int64",
            "post_type": "category",
        },
        (),
    )
    for column in ("created_at", "collected_at"):  # the seed's format: UTC without offset
        df[column] = pd.to_datetime(df[column], format="%Y-%m-%dT%H:%M:%S.%f", utc=True)
    return df
