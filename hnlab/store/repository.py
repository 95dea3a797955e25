"""PostRepository: posts and their snapshots in PostgreSQL (async, bulk statements).

Run records are ``records``' business; this module writes what a run *saw*.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hnlab.hn.items import Post
from hnlab.store.db import database_errors
from hnlab.store.tables import collection_runs, posts


@dataclass(frozen=True)
class Observation:
    """One story seen at one rank of one list in one run."""

    hn_id: int
    rank: int
    score: int | None
    comment_count: int | None


@dataclass
class Batch:
    """Observations of one list, the posts among them to store, and every post seen."""

    observations: list[Observation] = field(default_factory=list)
    new_posts: list[Post] = field(default_factory=list)
    seen: list[Post] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.observations += other.observations
        self.new_posts += other.new_posts
        self.seen += other.seen


@dataclass
class WriteResult:
    """What ``record_observations`` changed, in one transaction."""

    inserted: list[int] = field(default_factory=list)
    refreshed: int = 0
    snapshots: int = 0


# Bulk statements bind one array per column (unnest): one statement and a handful of
# parameters whatever the row count, so 500 rows compile and bind as fast as 5. They are
# psycopg SQL run with exec_driver_sql, because psycopg's %(name)b placeholders send the
# arrays in binary: its text format quotes every element with a regex, which made the
# 500-post insert 11 ms of client CPU instead of 5 ms. (Our engines are always psycopg.)
_POST_ARRAYS = {
    "id": "uuid",
    "hn_id": "integer",
    "title": "text",
    "author": "text",
    "url": "text",
    "domain": "text",
    "score": "integer",
    "comment_count": "integer",
    "created_at": "timestamptz",
    "collected_at": "timestamptz",
    "type": "text",
    "is_dead": "boolean",
    "last_seen_at": "timestamptz",
}
_INSERT_POSTS = (
    f"INSERT INTO posts ({', '.join(_POST_ARRAYS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"%({name})b::{kind}[]" for name, kind in _POST_ARRAYS.items())
    + ") ON CONFLICT (hn_id) DO NOTHING RETURNING hn_id"
)
_REFRESH_POSTS = """
    UPDATE posts AS p
       SET score = v.score, comment_count = v.comment_count,
           is_dead = v.is_dead, last_seen_at = %(seen_at)s
      FROM unnest(%(ids)b::integer[], %(scores)b::integer[],
                  %(comments)b::integer[], %(dead)b::boolean[])
           AS v(hn_id, score, comment_count, is_dead)
     WHERE p.hn_id = v.hn_id AND p.last_seen_at <= %(seen_at)s
