"""PostRepository: the hourly collection's posts and snapshots (async, bulk statements).

The seed's repository. It writes what a collection run *saw*; the run's own record
is ``records``' business, and the minute tracker's rows are ``minutes``'.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hnlab.hn.items import Post
from hnlab.store.db import connection, read, transaction
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

    async def existing_hn_ids(self, hn_ids: Iterable[int]) -> set[int]:
        """Which of ``hn_ids`` are already stored, in one query."""
        ids = sorted(set(hn_ids))
        if not ids:
            return set()
        stmt = sa.select(posts.c.hn_id).where(posts.c.hn_id.in_(ids))
        async with connection(self.engine) as conn:
            return set((await conn.execute(stmt)).scalars())

    async def save_posts(self, new_posts: Sequence[Post]) -> int:
        """Insert posts (ON CONFLICT (hn_id) DO NOTHING) in one statement; return the count."""
        async with transaction(self.engine) as conn:
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
        async with transaction(self.engine) as conn:
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
        return [row_to_post(r) for r in await read(self.engine, stmt)]

    async def top_posts(self, since: datetime, until: datetime, limit: int = 10) -> list[Post]:
        """The highest-scoring posts seen in ``(since, until]``, by their latest score."""
        stmt = (
            posts.select()
            .where(posts.c.last_seen_at > since, posts.c.last_seen_at <= until)
            .order_by(posts.c.score.desc(), posts.c.hn_id)
            .limit(limit)
        )
        return [row_to_post(r) for r in await read(self.engine, stmt)]


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
