"""RunnerService: what ``hnlab run`` is: the scheduler, catch-up, job outcomes and clean exits.

The long-lived process around the jobs. It prepares the database once, opens one
async engine on its event loop, and schedules every job in the registry
(``hnlab.jobs``) whose settings turn it on; it names none of them. It watches
each job's outcome: one line when a job starts failing, one when it recovers,
and the last outcome recorded for ``hnlab status``. SIGINT and SIGTERM drain the
running jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab import jobs
from hnlab.clock import utc_now
from hnlab.config import Settings, cron_trigger
from hnlab.errors import ConfigError, DatabaseError
from hnlab.run.factory import Parts, open_parts
from hnlab.run.monitoring import Health, Metrics, in_words, serve_http
from hnlab.run.notify import Notifier
from hnlab.run.runner import MODES, Mode, RunOutcome, SlotRunner
from hnlab.run.scheduler import JobScheduler, latest_fire
from hnlab.store import db, records

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class RunnerService:
    """One runner process. Several may run against one PostgreSQL; each slot runs once."""

    def __init__(
        self,
        settings: Settings,
        *,
        mode: Mode = "notebook",
        clock: Callable[[], datetime] | None = None,
        collect: bool = True,
    ) -> None:
        """``collect=False`` runs only the minute tracker (``hnlab track``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be 'notebook' or 'direct', got {mode!r}")
        self.settings = settings
        self.collect = collect
        self.mode: Mode = mode
        self.clock = clock or utc_now
        self.trigger = cron_trigger(settings.cron, settings.label("cron"))
        notebook = settings.collect_notebook
        if collect and mode == "notebook" and not notebook.is_file():
            raise ConfigError(
                f"{settings.label('notebook')} names no notebook: {str(notebook)!r}; "
                "point it at collect.ipynb or run with --direct"
            )
        self.database = db.prepare(settings)
        self.runner_id = f"{records.host_name()}:{os.getpid()}"
        self.started = self.clock()
        self.scheduler: JobScheduler | None = None
        self._engine: AsyncEngine | None = None
        self.metrics = Metrics(mode=mode, host=records.host_name())
        self.health = Health(
            self.metrics,
            self.trigger,
            settings.cron,
            self.started,
            self.clock,
            track_every=settings.track_every,
            collect=collect,
        )
        self.notifier: Notifier | None = None
        self.failing: dict[str, int] = {}  # job id -> failed runs in a row, in this process
        self.say: Say = _quiet
        self._parts: Parts | None = None
        self._runner: SlotRunner | None = None

    async def run_once(self) -> RunOutcome:
        """Claim the latest scheduled slot and run it (``hnlab run --once``)."""
        async with open_parts(
            self.settings, trigger="scheduled", clock=self.clock, database=self.database
        ) as parts:
            await self._close_stale(parts.engine)
            await self._watch(parts.engine)
            now = self.clock()
            slot = latest_fire(self.trigger, now, timedelta(days=1)) or now
            return await self._run_and_tell(self._slot_runner(parts), slot)

    async def serve(self, stop: asyncio.Event | None = None, say: Say = _quiet) -> None:
        """Schedule until SIGINT/SIGTERM (or ``stop`` is set), then drain and return.

        ``say`` receives the lines a person watching the terminal wants: when the next
        run fires, and whether a catch-up run starts and why.
        """
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            parts = await stack.enter_async_context(
                open_parts(
                    self.settings, trigger="scheduled", clock=self.clock, database=self.database
                )
            )
            self._engine = parts.engine
            await self._close_stale(parts.engine)
            await self._watch(parts.engine)
            if self.settings.metrics_addr:
                stack.push_async_callback(
                    await serve_http(self.settings.metrics_addr, self.metrics, self.health)
                )
                say(
                    f"metrics: http://{self.settings.metrics_addr}/metrics, "
                    f"health: http://{self.settings.metrics_addr}/healthz"
                )
            scheduler = self.scheduler = JobScheduler(
                engine=parts.engine,
                cron=self.settings.cron,
                misfire_grace_minutes=self.settings.misfire_grace_minutes,
                drain_timeout=self.settings.drain_timeout,
                clock=self.clock,
            )
            self._parts, self._runner, self.say = parts, self._slot_runner(parts), say
            self._schedule_jobs(scheduler, parts)
            scheduler.start()
            await self.beat()
            catch_up = self._catch_up(scheduler, say) if self.collect else None
            try:
                await stop.wait()
                log.info("stopping: no new runs; draining the running one")
            finally:
                await scheduler.stop_async()
                if catch_up is not None and not catch_up.done():
                    await asyncio.wait([catch_up], timeout=self.settings.drain_timeout)
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
                try:
                    await records.remove_runner(parts.engine, self.runner_id)
                except DatabaseError as exc:
                    log.warning("heartbeat row not removed: %s", exc)
                self._engine = None

    def _schedule_jobs(self, scheduler: JobScheduler, parts: Parts) -> None:
        """Schedule every registered job that the settings turn on in this process."""
        for job in jobs.registered():
            if job.group in ("collect", "items") and not self.collect:
                continue  # `hnlab track` runs the tracker alone
            expression = job.trigger(self.settings)
            if expression is None:
                continue
            body = job.build(self)
            if body is None:
                continue
            watched = self._watched(job, body)
            if job.slots:
                scheduler.register_hourly_collector(parts.collector, body=watched)
            else:
                label = self.settings.label(job.setting) if job.setting else job.id
                scheduler.add_job(
                    watched,
                    cron_trigger(expression, label),
                    id=job.id,
                    name=job.name,
                    **job.options,
                )

    def _watched(self, job: jobs.Job, body: jobs.Body) -> jobs.Body:
        """``body``, with its outcome said when it changes and recorded every time."""

        async def watched(*args: Any) -> Any:
            try:
                result = await body(*args)
            except Exception as exc:
                await self._note(job, f"{type(exc).__name__}: {exc}")
                raise
            await self._note(job, jobs.failure(result))
            return result

        return watched

    async def _note(self, job: jobs.Job, error: str | None) -> None:
        """Say when ``job`` starts failing or recovers (not every fire), and record it."""
        failures = self.failing.get(job.id, 0)
        if error is not None:
            self.failing[job.id] = failures + 1
            if not failures:
                log.error("%s failing: %s", job.id, error)
                self.say(f"{job.name} ({job.id}) is failing: {error}")
        elif failures:
            del self.failing[job.id]
            log.info("%s recovered after %s failed run(s)", job.id, failures)
            self.say(f"{job.name} ({job.id}) recovered after {failures} failed run(s)")
        if self._engine is None:
            return
        try:
            await records.record_job_outcome(
                self._engine, job.id, error, self.clock(), self.runner_id
            )
        except DatabaseError as exc:
            log.warning("outcome of %s not recorded: %s", job.id, exc)

    @property
    def parts(self) -> Parts:
        """The parts this process runs on (while ``serve`` runs)."""
        if self._parts is None:
            raise RuntimeError("the service is not serving")
        return self._parts

    async def run_slot(self, slot: datetime) -> RunOutcome:
        """Run one hourly slot (the collection job's body)."""
        if self._runner is None:
            raise RuntimeError("the service is not serving")
        return await self._run_and_tell(self._runner, slot)

    async def _watch(self, engine: AsyncEngine) -> None:
        """Metrics and notifications start from what PostgreSQL recorded."""
        self.metrics.restore(
            await records.last_finished(engine),
            await records.last_finished(engine, succeeded=True),
            len(await records.runs_needing_cache(engine)),
        )
        if self.settings.notify_urls:
            self.notifier = Notifier(
                self.settings.notify_urls, engine, metrics=self.metrics, trigger=self.trigger
            )
            await self.notifier.start()

    async def _run_and_tell(self, runner: SlotRunner, slot: datetime) -> RunOutcome:
        """Run the slot, then count it and tell whoever should know; neither can fail it."""
        outcome = await runner.run(slot)
        try:
            if outcome.run_id is None:
                self.metrics.skipped()
                return outcome
            record = await records.get_run(runner.engine, outcome.run_id)
            if record is not None:
                pending = len(await records.runs_needing_cache(runner.engine))
                self.metrics.observe(record, pending)
                if self.notifier is not None:
                    await self.notifier.run_finished(record)
        except DatabaseError as exc:
            log.warning("run %s not counted in metrics or notified: %s", outcome.run_id, exc)
        return outcome

    def _slot_runner(self, parts: Parts) -> SlotRunner:
        return parts.slot_runner(self.mode, notebook=self.settings.notebook, clock=self.clock)

    def _catch_up(self, scheduler: JobScheduler, say: Say) -> asyncio.Task[object] | None:
        """Start the current slot's run if it is still inside the misfire grace; say why."""
        now = self.clock()
        grace = self.settings.misfire_grace_minutes
        slot = scheduler.current_slot(now)
        task = None
        if slot is not None:
            say(
                f"catch-up: the {slot:%H:%M}Z run is {in_words(now - slot)} late, inside the "
                f"{grace}-minute misfire grace; starting it now unless another runner has it"
            )
            task = asyncio.create_task(scheduler.catch_up(slot))
        else:
            last = latest_fire(self.trigger, now, timedelta(days=31))
            if last is not None:
                say(
                    f"no catch-up: the last scheduled run, {last:%Y-%m-%d %H:%M}Z, was "
                    f"{in_words(now - last)} ago, past the {grace}-minute misfire grace "
                    "(HNLAB_MISFIRE_GRACE_MINUTES)"
                )
        upcoming = scheduler.next_run_time()
        if upcoming is not None:
            say(f"next run: {upcoming:%Y-%m-%d %H:%M}Z (in {in_words(upcoming - now)})")
        return task

    async def beat(self) -> str | None:
        """Refresh this runner's heartbeat row (the heartbeat job's body)."""
        if self._engine is None:
            return None
        next_run = self.scheduler.next_run_time() if self.scheduler else None
        try:
            await records.beat(
                self._engine, self.runner_id, self.mode, self.started, self.clock(), next_run
            )
        except DatabaseError as exc:
            return f"heartbeat not written: {exc}"
        return None

    async def _close_stale(self, engine: AsyncEngine) -> None:
        now = self.clock()
        closed = await records.close_stale_runs(
            engine, now - timedelta(seconds=self.settings.run_timeout), now
        )
        if closed:
            log.warning("closed %s stale running record(s) as failed", closed)