"""
_INSERT_SNAPSHOTS = (
    "INSERT INTO post_snapshots (run_id, list, observed_at, hn_id, rank, score, comment_count) "
    "SELECT %(run_id)s, %(list)s, %(observed_at)s, v.* FROM unnest("
    "%(hn_ids)b::integer[], %(ranks)b::smallint[], %(scores)b::integer[], "
    "%(comments)b::integer[]) AS v "
    "ON CONFLICT ON CONSTRAINT uq_post_snapshots_run_list_item DO NOTHING"
)


class PostRepository:
    """Async access to posts and snapshots.

    It receives an ``async_sessionmaker`` or an ``AsyncEngine`` and never closes
    what it was handed. Bulk paths are one statement each, whatever the row count.
    """

    def __init__(self, db: async_sessionmaker[Any] | AsyncEngine) -> None:
        if isinstance(db, AsyncEngine):
            self.engine = db
        else:
            bind = db.kw.get("bind")
            if not isinstance(bind, AsyncEngine):
                raise TypeError(
                    "PostRepository needs an async_sessionmaker bound to an AsyncEngine"
                )
            self.engine = bind
        self._partitions: set[date] = set()

    async def existing_hn_ids(self, hn_ids: Iterable[int]) -> set[int]:
        """Which of ``hn_ids`` are already stored, in one query."""
        ids = sorted(set(hn_ids))
        if not ids:
            return set()
        stmt = sa.select(posts.c.hn_id).where(posts.c.hn_id.in_(ids))
        with database_errors(self.engine):
            async with self.engine.connect() as conn:
                return set((await conn.execute(stmt)).scalars())

    async def save_posts(self, new_posts: Sequence[Post]) -> int:
        """Insert posts (ON CONFLICT (hn_id) DO NOTHING) in one statement; return the count."""
        with database_errors(self.engine):
            async with self.engine.begin() as conn:
                return len(await self._insert(conn, new_posts))

    async def record_observations(
        self,
        run_id: int,
        list_name: str,
        observations: Sequence[Observation],
        new_posts: Sequence[Post],
        seen: Sequence[Post],
        seen_at: datetime,
    ) -> WriteResult:
        """In one transaction: insert new posts, refresh seen ones, write snapshots.

        The run is marked ``cache_pending`` in the same transaction, so a crash
        before the RocksDB write is repaired by the next run's reconcile.
        """

        async def one() -> AsyncIterator[Batch]:
            yield Batch(list(observations), list(new_posts), list(seen))

        return await self.write_observations(run_id, list_name, one(), seen_at)

    async def write_observations(
        self, run_id: int, list_name: str, batches: AsyncIterator[Batch], seen_at: datetime
    ) -> WriteResult:
        """``record_observations`` for batches that arrive while a fetch runs: one
        transaction, each batch written as it comes, committed after the last. If
        ``batches`` raises, nothing is written."""
        result = WriteResult()
        with database_errors(self.engine):
            async with self.engine.begin() as conn:
                async for batch in batches:
                    # Refresh first, so the count is of posts that were already stored.
                    result.refreshed += await self._refresh(conn, batch.seen, seen_at)
                    result.inserted += await self._insert(conn, batch.new_posts)
                    result.snapshots += await self._snapshots(
                        conn, run_id, list_name, batch.observations, seen_at
                    )
                if result.inserted:
                    await conn.execute(
                        collection_runs.update()
                        .where(collection_runs.c.id == run_id)
                        .values(cache_pending=True)
                    )
        return result

    async def _insert(self, conn: Any, new_posts: Sequence[Post]) -> list[int]:
        if not new_posts:
            return []
        rows = [p.to_row() for p in new_posts]
        params = {name: [r[name] for r in rows] for name in _POST_ARRAYS}
        result = await conn.exec_driver_sql(_INSERT_POSTS, params)
        return list(result.scalars())

    async def _refresh(self, conn: Any, seen: Sequence[Post], seen_at: datetime) -> int:
        if not seen:
            return 0
        res = await conn.exec_driver_sql(
            _REFRESH_POSTS,
            {
                "ids": [p.hn_id for p in seen],
                "scores": [p.score for p in seen],
                "comments": [p.comment_count for p in seen],
                "dead": [p.is_dead for p in seen],
                "seen_at": seen_at,
            },
        )
        return int(res.rowcount)

    async def _snapshots(
        self,
        conn: Any,
        run_id: int,
        list_name: str,
        observations: Sequence[Observation],
        observed_at: datetime,
    ) -> int:
        if not observations:
            return 0
        result = await conn.exec_driver_sql(
            _INSERT_SNAPSHOTS,
            {
                "run_id": run_id,
                "list": list_name,
                "observed_at": observed_at,
                "hn_ids": [o.hn_id for o in observations],
                "ranks": [o.rank for o in observations],
                "scores": [o.score for o in observations],
                "comments": [o.comment_count for o in observations],
            },
        )
        return int(result.rowcount)

    async def posts_by_hn_ids(self, hn_ids: Sequence[int] | None = None) -> list[Post]:
        """Stored posts (all of them when ``hn_ids`` is None), as ``Post`` objects."""
        stmt = posts.select().order_by(posts.c.hn_id)
        if hn_ids is not None:
            stmt = stmt.where(posts.c.hn_id.in_(list(hn_ids)))
        with database_errors(self.engine):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).mappings().all()
        return [row_to_post(r) for r in rows]

    async def top_posts(self, since: datetime, until: datetime, limit: int = 10) -> list[Post]:
        """The highest-scoring posts seen in ``(since, until]``, by their latest score."""
        stmt = (
            posts.select()
            .where(posts.c.last_seen_at > since, posts.c.last_seen_at <= until)
            .order_by(posts.c.score.desc(), posts.c.hn_id)
            .limit(limit)
        )
        with database_errors(self.engine):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).mappings().all()
        return [row_to_post(r) for r in rows]

    async def record_minute(
        self,
        slot: datetime,
        ranked: Sequence[Ranked],
        seen: Sequence[Post],
        finish: Any,
    ) -> None:
        """In one transaction: the minute's ranks, the stories' static facts, their spans,
        and ``finish`` (the tick record's closing statement). All of it, or none."""
        hn_ids = [i for r in ranked for i in r.hn_ids]
        codes = [r.code for r in ranked for _ in r.hn_ids]

        async def one() -> AsyncIterator[MinutePart]:
            yield MinutePart(hn_ids, codes, list(seen))

        done: asyncio.Future[tuple[Sequence[Ranked], Any]] = (
            asyncio.get_running_loop().create_future()
        )
        done.set_result((ranked, finish))
        await self.write_minute(slot, one(), done)

    async def write_minute(
        self,
        slot: datetime,
        parts: AsyncIterator[MinutePart],
        final: asyncio.Future[tuple[Sequence[Ranked], Any]],
    ) -> None:
        """``record_minute`` for a tick in progress: one transaction that writes each
        part as it comes (spans once the lists are known, stories as their items
        arrive), then, once ``final`` is set, the minute's row (ranks, scores,
        comments; none when no list came) and the tick's closing statement, and
        commits. If ``parts`` raises, nothing is written."""
        await self.ensure_partitions(slot)
        with database_errors(self.engine):
            async with self.engine.begin() as conn:
                async for part in parts:
                    if part.stories:
                        await conn.exec_driver_sql(_UPSERT_STORIES, _story_params(slot, part))
                    if part.hn_ids:
                        await conn.exec_driver_sql(
                            _UPSERT_SPANS, {"at": slot, "ids": part.hn_ids, "codes": part.codes}
                        )
                ranked, finish = await final
                if ranked:
                    await conn.exec_driver_sql(
                        _INSERT_MINUTE,
                        {
                            "at": slot,
                            "lists": [r.code for r in ranked],
                            "lens": [len(r.hn_ids) for r in ranked],
                            "ids": [i for r in ranked for i in r.hn_ids],
                            "scores": [v for r in ranked for v in r.scores],
                            "comments": [v for r in ranked for v in r.comments],
                        },
                    )
                await conn.execute(finish)

    async def downsample_minutes(self, before: datetime) -> int:
        """Keep only each hour's first minute (:00) of the ranks older than ``before``;
        return how many minute rows were deleted. Safe to run again."""
        stmt = sa.text(
            "DELETE FROM rank_minutes WHERE sampled_at < :before "
            "AND date_trunc('hour', sampled_at) <> sampled_at"
        )
        with database_errors(self.engine):
            async with self.engine.begin() as conn:
                return int((await conn.execute(stmt, {"before": before})).rowcount)

    async def ensure_partitions(self, at: datetime) -> None:
        """Create rank_minutes' partitions for ``at``'s month and the next, if missing."""
        month = at.astimezone(UTC).date().replace(day=1)
        if month in self._partitions:
            return
        with database_errors(self.engine):
            async with self.engine.begin() as conn:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK}
                )
                for start in (month, _next_month(month)):
                    end = _next_month(start)
                    await conn.exec_driver_sql(
                        f"CREATE TABLE IF NOT EXISTS rank_minutes_{start:%Y_%m} PARTITION OF "
                        f"rank_minutes FOR VALUES FROM ('{start:%Y-%m-%d} 00:00+00') "
                        f"TO ('{end:%Y-%m-%d} 00:00+00')"
                    )
        self._partitions.add(month)


