"""JobScheduler and SchedulerFactory: the seed's names on APScheduler 3.11.

The only module that imports apscheduler. Settings the defaults get wrong are
explicit: the cron trigger's zone is UTC (a zone-less trigger follows the
machine's local zone), ``max_instances=1``, ``coalesce=True`` and a misfire
grace of minutes, not one second. APScheduler only logs missed, overlapping and
failed fires; here each becomes a ``collection_runs`` row. Its ``shutdown``
does not wait for running jobs, so ``stop()`` drains them first.

Job bodies run in worker threads (``asyncio.to_thread``), each collection in
its own event loop there, so the scheduler's loop never stalls.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hnlab import records
from hnlab.cache import RocksDBStore
from hnlab.client import HNClient
from hnlab.collector import HourlyPostsCollectorJob
from hnlab.config import DEFAULT_HN_API_URL, Settings
from hnlab.db import PostRepository, make_async_engine, make_engine
from hnlab.errors import ConfigError, HnlabError, JobNotFoundError

log = logging.getLogger(__name__)

HOURLY_JOB_ID = "hourly_posts_collection"
DEFAULT_CRON = "0 * * * *"
SlotBody = Callable[[datetime], Any]  # runs one slot in a worker thread


def cron_trigger(expression: str = DEFAULT_CRON, label: str = "HNLAB_CRON") -> CronTrigger:
    """A 5-field cron trigger in UTC, or a ConfigError naming ``label``."""
    try:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{label} must be a 5-field cron expression such as '0 * * * *', "
            f"got {expression!r} ({exc})"
        ) from None


def latest_fire(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The trigger's last scheduled time at or before ``now``, looking back ``lookback``."""
    moment: datetime | None = trigger.get_next_fire_time(None, now - lookback)
    last = None
    while moment is not None and moment <= now:
        last = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return last.astimezone(UTC) if last else None


_UNRECORDED_MAX = 1000


@dataclass(frozen=True)
class _Event:
    """A skipped or failed fire, as ``records.record_event`` writes it."""

    slot: datetime | None
    status: str
    error: str
    at: datetime


