"""The minute tracker: exactly one tick per minute, failures recorded, all-or-nothing writes,
and the loaders that hand the minutes to pandas."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from hnlab import analysis
from hnlab.collect.tracker import TRACK_JOB_ID, TickResult
from hnlab.config import Settings
from hnlab.run.factory import open_parts
from hnlab.run.service import RunnerService
from hnlab.sim.server import Scripted, SimulatedHN
from hnlab.store import db, records
from hnlab.store.embedded import EmbeddedPostgres
from hnlab.store.minutes import MinuteRepository, Ranked
from tests.helpers import eventually
from tests.helpers import rows as q

from .conftest import START
from .helpers import hnlab_process, on_loop, settings_env

T = START


TICKED = "SELECT slot FROM track_ticks WHERE status <> 'running'"


def tick(settings: Settings, at: datetime | None = None, **values: Any) -> TickResult:
    async def go() -> TickResult:
        async with open_parts(settings.with_values(**values) if values else settings) as parts:
            return await parts.tracker(clock=lambda: at or T).tick(at)

    return asyncio.run(go())


@pytest.fixture
def tracked(make_settings: Callable[..., Settings], sim: SimulatedHN) -> Settings:
    return make_settings(
        hn_api_url=sim.base_url, track_every=1, track_depth="top=20,new=10,best=10,ask=5,show=5"
    )


def test_a_tick_records_every_list_at_its_depth_and_each_story_once(
    tracked: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    result = tick(tracked, T)
    assert (result.status, result.lists, result.observations, result.errors) == (
        "succeeded",
        5,
        50,
        0,
    )
    on_lists = {i for name in ("top", "new", "best", "ask", "show") for i in sim.story_ids(name)[:]}
    assert result.requests <= 5 + 50  # a story on two lists is fetched once
    [(lists, lens, n)] = q(engine, "SELECT lists, lens, cardinality(hn_ids) FROM rank_minutes")
    assert (lists, lens, n) == ([0, 1, 2, 3, 4], [20, 10, 10, 5, 5], 50)
    ranks = analysis.load_ranks(T, T + timedelta(minutes=1), engine)
    assert list(ranks.columns) == ["sampled_at", "list", "rank", "hn_id", "score", "comment_count"]
    top = ranks[ranks["list"] == "top"]
    assert top["hn_id"].tolist() == sim.story_ids("top")[:20]
    assert top["rank"].tolist() == list(range(1, 21))
    first = sim.item(sim.story_ids("top")[0]) or {}
    assert (top["score"].iloc[0], top["comment_count"].iloc[0]) == (
        first["score"],
        first.get("descendants", 0),
    )
    stories = analysis.load_stories(engine=engine)
    assert set(stories["hn_id"]) <= on_lists
    assert stories["hn_id"].is_unique
    assert (stories["first_seen"] == pd.Timestamp(T)).all()


def test_the_same_minute_twice_is_recorded_once_and_says_so(
    tracked: Settings, engine: sa.Engine
) -> None:
    from .helpers import hnlab_cli

    env = settings_env(tracked)
    first = hnlab_cli("track", "--once", "--at", "2026-03-01T12:00", "--json", env=env)
    second = hnlab_cli("track", "--once", "--at", "2026-03-01T12:00", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "succeeded"
    assert second.returncode == 0, second.stderr
    assert second.stdout == "tick 2026-03-01 12:00Z is recorded already; nothing to do\n"
    assert q(engine, "SELECT count(*) FROM rank_minutes") == [(1,)]
    assert q(engine, "SELECT status FROM track_ticks") == [("succeeded",)]


def test_two_trackers_record_each_minute_once(tracked: Settings, engine: sa.Engine) -> None:
    procs = [
        hnlab_process(tracked, "track", "--once", "--at", f"2026-03-01T12:0{m}", "--json")
        for m in (0, 0, 1, 1)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    statuses = sorted(json.loads(out)["status"] for out, _ in outs)
    assert statuses == ["skipped", "skipped", "succeeded", "succeeded"]
    assert q(engine, "SELECT count(*), count(DISTINCT sampled_at) FROM rank_minutes") == [(2, 2)]


def test_a_failing_list_is_named_and_the_next_tick_is_whole(
    tracked: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    sim.script("newstories.json", *[Scripted(status=503)] * 3)
    partial = tick(tracked, T)
    assert (partial.status, partial.lists, partial.errors) == ("succeeded", 4, 1)
    assert partial.error is not None and partial.error.startswith("new: newstories.json: HTTP 503")
    row = q(engine, "SELECT status, lists, errors, error FROM track_ticks")
    assert row == [("succeeded", 4, 1, partial.error)]
    whole = tick(tracked, T + timedelta(minutes=1))
    assert (whole.status, whole.lists, whole.errors, whole.error) == ("succeeded", 5, 0, None)
    for name in ("top", "new", "best", "ask", "show"):
        sim.script(f"{name}stories.json", *[Scripted(status=503)] * 3)
    failed = tick(tracked, T + timedelta(minutes=2))
    assert failed.status == "failed" and failed.lists == 0
    assert q(engine, "SELECT status FROM track_ticks ORDER BY slot") == [
        ("succeeded",),
        ("succeeded",),
        ("failed",),
    ]
    assert q(engine, "SELECT count(*) FROM rank_minutes") == [(2,)]


def test_a_late_scheduled_tick_is_recorded_as_missed(tracked: Settings, engine: sa.Engine) -> None:
    async def go() -> TickResult:
        async with open_parts(tracked) as parts:
            late = parts.tracker(clock=lambda: T + timedelta(seconds=40))
            return await late.tick(scheduled=True)

    result = asyncio.run(go())
    assert result.status == "missed"
    assert q(engine, "SELECT slot, status, error FROM track_ticks") == [
        (T, "missed", "started 40 s late, more than half of its 1-minute interval")
    ]
    assert q(engine, "SELECT count(*) FROM rank_minutes") == [(0,)]


@pytest.mark.slow
def test_a_tick_that_loses_postgresql_leaves_no_half_written_minute(
    own_pg: EmbeddedPostgres, sim: SimulatedHN, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "database_url": own_pg.url(),
            "hn_api_url": sim.base_url,
            "concurrency": 2,
            "track_depth": "top=10,new=5,best=5,ask=5,show=5",
        },
    )
    sim.faults.latency_ms = 300  # the fetch takes ~3 s: PostgreSQL goes in the middle
    eng = db.make_engine(own_pg.url())
    outcome: list[TickResult] = []
    worker = threading.Thread(target=lambda: outcome.append(tick(settings, T)))
    worker.start()
    deadline = time.monotonic() + 20
    while q(eng, "SELECT count(*) FROM track_ticks") != [(1,)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    eng.dispose()
    own_pg.pause()
    worker.join(timeout=60)
    own_pg.resume()
    [lost] = outcome
    assert lost.status == "failed" and "cannot reach PostgreSQL" in (lost.error or "")
    eng = db.make_engine(own_pg.url())
    try:
        for table in ("rank_minutes", "stories", "rank_spans"):
            assert q(eng, f"SELECT count(*) FROM {table}") == [(0,)], table
        assert q(eng, "SELECT status FROM track_ticks") == [("running",)]
        sim.faults.latency_ms = 0
        later = tick(settings, T + timedelta(minutes=15))  # the next tick closes the stale one
        assert later.status == "succeeded"
        assert q(eng, "SELECT status, error FROM track_ticks ORDER BY slot") == [
            ("failed", records.TICK_STALE_ERROR),
            ("succeeded", None),
        ]
    finally:
        eng.dispose()


def test_loaders_return_hand_made_ticks_with_documented_types(engine: sa.Engine) -> None:
    from hnlab.hn.items import Post

    def post(hn_id: int, title: str) -> Post:
        return Post(
            hn_id=hn_id,
            title=title,
            author="pg",
            url=f"https://x.org/{hn_id}",
            domain="x.org",
            score=1,
            comment_count=0,
            created_at=T - timedelta(hours=1),
            collected_at=T,
            type="story",
            is_dead=False,
        )

    minutes = [
        (T, [Ranked(0, [11, 12], [50, 40], [5, None]), Ranked(1, [13], [1], [0])]),
        (T + timedelta(minutes=1), [Ranked(0, [12, 11], [60, 52], [6, 5])]),
    ]

    async def write(eng: Any) -> None:
        repo = MinuteRepository(eng)
        for at, ranked in minutes:
            assert await records.claim_tick(eng, at, at)
            finish = records.finish_tick_statement(at, "succeeded", at, {}, None)
            await repo.record_minute(at, ranked, [post(11, "a"), post(12, "b")], finish)

    on_loop(engine, write)
    ranks = analysis.load_ranks(T, T + timedelta(minutes=2), engine)
    assert ranks.dtypes.astype(str).to_dict() == {
        "sampled_at": "datetime64[us, UTC]",
        "list": "category",
        "rank": "int16",
        "hn_id": "int64",
        "score": "Int64",
        "comment_count": "Int64",
    }
    got = [
        (r.sampled_at, r.list, r.rank, r.hn_id, r.score, r.comment_count)
        for r in ranks.astype(object).where(ranks.notna(), None).itertuples()
    ]
    t1 = T + timedelta(minutes=1)
    assert got == [
        (T, "top", 1, 11, 50, 5),
        (T, "top", 2, 12, 40, None),
        (T, "new", 1, 13, 1, 0),
        (t1, "top", 1, 12, 60, 6),
        (t1, "top", 2, 11, 52, 5),
    ]
    only_new = analysis.load_ranks(None, None, engine, lists=["new"])
    assert only_new["hn_id"].tolist() == [13]
    top1 = analysis.load_ranks(None, None, engine, max_rank=1)
    assert top1["hn_id"].tolist() == [11, 13, 12]
    path = analysis.load_ranks(None, None, engine, hn_ids=[11])
    assert path["rank"].tolist() == [1, 2] and path["score"].tolist() == [50, 52]
    stories = analysis.load_stories(engine=engine)
    assert stories[["hn_id", "title", "by", "first_seen", "last_seen"]].values.tolist() == [
        [11, "a", "pg", pd.Timestamp(T), pd.Timestamp(t1)],
        [12, "b", "pg", pd.Timestamp(T), pd.Timestamp(t1)],
    ]
    assert list(stories.columns) == [
        "hn_id",
        "title",
        "by",
        "type",
        "url",
        "domain",
        "submitted_at",
        "first_seen",
        "last_seen",
    ]
    with pytest.raises(ValueError, match="lists must be some of"):
        analysis.load_ranks(None, None, engine, lists=["hot"])


@pytest.mark.slow
def test_hnlab_run_ticks_every_minute_beside_the_hourly_collection(
    tracked: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    class Clock:
        now = T + timedelta(seconds=10)

    clock = Clock()
    service = RunnerService(tracked, mode="direct", clock=lambda: clock.now)
    said: list[str] = []

    async def go() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, say=said.append))
        await asyncio.to_thread(eventually, lambda: any(s.startswith("catch-up") for s in said))
        scheduler = service.scheduler
        assert scheduler is not None
        for minute in range(3):
            clock.now = T + timedelta(minutes=minute, seconds=10)
            count = len(q(engine, "SELECT slot FROM track_ticks"))
            scheduler.get_job(TRACK_JOB_ID).modify(next_run_time=datetime.now(UTC))
            await asyncio.to_thread(eventually, lambda n=count: len(q(engine, TICKED)) > n)
        finished = "SELECT count(*) FROM collection_runs WHERE status <> 'running'"
        await asyncio.to_thread(eventually, lambda: q(engine, finished) == [(1,)])
        stop.set()
        await serving

    asyncio.run(go())
    assert (
        "tracking every 1 min (HNLAB_TRACK_EVERY): top 20, new 10, best 10, ask 5, show 5" in said
    )
    assert q(engine, "SELECT slot, status FROM track_ticks ORDER BY slot") == [
        (T + timedelta(minutes=m), "succeeded") for m in range(3)
    ]
    assert q(engine, "SELECT slot, status FROM collection_runs") == [(T, "succeeded")]
    metrics = service.metrics.exposition().decode()
    assert 'hnlab_tracker_ticks_total{outcome="succeeded"} 3.0' in metrics


@pytest.mark.slow
def test_hnlab_track_runs_in_the_foreground_until_sigterm(tracked: Settings) -> None:
    import signal

    proc = hnlab_process(tracked, "track")
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(2)]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert lines[0].startswith("hnlab tracker: database: ")
    assert lines[1] == (
        "tracking every 1 min (HNLAB_TRACK_EVERY): top 20, new 10, best 10, ask 5, show 5\n"
    )
    assert out.rstrip().endswith("hnlab tracker stopped")


def hand_made_minutes(engine: sa.Engine, minutes: list[datetime]) -> None:
    """One top list of three stories at each of ``minutes``, scores rising with time."""

    async def write(eng: Any) -> None:
        repo = MinuteRepository(eng)
        for n, at in enumerate(minutes):
            assert await records.claim_tick(eng, at, at)
            finish = records.finish_tick_statement(at, "succeeded", at, {}, None)
            ranked = [Ranked(0, [7, 8, 9], [10 + n, 5 + n, 1], [n, None, 0])]
            await repo.record_minute(at, ranked, [], finish)

    on_loop(engine, write)


@pytest.mark.slow
def test_export_ranks_writes_parquet_by_month_that_reads_back_equal(
    tracked: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    from .helpers import hnlab_cli

    march_end = datetime(2026, 3, 31, 23, 58, tzinfo=UTC)
    minutes = [march_end + timedelta(minutes=m) for m in range(4)]  # two in March, two in April
    hand_made_minutes(engine, minutes)
    out = tmp_path / "parquet"
    env = settings_env(tracked)
    result = hnlab_cli(
        "export",
        "ranks",
        "--since",
        "2026-03-01",
        "--until",
        "2026-05-01",
        "--out",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 12 observations in 2 file(s) under {out}\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        "month=2026-03/ranks.parquet",
        "month=2026-04/ranks.parquet",
    ]
    back = pd.read_parquet(out)
    assert back["month"].astype(str).tolist() == ["2026-03"] * 6 + ["2026-04"] * 6
    expected = analysis.load_ranks(minutes[0], minutes[-1] + timedelta(minutes=1), engine)
    pd.testing.assert_frame_equal(back.drop(columns="month"), expected)
    backwards = hnlab_cli(
        "export",
        "ranks",
        "--since",
        "2026-05-01",
        "--until",
        "2026-03-01",
        "--out",
        str(out),
        env=env,
    )
    assert backwards.returncode == 1
    assert backwards.stderr == (
        "Error: --since 2026-05-01 00:00 must be before --until 2026-03-01 00:00\n"
    )


def test_prune_downsamples_old_minutes_to_hourly_and_keeps_recent_ones(
    tracked: Settings, engine: sa.Engine
) -> None:
    minutes = [T + timedelta(minutes=m) for m in range(0, 150, 15)]  # 12:00 .. 14:15
    hand_made_minutes(engine, minutes)

    async def prune() -> int:
        async with open_parts(tracked) as parts:
            # "now" is 14:15 plus two days: keep 2 days of full resolution, so 14:15 stays
            tracker = parts.tracker(clock=lambda: T + timedelta(days=2, hours=2, minutes=15))
            return await tracker.prune(keep_days=2)

    assert asyncio.run(prune()) == 6  # 12:15, 12:30, 12:45, 13:15, 13:30, 13:45
    kept = analysis.load_ranks(None, None, engine)["sampled_at"].drop_duplicates().tolist()
    hourly = (T, T + timedelta(hours=1), T + timedelta(hours=2))
    assert kept == [pd.Timestamp(t) for t in (*hourly, T + timedelta(hours=2, minutes=15))]
    assert asyncio.run(prune()) == 0  # again: nothing left to do


def test_minutes_a_running_tracker_skipped_are_recorded_as_missed(
    tracked: Settings, engine: sa.Engine
) -> None:
    class Clock:
        now = T + timedelta(seconds=5)

    clock = Clock()

    async def go() -> list[str]:
        async with open_parts(tracked) as parts:
            tracker = parts.tracker(clock=lambda: clock.now)
            first = await tracker.tick(scheduled=True)
            clock.now = T + timedelta(minutes=3, seconds=5)  # the process was stuck 3 minutes
            later = await tracker.tick(scheduled=True)
            return [first.status, later.status]

    assert asyncio.run(go()) == ["succeeded", "succeeded"]
    rows = q(engine, "SELECT slot, status, error FROM track_ticks ORDER BY slot")
    assert [(slot, status) for slot, status, _ in rows] == [
        (T, "succeeded"),
        (T + timedelta(minutes=1), "missed"),
        (T + timedelta(minutes=2), "missed"),
        (T + timedelta(minutes=3), "succeeded"),
    ]
    assert rows[1][2] == "no tick ran for this minute; the next one ran at 12:03:05Z"