@dataclass(frozen=True)
class Ranked:
    """One list at one minute: ids in rank order, with each one's score and comments."""

    code: int
    hn_ids: list[int]
    scores: list[int | None]
    comments: list[int | None]


@dataclass
class MinutePart:
    """Part of a tick, written as it comes: list memberships (one span per id and list
    code) and the stories whose items have arrived."""

    hn_ids: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    stories: list[Post] = field(default_factory=list)

    def extend(self, other: MinutePart) -> None:
        self.hn_ids += other.hn_ids
        self.codes += other.codes
        self.stories += other.stories


class _Part(Protocol):
    def extend(self, other: Any) -> None: ...


PartT = TypeVar("PartT", bound=_Part)


async def drain(arrivals: asyncio.Queue[PartT | None]) -> AsyncIterator[PartT]:
    """What has queued up since the last part, as one part, until ``None`` arrives: a
    writer takes all that came while its previous statement ran."""
    while True:
        item = await arrivals.get()
        if item is None:
            return
        part = item
        while not arrivals.empty():
            more = arrivals.get_nowait()
            if more is None:
                yield part
                return
            part.extend(more)
        yield part


def _story_params(slot: datetime, part: MinutePart) -> dict[str, Any]:
    seen = part.stories
    return {
        "at": slot,
        "ids": [p.hn_id for p in seen],
        "titles": [p.title for p in seen],
        "bys": [p.author for p in seen],
        "types": [p.type for p in seen],
        "urls": [p.url for p in seen],
        "domains": [p.domain for p in seen],
        "submitted": [p.created_at for p in seen],
    }


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