class JobScheduler:
    """The hourly collection on an ``AsyncIOScheduler``, with the seed's methods."""

    def __init__(
        self,
        *,
        engine: sa.Engine | None = None,
        cron: str = DEFAULT_CRON,
        misfire_grace_minutes: int = 10,
        drain_timeout: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.trigger = cron_trigger(cron)
        self.misfire_grace = timedelta(minutes=misfire_grace_minutes)
        self.drain_timeout = drain_timeout
        self.clock = clock or (lambda: datetime.now(UTC))
        self.hourly_collector: HourlyPostsCollectorJob | None = None
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_event,
            EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED,
        )
        # Fires that could not be recorded (PostgreSQL unreachable), oldest first; written
        # as soon as PostgreSQL answers again, so every hour leaves a row.
        self._unrecorded: collections.deque[_Event] = collections.deque(maxlen=_UNRECORDED_MAX)
        self._active = 0
        self._idle = threading.Condition()
        self._stopping = False

    # -- the seed's methods ---------------------------------------------------------------
    def register_hourly_collector(
        self,
        hourly_collector: HourlyPostsCollectorJob | None,
        *,
        body: SlotBody | None = None,
        trigger: BaseTrigger | None = None,
    ) -> Job:
        """Schedule the hourly collection (job id ``hourly_posts_collection``).

        ``body`` overrides what one slot does (the notebook runner uses this);
        by default the collector runs in its own event loop in a worker thread.
        """
        self.hourly_collector = hourly_collector
        if body is None:
            if hourly_collector is None:
                raise HnlabError("register_hourly_collector needs a collector or a body")
            body = self._direct_body(hourly_collector)
        self._body = body
        return self._scheduler.add_job(
            self._run_slot,
            trigger=trigger or self.trigger,
            id=HOURLY_JOB_ID,
            name="Hourly posts collection",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(self.misfire_grace.total_seconds()),
            replace_existing=True,
        )

    def start(self) -> None:
        """Start scheduling; needs a running asyncio event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise HnlabError(
                "JobScheduler.start() needs a running asyncio event loop; "
                "call it from async code, e.g. inside asyncio.run()"
            ) from None
        if not self._scheduler.running:
            self._stopping = False
            self._scheduler.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop new fires, wait up to ``timeout`` s for running jobs, then shut down."""
        if not self._scheduler.running:
            return
        self._stopping = True
        self._scheduler.pause()
        if not self.wait_idle(self.drain_timeout if timeout is None else timeout):
            log.warning("stop: a job is still running after the drain timeout; leaving it")
        self._scheduler.shutdown(wait=False)

    async def stop_async(self, drain_timeout: float | None = None) -> None:
        """``stop()`` for code on the event loop: drains without blocking the loop."""
        if not self._scheduler.running:
            return
        self._stopping = True
        self._scheduler.pause()
        limit = self.drain_timeout if drain_timeout is None else drain_timeout
        if not await asyncio.to_thread(self.wait_idle, limit):
            log.warning("stop: a job is still running after %.0fs; leaving it", limit)
        self._scheduler.shutdown(wait=False)

    def add_job(
        self,
        func: Callable[..., Any],
        trigger: BaseTrigger | str,
        id: str,
        name: str,
        **kwargs: Any,
    ) -> Job:
        """Add any job; cron-like triggers given as strings are taken in UTC."""
        kwargs.setdefault("replace_existing", True)
        kwargs.setdefault("misfire_grace_time", int(self.misfire_grace.total_seconds()))
        kwargs.setdefault("coalesce", True)
        if trigger == "cron":
            kwargs.setdefault("timezone", UTC)
        return self._scheduler.add_job(func, trigger=trigger, id=id, name=name, **kwargs)

    def get_jobs(self) -> list[Job]:
        """All scheduled jobs (``id``, ``name``, ``next_run_time``)."""
        return list(self._scheduler.get_jobs())

    def get_job(self, job_id: str) -> Job:
        """One job, or JobNotFoundError."""
        job = self._scheduler.get_job(self._check_id(job_id))
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def remove_job(self, job_id: str) -> None:
        """Remove a job."""
        try:
            self._scheduler.remove_job(self._check_id(job_id))
        except JobLookupError:
            raise JobNotFoundError(job_id) from None

    def pause_job(self, job_id: str) -> None:
        """Pause a job (its ``next_run_time`` becomes None)."""
        try:
            self._scheduler.pause_job(self._check_id(job_id))
        except JobLookupError:
            raise JobNotFoundError(job_id) from None

    def resume_job(self, job_id: str) -> None:
        """Resume a paused job."""
        try:
            self._scheduler.resume_job(self._check_id(job_id))
        except JobLookupError:
            raise JobNotFoundError(job_id) from None

    def is_running(self) -> bool:
        """True while the scheduler is started."""
        return bool(self._scheduler.running)

    # -- slots --------------------------------------------------------------------------
    def current_slot(self, now: datetime | None = None) -> datetime | None:
        """The hourly job's most recent scheduled time within the misfire grace."""
        now = now or self.clock()
        return latest_fire(self.trigger, now, self.misfire_grace)

    def next_run_time(self) -> datetime | None:
        """When the hourly job fires next."""
        job = self._scheduler.get_job(HOURLY_JOB_ID)
        if job is not None and job.next_run_time is not None:
            return job.next_run_time.astimezone(UTC)  # type: ignore[no-any-return]
        return self.trigger.get_next_fire_time(None, self.clock())  # type: ignore[no-any-return]

    async def catch_up(self) -> Any:
        """Run the current slot now if it is unclaimed and still inside the grace time."""
        slot = self.current_slot()
        if slot is None:
            return None
        log.info("catching up slot %s", slot.isoformat())
        return await self._run_body(slot)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job body is running; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _check_id(job_id: object) -> str:
        if not isinstance(job_id, str) or not job_id.strip():
            raise JobNotFoundError(job_id)
        return job_id

    async def _run_slot(self) -> Any:
        now = self.clock()
        slot = latest_fire(self._job_trigger(), now, self.misfire_grace + timedelta(minutes=1))
        return await self._run_body(slot or now.replace(second=0, microsecond=0))

    def _job_trigger(self) -> BaseTrigger:
        job = self._scheduler.get_job(HOURLY_JOB_ID)
        return job.trigger if job is not None else self.trigger

    async def _run_body(self, slot: datetime) -> Any:
        with self._idle:
            self._active += 1
        try:
            return await asyncio.to_thread(self._body, slot)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _direct_body(self, collector: HourlyPostsCollectorJob) -> SlotBody:
        def body(slot: datetime) -> Any:
            return asyncio.run(run_slot_direct(collector, slot, self.clock()))

        return body

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_EXECUTED:
            if event.job_id == HOURLY_JOB_ID and self.engine is not None:
                self._record_unrecorded()  # this run reached PostgreSQL: so can the backlog
            return
        if event.job_id != HOURLY_JOB_ID or self.engine is None:
            log.warning("job %s: event %s", event.job_id, event.code)
            return
        scheduled = getattr(event, "scheduled_run_time", None)
        if isinstance(event, JobSubmissionEvent) and event.scheduled_run_times:
            scheduled = event.scheduled_run_times[0]
        slot = scheduled.astimezone(UTC) if scheduled else None
        if event.code == EVENT_JOB_MISSED:
            status, reason = (
                "skipped",
                (
                    f"missed: the fire for {slot:%Y-%m-%d %H:%M}Z came later than the "
                    f"{self.misfire_grace.total_seconds() / 60:g}-minute misfire grace"
                ),
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            status, reason = "skipped", "overlap: the previous run was still running"
        else:
            exc = event.exception if isinstance(event, JobExecutionEvent) else None
            status, reason = "failed", f"job raised {type(exc).__name__}: {exc}"
        log.warning("slot %s %s: %s", slot, status, reason)
        self._unrecorded.append(_Event(slot, status, reason, self.clock()))
        self._record_unrecorded()

    def _record_unrecorded(self) -> None:
        """Write the backlog of fire records, oldest first; keep it while PostgreSQL is down."""
        assert self.engine is not None
        while self._unrecorded:
            event = self._unrecorded[0]
            try:
                records.record_event(
                    self.engine,
                    slot=event.slot,
                    status=event.status,
                    error=event.error,
                    at=event.at,
                )
            except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
                log.error(
                    "could not reach PostgreSQL to record %s for slot %s (kept, %s waiting): %s",
                    event.status,
                    event.slot,
                    len(self._unrecorded),
                    str(exc).splitlines()[0],
                )
                return
            except Exception as exc:  # not a connection problem: retrying would block the rest
                log.error(
                    "could not record %s for slot %s: %s",
                    event.status,
                    event.slot,
                    str(exc).splitlines()[0],
                )
            self._unrecorded.popleft()


async def run_slot_direct(
    collector: HourlyPostsCollectorJob, slot: datetime, started: datetime
) -> dict[str, Any] | None:
    """Claim ``slot`` and run the collector once, in the current event loop."""
    repo = collector.post_repository
    try:
        run_id = await repo.claim_slot(slot, "scheduled", started)
        if run_id is None:
            log.info("slot %s already claimed", slot.isoformat())
            return None
        return await collector.run_collection(run_id=run_id, slot=slot)
    finally:
        await repo.engine.dispose()  # its pool belongs to this loop, which ends here


class SchedulerFactory:
    """Wires the repository, the RocksDB store, the HN client, the collector and the scheduler."""

    @staticmethod
    def create_scheduler(
        db_session: async_sessionmaker[Any] | AsyncEngine | str,
        rocksdb_path: str,
        score_threshold: int = 50,
        posts_limit: int = 100,
        **kwargs: Any,
    ) -> JobScheduler:
        """A JobScheduler whose ``.hourly_collector`` is ready to run every hour.

        Extra keyword arguments: ``hn_api_url``, ``mode`` ("direct" or
        "notebook"), ``settings`` (for notebook runs), ``cron``,
        ``misfire_grace_minutes``, ``story_list``, ``concurrency``, ``clock``.
        """
        if isinstance(db_session, str):
            async_engine = make_async_engine(db_session)
        elif isinstance(db_session, AsyncEngine):
            async_engine = db_session
        else:
            async_engine = PostRepository(db_session).engine
        settings: Settings | None = kwargs.get("settings")
        repo = PostRepository(async_engine)
        collector = HourlyPostsCollectorJob(
            repo,
            RocksDBStore(rocksdb_path),
            HNClient(
                kwargs.get("hn_api_url", DEFAULT_HN_API_URL),
                concurrency=kwargs.get("concurrency", 100),
            ),
            score_threshold,
            posts_limit,
            story_list=kwargs.get("story_list", "top"),
            trigger="scheduled",
            **({"clock": kwargs["clock"]} if "clock" in kwargs else {}),
        )
        sync_engine = make_engine(async_engine.url.render_as_string(hide_password=False))
        scheduler = JobScheduler(
            engine=sync_engine,
            cron=kwargs.get("cron", DEFAULT_CRON),
            misfire_grace_minutes=kwargs.get("misfire_grace_minutes", 10),
            clock=kwargs.get("clock"),
        )
        body = None
        if kwargs.get("mode", "direct") == "notebook":
            from hnlab.runner import run_notebook

            if settings is None:
                raise HnlabError("SchedulerFactory mode='notebook' needs settings=Settings(...)")

            def body(slot: datetime) -> Any:
                return run_notebook(
                    settings, sync_engine, slot=slot, trigger="scheduled", clock=scheduler.clock
                )

        scheduler.register_hourly_collector(collector, body=body)
        return scheduler
