"""JobScheduler: the seed's scheduler on APScheduler 3.11.

The only module that imports apscheduler. Settings the defaults get wrong are
explicit: the cron trigger's zone is UTC (a zone-less trigger follows the
machine's local zone), ``max_instances=1``, ``coalesce=True`` and a misfire
grace of minutes, not one second. APScheduler only logs missed, overlapping and
failed fires; here each becomes a ``collection_runs`` row, written on the
scheduler's own event loop, and kept in memory while PostgreSQL cannot be reached.

A slot's body is a coroutine function (``SlotRunner.run``: a direct collection
runs on the loop, a notebook run waits in a worker thread) or a plain function,
which runs in a worker thread. Two APScheduler 3 behaviours are worked around:
its ``shutdown`` does not wait for running jobs (``stop_async`` drains them
first), and on asyncio it only *schedules* the shutdown on the loop, so
``is_running()`` stayed True after ``stop()`` returned (``stop`` shuts down now).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.clock import utc_now
from hnlab.collect.collector import HourlyPostsCollectorJob
from hnlab.config import DEFAULT_CRON, cron_trigger
from hnlab.errors import DatabaseError, DatabaseUnavailableError, JobNotFoundError
from hnlab.run.runner import HOURLY_JOB_ID, SlotRunner
from hnlab.store import records

log = logging.getLogger(__name__)

SlotBody = Callable[[datetime], Awaitable[Any] | Any]  # one slot: a coroutine, or a thread


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
    """The hourly collection on an ``AsyncIOScheduler``, with the seed's methods.

    ``engine`` (async) is where missed, overlapping and failed fires are recorded;
    by default the registered collector's.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine | None = None,
        cron: str = DEFAULT_CRON,
        misfire_grace_minutes: int = 10,
        drain_timeout: float = 300.0,
        clock: Callable[[], datetime] | None = None,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        # An engine this scheduler was made with (SchedulerFactory from a URL) is disposed
        # on stop; one handed in by a caller never is.
        self._owned_engine = engine if owns_engine else None
        self.trigger = cron_trigger(cron)
        self.misfire_grace = timedelta(minutes=misfire_grace_minutes)
        self.drain_timeout = drain_timeout
        self.clock = clock or utc_now
        self.hourly_collector: HourlyPostsCollectorJob | None = None
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_event,
            EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED,
        )
        self._body: SlotBody | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Fires that could not be recorded (PostgreSQL unreachable), oldest first; written
        # as soon as PostgreSQL answers again, so every hour leaves a row.
        self._unrecorded: collections.deque[_Event] = collections.deque(maxlen=_UNRECORDED_MAX)
        self._slots: set[asyncio.Task[Any]] = set()
        self._bookkeeping: set[asyncio.Task[None]] = set()
        self._record_lock = asyncio.Lock()
        # APScheduler's memory store forgets every job on shutdown: keep what was added
        # (and which were paused), so start() after stop() schedules the same jobs.
        self._definitions: dict[str, tuple[Callable[..., Any], Any, dict[str, Any]]] = {}
        self._paused: set[str] = set()

    # -- the seed's methods ---------------------------------------------------------------
    def register_hourly_collector(
        self,
        hourly_collector: HourlyPostsCollectorJob | None,
        *,
        body: SlotBody | None = None,
        trigger: BaseTrigger | None = None,
    ) -> Job:
        """Schedule the hourly collection (job id ``hourly_posts_collection``).

        By default each slot is claimed and collected in-process (``SlotRunner``);
        ``body`` overrides what one slot does.
        """
        if body is None:
            if hourly_collector is None:
                raise ValueError("register_hourly_collector needs a collector or a body")
            body = SlotRunner(collector=hourly_collector, clock=self.clock).run
        if self.engine is None and hourly_collector is not None:
            self.engine = hourly_collector.engine
        self.hourly_collector = hourly_collector
        self._body = body
        return self._add(
            self._run_slot,
            trigger or self.trigger,
            id=HOURLY_JOB_ID,
            name="Hourly posts collection",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(self.misfire_grace.total_seconds()),
            replace_existing=True,
        )

    def start(self) -> None:
        """Start scheduling on the running event loop (again after ``stop``, too)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "JobScheduler.start() needs a running asyncio event loop; "
                "call it from async code, e.g. inside asyncio.run()"
            ) from None
        if not self._scheduler.running:
            self._loop = loop
            self._record_lock = asyncio.Lock()  # a lock belongs to one loop
            for job_id, (func, trigger, kwargs) in self._definitions.items():
                if self._scheduler.get_job(job_id) is None:
                    paused = {"next_run_time": None} if job_id in self._paused else {}
                    self._scheduler.add_job(func, trigger=trigger, id=job_id, **kwargs, **paused)
            self._scheduler.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop scheduling; ``is_running()`` is False when this returns.

        From another thread it drains like ``stop_async`` (up to ``timeout`` s). On the
        event loop's own thread it cannot wait without blocking the loop: new fires stop
        at once, and a collection already running finishes on the loop. Code on the loop
        that wants to wait for it uses ``await stop_async()``.
        """
        if not self._scheduler.running:
            return
        loop = self._loop
        if loop is not None and loop.is_running() and not _on_thread_of(loop):
            asyncio.run_coroutine_threadsafe(self.stop_async(timeout), loop).result()
            return
        if self._slots:
            log.warning("stop: a collection is still running; it finishes on the event loop")
        self._shutdown()
        if self._owned_engine is not None and loop is not None and loop.is_running():
            task = loop.create_task(self._owned_engine.dispose())  # after the running slot
            self._bookkeeping.add(task)
            task.add_done_callback(self._bookkeeping.discard)

    async def stop_async(self, drain_timeout: float | None = None) -> None:
        """Stop new fires, wait up to ``drain_timeout`` s for running ones, then shut down."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        limit = self.drain_timeout if drain_timeout is None else drain_timeout
        running = {*self._slots, *self._bookkeeping}
        if running:
            _, left = await asyncio.wait(running, timeout=limit)
            if left:
                log.warning("stop: a job is still running after %.0fs; leaving it", limit)
        self._shutdown()
        if self._owned_engine is not None:
            await self._owned_engine.dispose()

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
        if inspect.iscoroutinefunction(func):
            func = self._drained(func)
        return self._add(func, trigger, id=id, name=name, **kwargs)

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
        self._definitions.pop(job_id, None)
        self._paused.discard(job_id)

    def pause_job(self, job_id: str) -> None:
        """Pause a job (its ``next_run_time`` becomes None)."""
        try:
            self._scheduler.pause_job(self._check_id(job_id))
        except JobLookupError:
            raise JobNotFoundError(job_id) from None
        self._paused.add(job_id)

    def resume_job(self, job_id: str) -> None:
        """Resume a paused job."""
        try:
            self._scheduler.resume_job(self._check_id(job_id))
        except JobLookupError:
            raise JobNotFoundError(job_id) from None
        self._paused.discard(job_id)

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

    async def catch_up(self, slot: datetime | None = None) -> Any:
        """Run ``slot`` (by default the current one, if still inside the grace time) now."""
        slot = slot or self.current_slot()
        if slot is None:
            return None
        log.info("catching up slot %s", slot.isoformat())
        return await self._run_body(slot)

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _check_id(job_id: object) -> str:
        if not isinstance(job_id, str) or not job_id.strip():
            raise JobNotFoundError(job_id)
        return job_id

    def _add(self, func: Callable[..., Any], trigger: Any, *, id: str, **kwargs: Any) -> Job:
        job = self._scheduler.add_job(func, trigger=trigger, id=id, **kwargs)
        self._definitions[id] = (func, trigger, kwargs)
        self._paused.discard(id)
        return job

    def _shutdown(self) -> None:
        # AsyncIOScheduler.shutdown() only queues its own shutdown on the loop; run the same
        # function now, so the state is STOPPED when stop() returns and start() works again.
        AsyncIOScheduler._shutdown.__wrapped__(self._scheduler, False)

    async def _run_slot(self) -> Any:
        now = self.clock()
        slot = latest_fire(self._job_trigger(), now, self.misfire_grace + timedelta(minutes=1))
        return await self._run_body(slot or now.replace(second=0, microsecond=0))

    def _job_trigger(self) -> BaseTrigger:
        job = self._scheduler.get_job(HOURLY_JOB_ID)
        return job.trigger if job is not None else self.trigger

    async def _run_body(self, slot: datetime) -> Any:
        return await self._shielded(self._call_body(slot))

    async def _shielded(self, work: Awaitable[Any]) -> Any:
        """Run ``work`` as a task of its own, which ``stop_async`` drains: a shutdown that
        cancels APScheduler's job future never cancels a collection or a tick halfway."""
        task = asyncio.ensure_future(work)
        self._slots.add(task)
        task.add_done_callback(self._slots.discard)
        return await asyncio.shield(task)

    def _drained(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(func)
        async def job(*args: Any, **kwargs: Any) -> Any:
            return await self._shielded(func(*args, **kwargs))

        return job

    async def _call_body(self, slot: datetime) -> Any:
        body = self._body
        if body is None:
            raise RuntimeError("no hourly job is registered; call register_hourly_collector()")
        if inspect.iscoroutinefunction(body):
            return await body(slot)
        return await asyncio.to_thread(body, slot)

    def _on_event(self, event: JobEvent) -> None:
        """APScheduler's listener (on the loop's thread): queue a record of the fire."""
        if event.job_id != HOURLY_JOB_ID or self.engine is None:
            if event.code != EVENT_JOB_EXECUTED:
                log.warning("job %s: event %s", event.job_id, event.code)
            return
        if event.code == EVENT_JOB_EXECUTED:
            if self._unrecorded:  # this run reached PostgreSQL: so can the backlog
                self._record_soon()
            return
        exc = event.exception if isinstance(event, JobExecutionEvent) else None
        if isinstance(exc, asyncio.CancelledError):
            return  # our own shutdown cancelled APScheduler's wait; the slot runs on
        scheduled = getattr(event, "scheduled_run_time", None)
        if isinstance(event, JobSubmissionEvent) and event.scheduled_run_times:
            scheduled = event.scheduled_run_times[0]
        slot = scheduled.astimezone(UTC) if scheduled else None
        if event.code == EVENT_JOB_MISSED:
            grace = self.misfire_grace.total_seconds() / 60
            status, reason = (
                "skipped",
                f"missed: the fire for {slot:%Y-%m-%d %H:%M}Z came later than the "
                f"{grace:g}-minute misfire grace",
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            status, reason = "skipped", "overlap: the previous run was still running"
        else:
            status, reason = "failed", f"job raised {type(exc).__name__}: {exc}"
        log.warning("slot %s %s: %s", slot, status, reason)
        self._unrecorded.append(_Event(slot, status, reason, self.clock()))
        self._record_soon()

    def _record_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._record_unrecorded())
        self._bookkeeping.add(task)
        task.add_done_callback(self._bookkeeping.discard)

    async def _record_unrecorded(self) -> None:
        """Write the backlog of fire records, oldest first; keep it while PostgreSQL is down."""
        assert self.engine is not None
        async with self._record_lock:
            while self._unrecorded:
                event = self._unrecorded[0]
                try:
                    await records.record_event(
                        self.engine,
                        slot=event.slot,
                        status=event.status,
                        error=event.error,
                        at=event.at,
                    )
                except DatabaseUnavailableError as exc:
                    log.error(
                        "could not record %s for slot %s (kept, %s waiting): %s",
                        event.status,
                        event.slot,
                        len(self._unrecorded),
                        exc,
                    )
                    return
                except DatabaseError as exc:  # refused: retrying would block the rest
                    log.error("could not record %s for slot %s: %s", event.status, event.slot, exc)
                self._unrecorded.popleft()


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