_PARTITION_LOCK = 0x686E7061
_INSERT_MINUTE = (
    "INSERT INTO rank_minutes (sampled_at, lists, lens, hn_ids, scores, comments) VALUES "
    "(%(at)s, %(lists)b::smallint[], %(lens)b::smallint[], %(ids)b::integer[], "
    "%(scores)b::integer[], %(comments)b::integer[])"
)
_UPSERT_STORIES = """
    INSERT INTO stories (hn_id, title, "by", type, url, domain, submitted_at, first_seen, last_seen)
    SELECT v.*, %(at)s, %(at)s FROM unnest(
        %(ids)b::integer[], %(titles)b::text[], %(bys)b::text[], %(types)b::text[],
        %(urls)b::text[], %(domains)b::text[], %(submitted)b::timestamptz[]) AS v
    ON CONFLICT (hn_id) DO UPDATE
       SET title = EXCLUDED.title, url = EXCLUDED.url, domain = EXCLUDED.domain,
           first_seen = least(stories.first_seen, EXCLUDED.first_seen),
           last_seen = greatest(stories.last_seen, EXCLUDED.last_seen)
"""
_UPSERT_SPANS = """
    INSERT INTO rank_spans (hn_id, list, first_at, last_at)
    SELECT v.hn_id, v.list, %(at)s, %(at)s
      FROM unnest(%(ids)b::integer[], %(codes)b::smallint[]) AS v(hn_id, list)
    ON CONFLICT (hn_id, list) DO UPDATE
       SET first_at = least(rank_spans.first_at, EXCLUDED.first_at),
           last_at = greatest(rank_spans.last_at, EXCLUDED.last_at)
"""


def row_to_post(row: Any) -> Post:
    """A ``posts`` row as a ``Post``."""
    return Post(
        hn_id=row["hn_id"],
        title=row["title"],
        author=row["author"],
        url=row["url"],
        domain=row["domain"],
        score=row["score"],
        comment_count=row["comment_count"],
        created_at=row["created_at"],
        collected_at=row["collected_at"],
        type=row["type"],
        is_dead=row["is_dead"],
    )
