"""The job registry: every job declared beside its code, and the service that runs them.

The service names no job, says one line when a job starts failing and one when it
recovers, and records each job's last outcome for ``hnlab status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from hnlab import jobs
from hnlab.cli import cli
from hnlab.collect.tracker import TRACK_JOB_ID
from hnlab.config import Settings
from hnlab.run.service import RunnerService
from hnlab.sim.server import SimulatedHN
from tests.conftest import START
from tests.helpers import eventually, rows, settings_env

T = START
EXPECTED = {
    "hourly_posts_collection",
    "minute_tracker",
    "tracker_retention",
    "item_stream",
    "content_fetch",
    "report_generation",
    "daily_digest",
    "runner_heartbeat",
}


def test_every_job_is_declared_in_the_registry_and_the_service_names_none() -> None:
    registered = {job.id: job for job in jobs.registered()}
    assert set(registered) == EXPECTED
    service = Path(jobs.__file__).parent / "run" / "service.py"
    source = service.read_text()
    assert [job_id for job_id in EXPECTED if job_id in source] == []
    settings = Settings.from_env(environ={}, overrides={"track_every": 0})
    assert registered[TRACK_JOB_ID].trigger(settings) is None  # 0 turns it off
    assert registered[TRACK_JOB_ID].trigger(settings.with_values(track_every=5)) == "*/5 * * * *"
    assert registered["hourly_posts_collection"].slots


def test_a_new_job_is_one_registration_and_the_service_runs_it(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    ran = asyncio.Event()

    def build(runtime: jobs.Runtime) -> jobs.Body:
        async def body() -> None:
            ran.set()

        return body

    job = jobs.register(
        jobs.Job("test_probe", "Probe", None, trigger=lambda s: "0 0 1 1 *", build=build)
    )
    settings = make_settings(hn_api_url="http://127.0.0.1:9/v0")
    service = RunnerService(settings, mode="direct", collect=False)

    async def go() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop))
        await asyncio.to_thread(
            eventually, lambda: service.scheduler is not None and service.scheduler.is_running()
        )
        assert service.scheduler is not None
        service.scheduler.get_job("test_probe").modify(next_run_time=datetime.now(UTC))
        await asyncio.wait_for(ran.wait(), 30)
        stop.set()
        await serving

    try:
        asyncio.run(go())
    finally:
        jobs.REGISTRY.pop(job.id)
    assert rows(engine, "SELECT job_id, outcome, error FROM job_outcomes") == [
        ("test_probe", "succeeded", None)
    ]


def test_a_failing_job_says_so_once_recovers_once_and_status_shows_it(
    make_settings: Callable[..., Settings], engine: sa.Engine, sim: SimulatedHN
) -> None:
    settings = make_settings(
        hn_api_url=sim.base_url, track_every=1, track_depth="top=5", retry_attempts=1
    )

    class Clock:
        now = T + timedelta(seconds=10)

    clock = Clock()
    service = RunnerService(settings, mode="direct", clock=lambda: clock.now, collect=False)
    said: list[str] = []
    statuses: list[str] = []
    done = "SELECT count(*) FROM track_ticks WHERE status <> 'running'"

    def status() -> str:
        result = CliRunner().invoke(cli, ["status"], env=settings_env(settings))
        assert result.exit_code == 0, result.output
        return next(line for line in result.output.splitlines() if TRACK_JOB_ID in line)

    async def go() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, say=said.append))
        await asyncio.to_thread(eventually, lambda: any("tracking every" in s for s in said))
        assert service.scheduler is not None
        sim.faults.error_rate = 1.0  # the API is down for two minutes, then back
        for minute in range(3):
            if minute == 2:
                sim.faults.error_rate = 0.0
            clock.now = T + timedelta(minutes=minute, seconds=10)
            service.scheduler.get_job(TRACK_JOB_ID).modify(next_run_time=datetime.now(UTC))
            await asyncio.to_thread(eventually, lambda n=minute: rows(engine, done) == [(n + 1,)])
            await asyncio.to_thread(
                eventually,
                lambda n=minute: (
                    rows(engine, f"SELECT at FROM job_outcomes WHERE job_id = '{TRACK_JOB_ID}'")
                    == [(T + timedelta(minutes=n, seconds=10),)]
                ),
            )
            statuses.append(await asyncio.to_thread(status))
        stop.set()
        await serving

    asyncio.run(go())
    lines = [s for s in said if TRACK_JOB_ID in s]
    assert len(lines) == 2, said
    assert lines[0].startswith("Minute tracker (minute_tracker) is failing: ")
    assert "HTTP 503" in lines[0]
    assert lines[1] == "Minute tracker (minute_tracker) recovered after 2 failed run(s)"
    assert statuses[0].startswith(
        "job minute_tracker: failed at 2026-03-01 12:00:10Z (1 in a row since 2026-03-01 12:00:10Z)"
    )
    assert statuses[1].startswith(
        "job minute_tracker: failed at 2026-03-01 12:01:10Z (2 in a row since 2026-03-01 12:00:10Z)"
    )
    assert statuses[2] == "job minute_tracker: succeeded at 2026-03-01 12:02:10Z"
