import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hnlab import JobScheduler, SchedulerFactory
from hnlab.config import Settings
from hnlab.errors import ConfigError, JobNotFoundError
from hnlab.run.runner import HOURLY_JOB_ID
from hnlab.run.scheduler import latest_fire
from hnlab.store import db, records
from hnlab.store.db import make_async_engine
from tests.helpers import eventually, rows

from .conftest import START


def next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def test_the_hourly_job_is_configured_exactly(database_url: str, tmp_path: Any) -> None:
    async def go() -> tuple[Any, JobScheduler]:
        scheduler = SchedulerFactory.create_scheduler(
            db_session=database_url,
            rocksdb_path=str(tmp_path / "c.rocksdb"),
            score_threshold=60,
            posts_limit=30,
            hn_api_url="http://127.0.0.1:9/v0",
        )
        scheduler.start()
        try:
            return scheduler.get_jobs(), scheduler
        finally:
            scheduler.stop()

    jobs, scheduler = asyncio.run(go())
    assert [j.id for j in jobs] == [HOURLY_JOB_ID]
    job = jobs[0]
    assert job.name == "Hourly posts collection"
    assert str(job.trigger) == ("cron[month='*', day='*', day_of_week='*', hour='*', minute='0']")
    assert job.trigger.timezone == UTC
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 600)
    now = datetime.now(UTC)
    assert job.next_run_time in (next_hour(now), next_hour(now + timedelta(seconds=5)))
    collector = scheduler.hourly_collector
    assert collector is not None
    assert (collector.score_threshold, collector.limit) == (60, 30)


TZ_PROBE = textwrap.dedent("""
    import json
    from datetime import datetime, UTC
    from hnlab.run.scheduler import JobScheduler
    s = JobScheduler()
    nxt = s.trigger.get_next_fire_time(None, datetime(2026, 3, 8, 5, 10, tzinfo=UTC))
    print(json.dumps([nxt.astimezone(UTC).isoformat(), str(s.trigger.timezone)]))
""")


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "America/New_York"])
def test_the_trigger_fires_at_00_utc_whatever_the_local_zone(tz: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", TZ_PROBE],
        capture_output=True,
        text=True,
        env={"TZ": tz, "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert json.loads(out) == ["2026-03-08T06:00:00+00:00", "UTC"]


def test_hours_across_the_new_york_dst_change_are_distinct() -> None:
    s = JobScheduler()
    moment, fires = datetime(2026, 3, 8, 4, 30, tzinfo=UTC), []
    for _ in range(6):  # 02:00 local does not exist on 2026-03-08; UTC does not care
        moment = s.trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        fires.append(moment.astimezone(UTC).hour)
    assert fires == [5, 6, 7, 8, 9, 10]


def test_start_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match=r"needs a running asyncio event loop"):
        JobScheduler().start()


def test_a_bad_cron_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^HNLAB_CRON must be a 5-field cron expression"):
        JobScheduler(cron="0 25 * * *")


def test_pause_resume_and_missing_ids() -> None:
    async def go() -> list[Any]:
        s = JobScheduler()
        s.register_hourly_collector(None, body=lambda slot: None)
        s.start()
        try:
            seen = [s.get_job(HOURLY_JOB_ID).next_run_time]
            s.pause_job(HOURLY_JOB_ID)
            seen.append(s.get_job(HOURLY_JOB_ID).next_run_time)
            s.resume_job(HOURLY_JOB_ID)
            seen.append(s.get_job(HOURLY_JOB_ID).next_run_time)
            for bad in ("nope", "", None):
                for call in (s.pause_job, s.resume_job, s.remove_job):
                    with pytest.raises(JobNotFoundError, match="no scheduled job has id"):
                        call(bad)  # type: ignore[arg-type]
            s.remove_job(HOURLY_JOB_ID)
            seen.append(s.get_jobs())
            assert s.is_running()
            return seen
        finally:
            s.stop()

    before, paused, resumed, remaining = asyncio.run(go())
    assert paused is None and resumed == before and remaining == []
    assert isinstance(JobNotFoundError("x"), LookupError)


def statuses(engine: sa.Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(  # type: ignore[misc]
                    "SELECT status, error FROM collection_runs ORDER BY id"
                )
            )
        ]


