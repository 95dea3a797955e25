"""Fault injection: each fault is real (a server, a process, a socket), and each test checks
the rows, the run record, what the user sees, and that the next run recovers by itself."""

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.triggers.interval import IntervalTrigger

from hnlab import JobScheduler
from hnlab.collect.collector import HourlyPostsCollectorJob
from hnlab.config import Settings
from hnlab.errors import CollectionError
from hnlab.hn.client import HNClient
from hnlab.run.factory import collect_once, collector_from_settings
from hnlab.sim.server import Scripted, SimulatedHN
from hnlab.store import db, records
from hnlab.store.cache import RocksDBStore
from hnlab.store.embedded import EmbeddedPostgres
from hnlab.store.posts import PostRepository
from tests.helpers import eventually
from tests.helpers import rows as q

from .conftest import START
from .helpers import hnlab_cli, hnlab_process, on_loop, settings_env

pytestmark = pytest.mark.slow


def agree(settings: Settings, engine: sa.Engine) -> None:
    """PostgreSQL and RocksDB hold the same posts, and no post or snapshot is duplicated."""
    assert q(engine, "SELECT count(*) = count(DISTINCT hn_id) FROM posts") == [(True,)]
    assert q(
        engine, "SELECT count(*) = count(DISTINCT (run_id, list, hn_id)) FROM post_snapshots"
    ) == [(True,)]
    stored = {r[0] for r in q(engine, "SELECT hn_id FROM posts")}
    with RocksDBStore(settings.rocksdb, mode="read_only") as store:
        cached = {m["hn_id"] for m in store.iter_metadata()}
    assert cached == stored


