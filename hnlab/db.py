"""PostgreSQL: engines (embedded default or HNLAB_DATABASE_URL), schema, PostRepository.

One ``postgresql+psycopg://`` URL serves the async engine (collector) and the
sync engine (analysts, pandas, migrations). An async engine never crosses
event loops: make one per loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from hnlab import embedded
from hnlab.config import Settings, normalize_database_url
from hnlab.errors import DatabaseError, SchemaError
from hnlab.items import Post
from hnlab.records import (
    claim_slot_async,
    close_stale_runs_async,
    connection_error,
    finish_run_async,
    host_name,
)
from hnlab.tables import collection_runs, posts

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x686E6C6162


# -- URLs and engines ------------------------------------------------------------------
def database_url(settings: Settings) -> str:
    """The URL to use: HNLAB_DATABASE_URL, or the embedded server (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return embedded.attach(settings.postgres_dir).url()


CONNECT_TIMEOUT_S = 10
"""How long a new connection may take unless the URL sets ``connect_timeout``.

libpq's default is to wait forever: a server that accepts TCP but never answers (a hung
host, a half-open firewall) would hang the hourly runner and every fire after it.
"""


def _engine_kwargs(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in sa.make_url(url).query:
        connect_args = dict(kwargs.get("connect_args", {}))
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        kwargs["connect_args"] = connect_args
    return kwargs


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """A sync engine (psycopg 3) that pre-pings pooled connections and bounds connecting."""
    url = normalize_database_url(url)
    return sa.create_engine(url, **_engine_kwargs(url, kwargs))


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine (psycopg 3) that pre-pings pooled connections and bounds connecting."""
    url = normalize_database_url(url)
    return create_async_engine(url, **_engine_kwargs(url, kwargs))


def engine(settings: Settings | None = None, *, migrate: bool = True) -> sa.Engine:
    """A sync engine from the settings (the embedded server by default), schema at head."""
    settings = settings or Settings.from_env()
    url = database_url(settings)
    eng = make_engine(url)
    if migrate:
        ensure_schema(eng, auto_migrate=settings.auto_migrate or settings.uses_embedded)
    return eng


def connect(settings: Settings | None = None) -> sa.Connection:
    """A sync connection for pandas; close it (``with``) when done."""
    return engine(settings).connect()


# -- schema ----------------------------------------------------------------------------
def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration this hnlab ships."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(eng: sa.Engine) -> str | None:
    """The database's migration revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    try:
        with eng.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa_exc.OperationalError as exc:
        raise connection_error(eng, exc) from None


def upgrade(eng: sa.Engine) -> tuple[str | None, str]:
    """Bring the database to head; safe to run again and from several processes at once."""
    from alembic import command

    before = current_revision(eng)
    head = head_revision()
    if before == head:
        return before, head
    with eng.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        command.upgrade(_alembic_config(conn), "head")
    log.info("database upgraded from %s to %s", before or "empty", head)
    return before, head


def ensure_schema(eng: sa.Engine, *, auto_migrate: bool) -> None:
    """Upgrade to head, or with auto-migration off, fail clearly if the schema is behind."""
    if auto_migrate:
        upgrade(eng)
        return
    current, head = current_revision(eng), head_revision()
    if current != head:
        raise SchemaError(
            f"the database schema is at {current or 'nothing'}, hnlab needs {head}; "
            "run 'hnlab db upgrade' (HNLAB_AUTO_MIGRATE=0 is set)"
        )


# -- the repository ---------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """One story seen at one rank of one list in one run."""

    hn_id: int
    rank: int
    score: int | None
    comment_count: int | None


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
    """Async access to posts, snapshots and run records.

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

    def _wrap(self, exc: Exception) -> DatabaseError:
        return connection_error(self.engine, exc)

    async def ping(self) -> None:
        """Fail with a clear DatabaseError if PostgreSQL cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError) as exc:
            raise self._wrap(exc) from None

    async def existing_hn_ids(self, hn_ids: Iterable[int]) -> set[int]:
        """Which of ``hn_ids`` are already stored, in one query."""
        ids = sorted(set(hn_ids))
        if not ids:
            return set()
        stmt = sa.select(posts.c.hn_id).where(posts.c.hn_id.in_(ids))
        async with self.engine.connect() as conn:
            return set((await conn.execute(stmt)).scalars())

    async def save_posts(self, new_posts: Sequence[Post]) -> int:
        """Insert posts (ON CONFLICT (hn_id) DO NOTHING) in one statement; return the count."""
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
        result = WriteResult()
        try:
            async with self.engine.begin() as conn:
                # Refresh first, so the count is of posts that were already stored.
                result.refreshed = await self._refresh(conn, seen, seen_at)
                result.inserted = await self._insert(conn, new_posts)
                result.snapshots = await self._snapshots(
                    conn, run_id, list_name, observations, seen_at
                )
                if result.inserted:
                    await conn.execute(
                        collection_runs.update()
                        .where(collection_runs.c.id == run_id)
                        .values(cache_pending=True)
                    )
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise self._wrap(exc) from None
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

    # -- run records -------------------------------------------------------------------
    async def start_run(
        self,
        trigger: str,
        started_at: datetime,
        slot: datetime | None = None,
        notebook_path: str | None = None,
    ) -> int:
        """Insert a ``running`` record and return its id."""
        stmt = (
            collection_runs.insert()
            .values(
                trigger=trigger,
                status="running",
                started_at=started_at,
                slot=slot,
                notebook_path=notebook_path,
                host=host_name(),
                pid=os.getpid(),
            )
            .returning(collection_runs.c.id)
        )
        try:
            async with self.engine.begin() as conn:
                return int((await conn.execute(stmt)).scalar_one())
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise self._wrap(exc) from None

    async def claim_slot(
        self, slot: datetime, trigger: str, started_at: datetime, notebook_path: str | None = None
    ) -> int | None:
        """Claim the UTC hour ``slot``: the run id if this caller won, None if taken."""
        return await claim_slot_async(self.engine, slot, trigger, started_at, notebook_path)

    async def finish_run(
        self,
        run_id: int,
        status: str,
        finished_at: datetime,
        statistics: dict[str, Any] | None = None,
        error: str | None = None,
        cache_pending: bool | None = None,
    ) -> None:
        """Close a run record with its status, statistics and error."""
        await finish_run_async(
            self.engine, run_id, status, finished_at, statistics, error, cache_pending
        )

    async def get_run(self, run_id: int) -> dict[str, Any] | None:
        """One run record as a dict, or None."""
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(collection_runs.select().where(collection_runs.c.id == run_id)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def runs_needing_cache(self) -> list[int]:
        """Ids of runs whose new posts may be missing from RocksDB."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(collection_runs.c.id).where(collection_runs.c.cache_pending)
            )
            return list(rows.scalars())

    async def clear_cache_pending(self, run_ids: Sequence[int]) -> None:
        """Mark runs' posts as cached."""
        if not run_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                collection_runs.update()
                .where(collection_runs.c.id.in_(list(run_ids)))
                .values(cache_pending=False)
            )

    async def posts_by_hn_ids(self, hn_ids: Sequence[int] | None = None) -> list[Post]:
        """Stored posts (all of them when ``hn_ids`` is None), as ``Post`` objects."""
        stmt = posts.select().order_by(posts.c.hn_id)
        if hn_ids is not None:
            stmt = stmt.where(posts.c.hn_id.in_(list(hn_ids)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [row_to_post(r) for r in rows]

    async def close_stale_runs(self, older_than: datetime, now: datetime) -> int:
        """Mark ``running`` records started before ``older_than`` as failed (killed runs)."""
        return await close_stale_runs_async(self.engine, older_than, now)


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


def stored_posts(eng: sa.Engine) -> list[Post]:
    """Every stored post, by hn_id (sync; for cache checks and rebuilds)."""
    with eng.connect() as conn:
        rows = conn.execute(posts.select().order_by(posts.c.hn_id)).mappings().all()
    return [row_to_post(r) for r in rows]