def test_an_overlapping_fire_is_recorded_as_skipped(engine: sa.Engine) -> None:
    started: list[datetime] = []
    release = threading.Event()

    def slow(slot: datetime) -> None:
        started.append(slot)
        release.wait(60)  # runs until the overlapping fire has been recorded

    def overlap_recorded() -> bool:
        return any(status == "skipped" for status, _ in statuses(engine))

    async def go() -> None:
        s = JobScheduler(engine=db.make_async_engine(db.engine_url(engine)))
        s.register_hourly_collector(None, body=slow, trigger=IntervalTrigger(seconds=0.5))
        s.start()
        await asyncio.to_thread(eventually, overlap_recorded)
        release.set()
        await s.stop_async()
        assert s.engine is not None
        await s.engine.dispose()

    asyncio.run(go())
    skipped = [r for r in statuses(engine) if r[0] == "skipped"]
    assert len(started) == 1
    assert skipped and all(r[1] == "overlap: the previous run was still running" for r in skipped)


def test_a_missed_fire_is_recorded_as_skipped(engine: sa.Engine) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)

    async def go() -> None:
        s = JobScheduler(
            engine=db.make_async_engine(db.engine_url(engine)), misfire_grace_minutes=1
        )
        s.register_hourly_collector(
            None, body=lambda slot: None, trigger=DateTrigger(run_date=past)
        )
        s.start()
        await asyncio.to_thread(eventually, lambda: bool(statuses(engine)))
        await s.stop_async()
        assert s.engine is not None
        await s.engine.dispose()

    asyncio.run(go())
    [(status, error)] = statuses(engine)
    assert status == "skipped"
    assert error is not None and error.startswith("missed: the fire for ")
    assert "1-minute misfire grace" in error


def test_a_job_that_raises_is_recorded_as_failed(engine: sa.Engine) -> None:
    def boom(slot: datetime) -> None:
        raise RuntimeError("disk on fire")

    async def go() -> None:
        s = JobScheduler(engine=db.make_async_engine(db.engine_url(engine)))
        s.register_hourly_collector(
            None, body=boom, trigger=DateTrigger(run_date=datetime.now(UTC))
        )
        s.start()
        await asyncio.to_thread(eventually, lambda: bool(statuses(engine)))
        await s.stop_async()
        assert s.engine is not None
        await s.engine.dispose()

    asyncio.run(go())
    assert statuses(engine) == [("failed", "job raised RuntimeError: disk on fire")]


def test_stop_drains_a_running_job() -> None:
    entered, done = threading.Event(), threading.Event()

    def body(slot: datetime) -> None:
        entered.set()
        time.sleep(1.0)  # the job's work, which stop must wait for
        done.set()

    async def go() -> float:
        s = JobScheduler()
        s.register_hourly_collector(
            None, body=body, trigger=DateTrigger(run_date=datetime.now(UTC))
        )
        s.start()
        assert await asyncio.to_thread(entered.wait, 30)
        t0 = time.monotonic()
        await s.stop_async()
        return time.monotonic() - t0

    waited = asyncio.run(go())
    assert done.is_set() and waited >= 0.5


