import asyncio
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hnlab import HNClient, HourlyPostsCollectorJob, PostRepository, RocksDBStore
from hnlab.config import Settings
from hnlab.errors import CollectionError
from hnlab.run.factory import collect_once
from hnlab.sim.server import Scripted, SimulatedHN
from hnlab.store.db import make_async_engine
from tests.helpers import rows

from .conftest import START
from .helpers import hnlab_cli, settings_env


def collect(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(collect_once(settings, clock=lambda: START, **kwargs))


def test_statistics_over_every_item_shape(
    recorded: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(
        hn_api_url=recorded.base_url, score_threshold=10, posts_limit=13, retry_attempts=2
    )
    stats = collect(settings)
    expected = {
        "posts_fetched": 5,  # 41247023, 40464529, 41244423, 30239441 and 115 score >= 10
        "posts_saved": 5,
        "posts_cached": 5,
        "duplicates_skipped": 0,
        "errors": 2,  # 113 truncated, 114 503 for good
        "last_run": START.isoformat(),
        "items_requested": 13,
        "below_threshold": 3,  # the job (1), the launch (2) and 41247275 (4)
        "unavailable": 3,  # a deleted comment, a null body, a bare story
        "snapshots": 11,
    }
    assert {k: stats[k] for k in expected} == expected
    assert stats["run_id"] == 1 and stats["reconciled"] == 0
    assert rows(
        engine, "SELECT hn_id, rank, score, comment_count FROM post_snapshots ORDER BY rank"
    ) == [
        (41247023, 1, 350, 118),
        (41245073, 2, 1, 0),
        (41247211, 3, 2, 0),
        (40464529, 4, 18, 2),
        (41247275, 5, 4, 0),
        (41244423, 6, 55, 13),
        (30239441, 7, 312, 355),
        (40475078, 8, None, None),
        (111, 9, None, None),
        (112, 10, None, None),
        (115, 13, 80, 0),
    ]
    assert rows(engine, "SELECT hn_id, type, domain, is_dead FROM posts ORDER BY hn_id") == [
        (115, "story", "dead.example", True),
        (30239441, "poll", None, False),
        (40464529, "story", "willowprotocol.org", False),
        (41244423, "show", "github.com", False),
        (41247023, "show", "ytch.xyz", False),
    ]
    run = rows(
        engine,
        "SELECT status, trigger, posts_fetched, posts_saved, posts_cached, "
        "duplicates_skipped, errors, cache_pending FROM collection_runs",
    )
    assert run == [("succeeded", "manual", 5, 5, 5, 0, 2, False)]


def test_exact_post_row_and_cache_json(
    recorded: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=recorded.base_url, score_threshold=10, posts_limit=1)
    collect(settings)
    row = rows(
        engine,
        "SELECT hn_id, title, author, url, domain, score, comment_count, "
        "created_at, collected_at, type, is_dead, last_seen_at FROM posts",
    )
    assert row == [
        (
            41247023,
            "Show HN: If YouTube had actual channels",
            "hadisafa",
            "https://ytch.xyz",
            "ytch.xyz",
            350,
            118,
            datetime(2024, 8, 14, 15, 10, 6, tzinfo=UTC),
            START,
            "show",
            False,
            START,
        )
    ]
    with RocksDBStore(settings.rocksdb, mode="read_only") as store:
        assert store.get_metadata(41247023) == {
            "hn_id": 41247023,
            "title": "Show HN: If YouTube had actual channels",
            "author": "hadisafa",
            "url": "https://ytch.xyz",
            "points": 350,
            "num_comments": 118,
            "post_type": "show",
            "created_at": "2024-08-14T15:10:06.000000",
            "collected_at": "2026-03-01T12:00:00.000000",
        }


def test_a_second_run_over_the_same_page_saves_nothing_new(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=100)
    first = collect(settings)
    second = collect(settings)
    assert first["posts_saved"] > 0 and first["duplicates_skipped"] == 0
    assert second["posts_saved"] == 0 and second["posts_cached"] == 0
    assert second["duplicates_skipped"] == first["posts_saved"] == second["posts_fetched"]
    assert rows(engine, "SELECT count(*), count(DISTINCT hn_id) FROM posts") == [
        (first["posts_saved"], first["posts_saved"])
    ]
    ranks = rows(
        engine,
        "SELECT run_id, count(*), min(rank), max(rank) FROM post_snapshots "
        "GROUP BY run_id ORDER BY run_id",
    )
    assert [r[1:] for r in ranks] == [(100, 1, 100), (100, 1, 100)]  # every rank, every run


def test_scores_are_refreshed_when_the_page_moves(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=30, score_threshold=0)
    before = set(sim.story_ids("top")[:30])
    collect(settings)
    sim.advance(hours=2)
    stayed = sorted(before & set(sim.story_ids("top")[:30]))
    assert stayed  # the page moved, but not every story left it
    asyncio.run(collect_once(settings, clock=lambda: START + timedelta(hours=2)))
    stored = dict(
        (r[0], r[1:])
        for r in rows(engine, "SELECT hn_id, score, last_seen_at, collected_at FROM posts")
    )
    for hn_id in stayed:
        item = sim.item(hn_id)
        if item is None or "title" not in item:
            continue
        assert stored[hn_id] == (item["score"], START + timedelta(hours=2), START)


def test_topstories_unreachable_fails_the_run_with_a_record_and_no_cache(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    sim.script("topstories.json", *[503] * 5)
    settings = make_settings(hn_api_url=sim.base_url, retry_attempts=2)
    with pytest.raises(
        CollectionError,
        match=r"^run 1 failed: cannot fetch the top list: "
        r"topstories.json: HTTP 503",
    ):
        collect(settings)
    assert rows(engine, "SELECT status, error LIKE '%HTTP 503%' FROM collection_runs") == [
        ("failed", True)
    ]
    assert rows(engine, "SELECT count(*) FROM posts") == [(0,)]
    assert not settings.rocksdb.exists()


HOLD = textwrap.dedent("""
    import sys
    from hnlab.store.cache import RocksDBStore
    with RocksDBStore(sys.argv[1]):
        print("ready", flush=True)
        sys.stdin.readline()
""")


def test_a_locked_cache_still_saves_posts_and_the_next_run_fills_it(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=50)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(settings.rocksdb)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    try:
        locked = collect(settings)
    finally:
        holder.communicate("\n")
    assert locked["posts_saved"] > 0 and locked["posts_cached"] == 0
    assert "is locked by another writer" in locked["cache_error"]
    assert rows(
        engine, "SELECT status, cache_pending, error LIKE '%locked%' FROM collection_runs"
    ) == [("succeeded", True, True)]
    after = collect(settings)
    assert after["reconciled"] == locked["posts_saved"]
    assert rows(engine, "SELECT bool_or(cache_pending) FROM collection_runs") == [(False,)]
    with RocksDBStore(settings.rocksdb, mode="read_only") as store:
        assert store.get_stats()["total_keys"] == locked["posts_saved"]


def test_postgres_unreachable_fails_clearly_and_writes_no_cache(
    sim: SimulatedHN, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        hn_api_url=sim.base_url, database_url="postgresql://u:pw@127.0.0.1:1/x"
    )
    with pytest.raises(
        Exception,
        match=r"cannot reach PostgreSQL at "
        r"postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x",
    ):
        collect(settings)
    assert not settings.rocksdb.exists()


def test_cli_collect_prints_json_and_exits_0(sim: SimulatedHN, settings: Settings) -> None:
    result = hnlab_cli(
        "collect", "--json", "--limit", "20", "--threshold", "0", env=settings_env(settings)
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["posts_fetched"] == stats["posts_saved"] + stats["duplicates_skipped"]
    assert stats["items_requested"] == 20


def test_cli_collect_failure_is_one_line_and_exit_1(sim: SimulatedHN, settings: Settings) -> None:
    sim.script("topstories.json", *[503] * 10)
    env = {**settings_env(settings), "HNLAB_RETRY_ATTEMPTS": "2"}
    result = hnlab_cli("collect", env=env)
    assert result.returncode == 1
    assert re.match(
        r"Error: run \d+ failed: cannot fetch the top list: "
        r"topstories.json: HTTP 503 \(gave up after retries\)$",
        result.stderr,
    )
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_collect_top_posts_records_its_own_run_or_works_for_an_open_one(
    recorded: SimulatedHN, database_url: str, engine: sa.Engine, tmp_path: Any
) -> None:
    from hnlab.store import records

    async def go() -> tuple[dict[str, Any], dict[str, Any], int]:
        async_engine = make_async_engine(database_url)
        try:
            job = HourlyPostsCollectorJob(
                PostRepository(async_engine),
                RocksDBStore(tmp_path / "c.rocksdb"),
                HNClient(recorded.base_url, retry_attempts=1),
                score_threshold=50,
                limit=7,
            )
            alone = await job.collect_top_posts()  # the seed's call: a run of its own
            run_id = await records.open_run(async_engine, trigger="manual", started=START)
            assert run_id is not None
            for_caller = await job.collect_top_posts(run_id=run_id, started=START)
            return alone, for_caller, run_id
        finally:
            await async_engine.dispose()

    alone, for_caller, run_id = asyncio.run(go())
    assert (alone["posts_saved"], alone["duplicates_skipped"]) == (3, 0)
    assert (for_caller["run_id"], for_caller["posts_saved"]) == (run_id, 0)
    assert for_caller["duplicates_skipped"] == 3
    assert rows(engine, "SELECT id, status FROM collection_runs ORDER BY id") == [
        (alone["run_id"], "succeeded"),
        (run_id, "running"),  # the caller that opened it closes it
    ]


def test_a_collection_for_a_claimed_slot_is_refused_and_changes_nothing(
    settings: Settings, engine: sa.Engine
) -> None:
    from hnlab.run.factory import collector_from_settings

    async def go() -> str:
        async with collector_from_settings(settings) as job:
            await job.run_collection(slot=START)
            with pytest.raises(CollectionError) as refused:
                await job.run_collection(slot=START)
            return str(refused.value)

    message = asyncio.run(go())
    assert message == (
        "collection not started: slot 2026-03-01 12:00Z is already claimed by another run"
    )
    assert rows(engine, "SELECT slot, status FROM collection_runs") == [(START, "succeeded")]


def test_rows_are_written_while_the_last_answers_are_in_flight(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=60)
    slow = sim.story_ids("top")[59]
    sim.script(f"item/{slow}.json", Scripted(delay_ms=3000))
    locks = (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'post_snapshots' AND l.mode = 'RowExclusiveLock' "
        "AND l.pid <> pg_backend_pid()"
    )

    async def run() -> tuple[dict[str, Any], int]:
        collecting = asyncio.create_task(collect_once(settings))
        held = 0
        for _ in range(50):  # the transaction has written rows before the last answer came
            await asyncio.sleep(0.05)
            held = (await asyncio.to_thread(rows, engine, locks))[0][0]
            if held or collecting.done():
                break
        return await collecting, held

    stats, held = asyncio.run(run())
    assert held >= 1 and sim.requests_for(f"item/{slow}.json") == 1
    assert stats["snapshots"] == 60  # all of them, in the one transaction
    assert rows(engine, "SELECT count(*), min(rank), max(rank) FROM post_snapshots") == [
        (60, 1, 60)
    ]


def test_a_run_cancelled_mid_fetch_writes_nothing(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=60, score_threshold=0)
    slow = sim.story_ids("top")[59]
    sim.script(f"item/{slow}.json", Scripted(delay_ms=3000))

    locks = (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'post_snapshots' AND l.mode = 'RowExclusiveLock' "
        "AND l.pid <> pg_backend_pid()"
    )

    async def run() -> int:
        collecting = asyncio.create_task(collect_once(settings))
        held = 0
        for _ in range(200):  # wait until the transaction has written rows
            await asyncio.sleep(0.05)
            held = (await asyncio.to_thread(rows, engine, locks))[0][0]
            if held or collecting.done():
                break
        assert not collecting.done()  # the last answer is still pending
        collecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await collecting
        return int(held)

    assert asyncio.run(run()) >= 1  # rows were written, then rolled back
    assert rows(engine, "SELECT count(*) FROM post_snapshots") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM posts") == [(0,)]