def test_503_then_200_items_are_saved_without_errors(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    ids = sim.story_ids()[:20]
    for i in ids[:10]:
        sim.script(f"item/{i}.json", 503)
    stats = asyncio.run(
        collect_once(make_settings(hn_api_url=sim.base_url, posts_limit=20, score_threshold=0))
    )
    assert stats["errors"] == 0
    assert stats["posts_saved"] + stats["unavailable"] == 20
    assert all(sim.requests_for(f"item/{i}.json") == 2 for i in ids[:10])


def test_read_timeouts_are_counted_and_the_run_ends_within_its_deadline(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    slow = sim.story_ids()[:5]
    for i in slow:
        sim.script(f"item/{i}.json", *[Scripted(delay_ms=3000)] * 5)
    settings = make_settings(
        hn_api_url=sim.base_url, posts_limit=30, read_timeout=0.3, retry_attempts=3, run_deadline=2
    )
    t0 = time.monotonic()
    stats = asyncio.run(collect_once(settings))
    assert time.monotonic() - t0 < 2 + 1.5  # the deadline, plus PostgreSQL and RocksDB
    assert stats["errors"] == 5
    assert q(engine, "SELECT status, errors FROM collection_runs") == [("succeeded", 5)]
    assert set(q(engine, "SELECT hn_id FROM post_snapshots")).isdisjoint({(i,) for i in slow})


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A socket that listens but never accepts: once its backlog is full, connects hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue so the next SYN is dropped
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(server.getsockname())
        fillers.append(s)
    yield server.getsockname()[1]
    for s in (*fillers, server):
        s.close()


def test_a_connect_timeout_fails_the_run_within_its_deadline_with_a_clear_error(
    unaccepting_port: int, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(
        hn_api_url=f"http://127.0.0.1:{unaccepting_port}/v0",
        connect_timeout=0.3,
        retry_attempts=2,
        run_deadline=3,
    )
    t0 = time.monotonic()
    with pytest.raises(
        CollectionError,
        match=r"cannot fetch the top list: topstories.json: "
        r"timed out \(ConnectTimeout\)",
    ):
        asyncio.run(collect_once(settings))
    assert time.monotonic() - t0 < 3
    [(status, error)] = q(engine, "SELECT status, error FROM collection_runs")
    assert status == "failed" and "ConnectTimeout" in error


def test_a_postgresql_that_never_answers_fails_after_the_connect_timeout(
    unaccepting_port: int, sim: SimulatedHN, tmp_path: Path
) -> None:
    """libpq would wait forever; hnlab bounds connecting unless the URL sets connect_timeout."""
    url = f"postgresql://postgres@127.0.0.1:{unaccepting_port}/hnlab"
    env = {"HNLAB_DATABASE_URL": url, "HNLAB_DATA_DIR": str(tmp_path / "data")}
    cli: list[subprocess.CompletedProcess[str]] = []
    worker = threading.Thread(target=lambda: cli.append(hnlab_cli("db", "status", env=env)))
    t0 = time.monotonic()
    worker.start()

    async def collect() -> None:
        eng = db.make_async_engine(url)
        job = HourlyPostsCollectorJob(
            PostRepository(eng), RocksDBStore(tmp_path / "c.rocksdb"), HNClient(sim.base_url)
        )
        try:
            await job.run_collection()
        finally:
            await eng.dispose()

    with pytest.raises(CollectionError) as failed:
        asyncio.run(collect())
    took = time.monotonic() - t0
    worker.join(60)

    reason = (
        f"cannot reach PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:{unaccepting_port}"
        "/hnlab: connection timeout expired; start the server or fix HNLAB_DATABASE_URL"
    )
    assert str(failed.value) == f"collection not started: {reason}"
    assert db.CONNECT_TIMEOUT_S - 1 < took < db.CONNECT_TIMEOUT_S + 10
    assert not (tmp_path / "c.rocksdb").exists()
    [result] = cli
    assert result.returncode == 1
    assert result.stderr == f"Error: {reason}\n"


@pytest.fixture
def own_settings(own_pg: EmbeddedPostgres, sim: SimulatedHN, tmp_path: Path) -> Settings:
    return Settings.from_env(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "database_url": own_pg.url(),
            "hn_api_url": sim.base_url,
            "retry_attempts": 2,
            "posts_limit": 50,
        },
    )


def test_postgres_down_at_start_then_back(
    own_pg: EmbeddedPostgres, own_settings: Settings, tmp_path: Path
) -> None:
    own_pg.pause()
    result = hnlab_cli("collect", env=settings_env(own_settings))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach PostgreSQL at postgresql+psycopg://")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not own_settings.rocksdb.exists()
    own_pg.resume()
    again = hnlab_cli("collect", "--json", env=settings_env(own_settings))
    assert again.returncode == 0, again.stderr
    eng = db.make_engine(own_pg.url())
    try:
        assert q(eng, "SELECT status FROM collection_runs") == [("succeeded",)]
        agree(own_settings, eng)
    finally:
        eng.dispose()


def test_a_restart_between_runs_is_absorbed_by_pre_ping(
    own_pg: EmbeddedPostgres, own_settings: Settings
) -> None:
    async def two_runs() -> list[dict[str, Any]]:
        async with collector_from_settings(own_settings) as job:  # one engine, one pool
            first = await job.run_collection()
            await asyncio.to_thread(own_pg.restart)
            return [first, await job.run_collection()]

    first, second = asyncio.run(two_runs())
    assert second["duplicates_skipped"] == first["posts_saved"] > 0
    eng = db.make_engine(own_pg.url())
    try:
        assert q(eng, "SELECT status FROM collection_runs ORDER BY id") == [
            ("succeeded",),
            ("succeeded",),
        ]
    finally:
        eng.dispose()


def test_a_crash_inside_the_write_rolls_back_in_full_and_the_next_run_writes_once(
    own_pg: EmbeddedPostgres, own_settings: Settings
) -> None:
    eng = db.make_engine(own_pg.url())
    blocker = eng.connect()
    outcome: list[BaseException | dict[str, Any]] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(collect_once(own_settings)))
        except BaseException as exc:
            outcome.append(exc)

    try:
        # The write waits on this lock; the lock is held until the crash takes both away.
        blocker.execute(sa.text("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"))
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 30
        waiting = (
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%UPDATE posts AS p%'"
        )
        while not q(eng, waiting):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        own_pg.restart(immediate=True)  # a crash: every open transaction is gone
        blocker.invalidate()
        worker.join(60)
        assert isinstance(outcome[0], CollectionError)
        eng.dispose()
        assert q(eng, "SELECT count(*) FROM posts") == [(0,)]
        assert q(eng, "SELECT count(*) FROM post_snapshots") == [(0,)]
        assert q(eng, "SELECT status FROM collection_runs") == [("failed",)]
        if own_settings.rocksdb.exists():
            with RocksDBStore(own_settings.rocksdb, mode="read_only") as store:
                assert store.get_stats()["total_keys"] == 0
        stats = asyncio.run(collect_once(own_settings))
        assert stats["posts_saved"] > 0 and stats["duplicates_skipped"] == 0
        agree(own_settings, eng)
    finally:
        blocker.close()
        eng.dispose()


def test_a_run_killed_while_fetching_is_closed_and_the_next_run_completes(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    sim.faults.latency_ms = 500
    settings = make_settings(hn_api_url=sim.base_url, concurrency=2, posts_limit=40)
    proc = hnlab_process(settings, "collect")
    deadline = time.monotonic() + 30
    while q(engine, "SELECT count(*) FROM collection_runs WHERE status = 'running'") != [(1,)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    sim.faults.latency_ms = 0
    later = settings.with_values(run_timeout=1)  # the killed run is older than the run timeout
    time.sleep(1.1)
    stats = asyncio.run(collect_once(later))
    assert stats["posts_saved"] > 0
    runs = q(
        engine,
        "SELECT status, coalesce(error LIKE '%closed as stale%', false) "
        "FROM collection_runs "
        "ORDER BY id",
    )
    assert runs == [("failed", True), ("succeeded", False)]
    agree(settings, engine)


def test_fires_that_cannot_reach_postgresql_are_recorded_once_it_is_back(
    own_pg: EmbeddedPostgres,
) -> None:
    eng = db.make_engine(own_pg.url())
    fired: list[datetime] = []
    first_fire = threading.Event()

    async_eng = None

    async def body(slot: datetime) -> None:  # what a scheduled run does first: claim its hour
        assert async_eng is not None
        fired.append(slot)
        first_fire.set()
        run_id = await records.open_run(
            async_eng, trigger="scheduled", started=datetime.now(UTC), slot=slot
        )
        assert run_id is not None
        await records.finish_run(async_eng, run_id, "succeeded", datetime.now(UTC))

    def rows() -> list[tuple[Any, ...]]:
        return q(eng, "SELECT slot, status, error FROM collection_runs ORDER BY slot")

    def wait_for_two_rows() -> None:
        deadline = time.monotonic() + 20
        while len(rows()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)

    async def go() -> None:
        nonlocal async_eng
        async_eng = db.make_async_engine(own_pg.url())
        scheduler = JobScheduler(engine=async_eng)
        scheduler.register_hourly_collector(None, body=body, trigger=IntervalTrigger(seconds=1.5))
        own_pg.pause()
        scheduler.start()
        assert await asyncio.to_thread(first_fire.wait, 10)
        await asyncio.sleep(0.5)  # the first fire failed, and so did recording it
        own_pg.resume()
        await asyncio.to_thread(wait_for_two_rows)  # the next fire succeeds, then the backlog
        await scheduler.stop_async()
        await async_eng.dispose()

    try:
        asyncio.run(go())
        recorded = rows()
    finally:
        eng.dispose()
    first, second = fired[:2]
    assert [(slot, status) for slot, status, _ in recorded[:2]] == [
        (first, "failed"),
        (second, "succeeded"),
    ]
    assert recorded[0][2].startswith(
        "job raised DatabaseUnavailableError: cannot reach PostgreSQL at "
    )


def test_two_hnlab_run_instances_collect_each_slot_once(
    sim: SimulatedHN, settings: Settings, engine: sa.Engine
) -> None:
    """Both runners fire every slot; the loser of each says it skipped, and the HN API
    sees one list request per collected slot (the unique slot row alone would hide a
    loser that fetched and wrote nothing)."""
    procs = [
        hnlab_process(settings, "-v", "run", "--direct", "--cron", "* * * * *") for _ in range(2)
    ]
    logs: list[list[str]] = [[], []]
    readers = [
        threading.Thread(target=lambda p=p, log=log: log.extend(p.stderr), daemon=True)
        for p, log in zip(procs, logs, strict=True)
    ]
    for reader in readers:
        reader.start()

    def skipped() -> list[str]:
        return [line for log in logs for line in list(log) if "already claimed" in line]

    eventually(lambda: bool(skipped()))
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)
        assert p.returncode == 0
    for reader in readers:
        reader.join(timeout=10)
    for p in procs:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        p.stderr.close()
    succeeded = q(engine, "SELECT slot FROM collection_runs WHERE status = 'succeeded'")
    claimed = {line.split("slot ")[1].split()[0] for line in skipped()}
    assert claimed <= {slot.isoformat() for (slot,) in succeeded}
    assert sim.requests_for("topstories.json") == len(succeeded)
    per_slot = q(engine, "SELECT slot, count(*) FROM collection_runs GROUP BY slot")
    assert per_slot and all(n == 1 for _, n in per_slot)
    assert q(engine, "SELECT count(DISTINCT run_id) FROM post_snapshots") == [(len(succeeded),)]
    agree(settings, engine)


def test_a_bad_cron_or_limit_stops_hnlab_run_before_any_work(
    settings: Settings, engine: sa.Engine
) -> None:
    for args, env, message in [
        (["run", "--cron", "0 0 31 2 *x"], {}, "Error: --cron must be a 5-field cron expression"),
        (
            ["run"],
            {"HNLAB_POSTS_LIMIT": "501"},
            "Error: HNLAB_POSTS_LIMIT must be a whole number from 1 to 500, got '501'",
        ),
        (
            ["run"],
            {"HNLAB_SCORE_THRESHOLD": "-1"},
            "Error: HNLAB_SCORE_THRESHOLD must be a whole number >= 0, got '-1'",
        ),
    ]:
        result = hnlab_cli(*args, env={**settings_env(settings), **env})
        assert result.returncode == 1 and result.stderr.startswith(message), result.stderr
    assert q(engine, "SELECT count(*) FROM collection_runs") == [(0,)]
    assert q(engine, "SELECT count(*) FROM runners") == [(0,)]


def test_stale_runs_use_the_run_timeout(engine: sa.Engine) -> None:
    async def scenario(eng: Any) -> tuple[int, dict[str, Any] | None]:
        old = await records.open_run(eng, trigger="scheduled", started=START)
        assert old is not None
        closed = await records.close_stale_runs(
            eng, START + timedelta(seconds=1), START + timedelta(hours=1)
        )
        return closed, await records.get_run(eng, old)

    closed, old = on_loop(engine, scenario)
    assert closed == 1
    assert old is not None and old["status"] == "failed"


FILL_WAL = """
import os, sys
from rocksdict import Options, Rdict, WriteBatch
options = Options(raw_mode=True)
options.create_if_missing(True)
options.set_write_buffer_size(1 << 30)
db = Rdict(sys.argv[1], options)
value = os.urandom(4096)
for b in range(60):
    batch = WriteBatch(raw_mode=True)
    for i in range(1000):
        batch.put(f"filler:{b}:{i}".encode(), value)
    db.write(batch)
os._exit(0)  # die like kill -9: 240 MB of write-ahead log left to replay
"""


def test_a_kill_between_the_commit_and_the_cache_write_is_repaired_by_the_next_run(
    sim: SimulatedHN, make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, posts_limit=60)
    # A cache whose next open replays a large log (~1 s): the window after the commit.
    subprocess.run([sys.executable, "-c", FILL_WAL, str(settings.rocksdb)], check=True)
    proc = hnlab_process(settings, "collect")
    deadline = time.monotonic() + 60
    while q(engine, "SELECT count(*) FROM posts") == [(0,)]:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    [(saved,)] = q(engine, "SELECT count(*) FROM posts")
    assert q(engine, "SELECT status, cache_pending FROM collection_runs") == [("running", True)]
    with RocksDBStore(settings.rocksdb, mode="read_only") as store:
        assert store.get_stats()["total_keys"] == 0  # killed before the cache write
    time.sleep(1.1)
    stats = asyncio.run(collect_once(settings.with_values(run_timeout=1)))
    assert stats["reconciled"] == saved and stats["posts_saved"] == 0
    assert q(engine, "SELECT status, cache_pending FROM collection_runs ORDER BY id") == [
        ("failed", False),
        ("succeeded", False),
    ]
    agree(settings, engine)