def test_latest_fire_and_catch_up_claim_once(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    s = JobScheduler()
    assert latest_fire(s.trigger, START + timedelta(minutes=7), timedelta(minutes=10)) == START
    assert latest_fire(s.trigger, START + timedelta(minutes=11), timedelta(minutes=10)) is None
    assert s.current_slot(START + timedelta(minutes=59)) is None
    claims: list[int | None] = []

    async def go() -> None:
        eng = db.make_async_engine(db.engine_url(engine))

        async def body(slot: datetime) -> None:
            claims.append(await records.open_run(eng, trigger="scheduled", slot=slot, started=slot))

        sched = JobScheduler(clock=lambda: START + timedelta(minutes=3))
        sched.register_hourly_collector(None, body=body)
        await sched.catch_up()
        await sched.catch_up()
        await eng.dispose()

    asyncio.run(go())
    assert claims[0] is not None and claims[1] is None


def test_the_factory_accepts_a_sessionmaker_an_engine_or_a_url(
    database_url: str, tmp_path: Any
) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from hnlab.store.db import make_async_engine

    async def go() -> list[Any]:
        engine = make_async_engine(database_url)
        made = [
            SchedulerFactory.create_scheduler(
                db_session=async_sessionmaker(engine), rocksdb_path=str(tmp_path / "a")
            ),
            SchedulerFactory.create_scheduler(db_session=engine, rocksdb_path=str(tmp_path / "b")),
            SchedulerFactory.create_scheduler(
                db_session=database_url, rocksdb_path=str(tmp_path / "c"), mode="direct"
            ),
        ]
        await engine.dispose()
        return made

    for scheduler in asyncio.run(go()):
        collector = scheduler.hourly_collector
        assert collector is not None
        assert (collector.score_threshold, collector.limit) == (50, 100)
        assert collector.post_repository.engine.url.database == sa.make_url(database_url).database


def test_the_factory_hands_every_request_setting_to_the_client(
    database_url: str, engine: sa.Engine, tmp_path: Any, sim: Any
) -> None:
    settings = Settings.from_env(
        environ={},
        overrides={
            "hn_api_url": sim.base_url,
            "read_timeout": 7,
            "connect_timeout": 3,
            "retry_attempts": 2,
            "run_deadline": 42,
            "concurrency": 17,
            "story_list": "best",
        },
    )
    sim.script("beststories.json", 503, 503, 503)

    async def go() -> tuple[Any, Any]:
        scheduler = SchedulerFactory.create_scheduler(
            db_session=database_url,
            rocksdb_path=str(tmp_path / "c.rocksdb"),
            score_threshold=60,
            posts_limit=30,
            settings=settings,
        )
        collector = scheduler.hourly_collector
        assert collector is not None
        outcome = await scheduler.catch_up(START)
        await collector.post_repository.engine.dispose()
        return collector, outcome

    collector, outcome = asyncio.run(go())
    client = collector.hn_client
    assert (client.timeout.read, client.timeout.connect) == (7.0, 3.0)
    assert (client.retry_attempts, client.deadline, client.concurrency) == (2, 42.0, 17)
    assert (collector.score_threshold, collector.limit, collector.story_list) == (60, 30, "best")
    # retry_attempts=2 reached the requests: two tries of the list, not the default four
    assert sim.requests_for("beststories.json") == 2
    assert outcome.status == "failed" and "beststories.json: HTTP 503" in outcome.error


def test_stop_leaves_is_running_false_in_async_code_and_start_works_again() -> None:
    async def go() -> list[bool]:
        s = JobScheduler()
        s.register_hourly_collector(None, body=lambda slot: None)
        seen = [s.is_running()]
        s.start()
        seen.append(s.is_running())
        s.stop()  # the seed's call, on the loop
        seen.append(s.is_running())
        s.start()
        seen.append(s.is_running())
        assert [j.id for j in s.get_jobs()] == [HOURLY_JOB_ID]
        await s.stop_async()
        seen.append(s.is_running())
        s.stop()  # stopping twice is harmless
        seen.append(s.is_running())
        return seen

    assert asyncio.run(go()) == [False, True, False, True, False, False]


def test_stop_from_another_thread_drains_and_leaves_is_running_false() -> None:
    entered, finished = asyncio.Event(), threading.Event()

    async def body(slot: datetime) -> None:
        entered.set()
        await asyncio.sleep(0.5)  # the job's work, which stop must wait for
        finished.set()

    async def go() -> list[bool]:
        s = JobScheduler()
        s.register_hourly_collector(None, body=body)
        s.start()
        running = asyncio.ensure_future(s.catch_up(START))
        await entered.wait()
        stopped = await asyncio.to_thread(s.stop)  # a sync caller outside the loop
        seen = [stopped is None, finished.is_set(), s.is_running()]
        await running
        return seen

    assert asyncio.run(go()) == [True, True, False]


def test_stop_on_the_loop_never_cancels_a_running_collection() -> None:
    entered, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def body(slot: datetime) -> str:
        entered.set()
        await release.wait()
        finished.set()
        return "done"

    async def go() -> tuple[bool, bool, str]:
        s = JobScheduler()
        s.register_hourly_collector(
            None, body=body, trigger=DateTrigger(run_date=datetime.now(UTC))
        )
        s.start()
        await entered.wait()
        s.stop()  # cannot wait on the loop's own thread: stops fires, the run goes on
        running_after_stop = s.is_running()
        release.set()
        await asyncio.wait_for(finished.wait(), 30)  # not cancelled by the stop
        return running_after_stop, finished.is_set(), "ok"

    assert asyncio.run(go()) == (False, True, "ok")


def test_the_engine_made_from_a_url_is_disposed_on_stop(
    database_url: str, engine: sa.Engine, tmp_path: Any, sim: Any
) -> None:
    """The scheduler owns the engine SchedulerFactory made from a URL: after stop, no
    connection of its pool is left on the server; an engine handed in stays open."""
    settings = Settings.from_env(environ={}, overrides={"hn_api_url": sim.base_url})
    name = sa.make_url(database_url).database
    others = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )

    async def go(db_session: Any, slot: datetime) -> int:
        scheduler = SchedulerFactory.create_scheduler(
            db_session=db_session, rocksdb_path=str(tmp_path / "c.rocksdb"), settings=settings
        )
        scheduler.start()
        outcome = await scheduler.catch_up(slot)  # connects through the engine's pool
        assert outcome.status == "succeeded"
        await scheduler.stop_async()
        return int(rows(engine, others)[0][0])

    engine.dispose()
    assert asyncio.run(go(database_url, START)) == 0

    async def handed_in() -> int:
        own = make_async_engine(database_url)
        try:
            return await go(own, START + timedelta(hours=1))
        finally:
            await own.dispose()

    assert asyncio.run(handed_in()) >= 1
