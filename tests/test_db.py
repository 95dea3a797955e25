import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.errors import SchemaError
from hnlab.hn.items import Post
from hnlab.store import db, posts, records

from .helpers import on_loop

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def post(
    hn_id: int, score: int = 100, comments: int = 3, dead: bool = False, at: datetime = T0
) -> Post:
    return Post(
        hn_id=hn_id,
        title=f"Story {hn_id}",
        author="pg",
        url=f"https://x.org/{hn_id}",
        domain="x.org",
        score=score,
        comment_count=comments,
        created_at=T0 - timedelta(hours=1),
        collected_at=at,
        type="story",
        is_dead=dead,
    )


def test_migrations_run_from_empty_to_head_twice(empty_database_url: str) -> None:
    eng = db.make_engine(empty_database_url)
    try:
        assert db.current_revision(eng) is None
        assert db.upgrade(eng) == (None, db.head_revision())
        assert db.upgrade(eng) == (db.head_revision(), db.head_revision())
        with eng.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert tables == {
            "alembic_version",
            "posts",
            "post_snapshots",
            "collection_runs",
            "runners",
            "story_sightings",
            "rank_minutes",
            "rank_spans",
            "track_ticks",
            "job_outcomes",
            "items",
            "item_revisions",
            "item_gaps",
            "item_chunks",
            "contents",
            "summaries",
        }
        with eng.connect() as conn:
            assert sa.inspect(conn).get_view_names() == ["stories"]
    finally:
        eng.dispose()


def test_auto_migrate_off_stops_on_an_old_schema(empty_database_url: str) -> None:
    eng = db.make_engine(empty_database_url)
    try:
        with pytest.raises(
            SchemaError,
            match=r"schema is at nothing, hnlab needs 0005; run "
            r"'hnlab db upgrade' \(HNLAB_AUTO_MIGRATE=0",
        ):
            db.ensure_schema(eng, auto_migrate=False)
        db.ensure_schema(eng, auto_migrate=True)
        db.ensure_schema(eng, auto_migrate=False)
    finally:
        eng.dispose()


def test_concurrent_upgrades_from_several_threads_all_succeed(empty_database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    engines = [db.make_engine(empty_database_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(db.upgrade, engines))
        assert all(r[1] == "0005" for r in results)
        assert sum(1 for before, _ in results if before is None) >= 1
    finally:
        for e in engines:
            e.dispose()


def columns(eng: sa.Engine, table: str) -> dict[str, tuple[str, str]]:
    with eng.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = :t"
            ),
            {"t": table},
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def indexes(eng: sa.Engine, table: str) -> dict[str, str]:
    with eng.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}
        )
        return {r[0]: r[1].split(" USING ")[1] for r in rows}


def test_posts_has_the_seed_columns_and_indexes(engine: sa.Engine) -> None:
    tz = "timestamp with time zone"
    assert columns(engine, "posts") == {
        "id": ("uuid", "NO"),
        "hn_id": ("integer", "NO"),
        "title": ("text", "NO"),
        "author": ("character varying", "YES"),
        "url": ("text", "YES"),
        "domain": ("character varying", "YES"),
        "score": ("integer", "NO"),
        "comment_count": ("integer", "NO"),
        "created_at": (tz, "NO"),
        "collected_at": (tz, "NO"),
        "type": ("character varying", "NO"),
        "is_dead": ("boolean", "NO"),
        "last_seen_at": (tz, "NO"),
    }
    assert indexes(engine, "posts") == {
        "posts_pkey": "btree (id)",
        "ix_posts_hn_id": "btree (hn_id)",
        "ix_posts_score": "btree (score)",
        "ix_posts_created_at": "btree (created_at)",
        "ix_posts_collected_at": "btree (collected_at)",
    }
    with engine.connect() as conn:
        unique = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_posts_hn_id'")
        ).scalar_one()
    assert unique.startswith("CREATE UNIQUE INDEX")


def test_snapshots_and_runs_tables(engine: sa.Engine) -> None:
    tz = "timestamp with time zone"
    snap = columns(engine, "post_snapshots")
    assert {k: v[0] for k, v in snap.items()} == {
        "id": "bigint",
        "run_id": "bigint",
        "hn_id": "integer",
        "list": "character varying",
        "rank": "smallint",
        "score": "integer",
        "comment_count": "integer",
        "observed_at": tz,
    }
    assert "btree (observed_at)" in indexes(engine, "post_snapshots").values()
    runs = columns(engine, "collection_runs")
    for name in ("slot", "started_at", "finished_at", "last_run"):
        assert runs[name][0] == tz
    for name in ("posts_fetched", "posts_saved", "posts_cached", "duplicates_skipped", "errors"):
        assert runs[name][0] == "integer"
    assert {"trigger", "status", "notebook_path", "error"} <= set(runs)
    assert indexes(engine, "collection_runs")["ux_collection_runs_slot"] == "btree (slot)"


class StatementCounter:
    """Counts statements an engine sends, by their first word."""

    def __init__(self, eng: sa.Engine) -> None:
        self.statements: list[str] = []
        event.listen(eng, "before_cursor_execute", self._seen)
        self.eng = eng

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        self.statements.append(statement.split()[0].upper())

    def close(self) -> None:
        event.remove(self.eng, "before_cursor_execute", self._seen)


@pytest.fixture
def repo(database_url: str, engine: sa.Engine) -> Iterator[posts.PostRepository]:
    async_engine = db.make_async_engine(database_url, pool_pre_ping=False)
    yield posts.PostRepository(async_engine)
    asyncio.run(async_engine.dispose())


def test_bulk_writes_are_one_statement_each_for_500_rows(
    repo: posts.PostRepository, engine: sa.Engine
) -> None:
    async def scenario() -> tuple[posts.WriteResult, posts.WriteResult, list[str], set[int]]:
        run_id = await records.open_run(repo.engine, trigger="manual", started=T0)
        assert run_id is not None
        first = [post(i) for i in range(1, 301)]
        await repo.save_posts(first)
        counter = StatementCounter(repo.engine.sync_engine)
        seen = [post(i, score=200 + i, dead=i == 5) for i in range(1, 501)]
        obs = [
            posts.Observation(p.hn_id, rank, p.score, p.comment_count)
            for rank, p in enumerate(seen, 1)
        ]
        written = await repo.record_observations(
            run_id, "top", obs, seen[300:], seen, T0 + timedelta(hours=1)
        )
        counter.close()
        again = await repo.record_observations(
            run_id, "top", obs, seen[300:], seen, T0 + timedelta(hours=1)
        )
        existing = await repo.existing_hn_ids([1, 2, 499, 500, 501, 999])
        return written, again, counter.statements, existing

    written, again, statements, existing = asyncio.run(scenario())
    assert statements == ["UPDATE", "INSERT", "INSERT", "UPDATE"]  # refresh, posts, snaps, flag
    assert (len(written.inserted), written.refreshed, written.snapshots) == (200, 300, 500)
    assert (len(again.inserted), again.refreshed, again.snapshots) == (0, 500, 0)
    assert existing == {1, 2, 499, 500}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == 500
        row = conn.execute(
            sa.text("SELECT score, is_dead, last_seen_at, collected_at FROM posts WHERE hn_id = 5")
        ).one()
        assert row == (205, True, T0 + timedelta(hours=1), T0)
        assert conn.execute(sa.text("SELECT count(*) FROM post_snapshots")).scalar_one() == 500


def test_an_older_observation_never_overwrites_a_newer_one(
    repo: posts.PostRepository, engine: sa.Engine
) -> None:
    async def scenario() -> None:
        run_id = await records.open_run(repo.engine, trigger="manual", started=T0)
        assert run_id is not None
        later = post(1, score=90, at=T0 + timedelta(hours=2))
        await repo.record_observations(run_id, "top", [], [later], [later], T0 + timedelta(hours=2))
        await repo.record_observations(
            run_id, "top", [], [], [post(1, score=10)], T0 + timedelta(hours=1)
        )

    asyncio.run(scenario())
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT score FROM posts")).scalar_one() == 90


def test_a_slot_is_claimed_once(engine: sa.Engine) -> None:
    async def claims(eng: AsyncEngine) -> list[int | None]:
        return [
            await records.open_run(eng, trigger="scheduled", started=T0, slot=T0),
            await records.open_run(
                eng, trigger="scheduled", started=T0 + timedelta(seconds=2), slot=T0
            ),
            await records.open_run(
                eng, trigger="scheduled", started=T0, slot=T0 + timedelta(hours=1)
            ),
        ]

    first, second, other_hour = on_loop(engine, claims)
    assert first is not None and second is None and other_hour not in (None, first)


def test_stale_running_records_are_closed_as_failed(engine: sa.Engine) -> None:
    async def scenario(eng: AsyncEngine) -> tuple[int, list[dict[str, Any] | None]]:
        old = await records.open_run(eng, trigger="manual", started=T0)
        fresh = await records.open_run(eng, trigger="manual", started=T0 + timedelta(minutes=50))
        assert old is not None and fresh is not None
        closed = await records.close_stale_runs(
            eng, T0 + timedelta(minutes=30), T0 + timedelta(hours=1)
        )
        return closed, [await records.get_run(eng, old), await records.get_run(eng, fresh)]

    closed, (old, fresh) = on_loop(engine, scenario)
    assert closed == 1
    assert old is not None and fresh is not None
    assert old["status"] == "failed"
    assert "closed as stale" in old["error"]
    assert fresh["status"] == "running"
