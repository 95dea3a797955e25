"""RunnerService: what ``hnlab run`` is: the scheduler, heartbeats, catch-up and clean exits.

Split from ``runner`` (one notebook run) because this is the long-lived process
around it: signals, the heartbeat row, and the drain on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hnlab import records
from hnlab.config import Settings
from hnlab.db import engine
from hnlab.errors import ConfigError
from hnlab.runner import RunOutcome, default_notebook, run_direct, run_notebook
from hnlab.scheduler import JobScheduler, cron_trigger, latest_fire

log = logging.getLogger(__name__)

HEARTBEAT_JOB_ID = "runner_heartbeat"
REPORT_JOB_ID = "report_generation"


class RunnerService:
    """One runner process. Several may run against one PostgreSQL; each hour runs once."""

    def __init__(
        self,
        settings: Settings,
        *,
        mode: str = "notebook",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if mode not in ("notebook", "direct"):
            raise ValueError(f"mode must be 'notebook' or 'direct', got {mode!r}")
        self.settings = settings
        self.mode = mode
        self.clock = clock or (lambda: datetime.now(UTC))
        self.trigger = cron_trigger(settings.cron, settings.label("cron"))
        notebook = default_notebook(settings)
        if mode == "notebook" and not notebook.is_file():
            raise ConfigError(
                f"{settings.label('notebook')} names no notebook: {str(notebook)!r}; "
                "point it at collect.ipynb or run with --direct"
            )
        settings.ensure_dirs()
        self.engine = engine(settings)
        self.runner_id = f"{records.host_name()}:{os.getpid()}"
        self.started = self.clock()
        self.scheduler: JobScheduler | None = None

    def run_slot(self, slot: datetime | None) -> RunOutcome:
        """Run one collection for ``slot`` (claimed first) in this runner's mode."""
        if self.mode == "notebook":
            return run_notebook(
                self.settings,
                self.engine,
                slot=slot,
                trigger="scheduled" if slot else "manual",
                clock=self.clock,
                notebook=self.settings.notebook,
            )
        return run_direct(
            self.settings,
            self.engine,
            slot=slot,
            trigger="scheduled" if slot else "manual",
            clock=self.clock,
        )

    def run_once(self) -> RunOutcome:
        """Claim the current slot and run it (``hnlab run --once``)."""
        self._close_stale()
        now = self.clock()
        slot = latest_fire(self.trigger, now, timedelta(days=1)) or now
        return self.run_slot(slot)

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Schedule until SIGINT/SIGTERM (or ``stop`` is set), then drain and return."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        self._close_stale()
        scheduler = self.scheduler = JobScheduler(
            engine=self.engine,
            cron=self.settings.cron,
            misfire_grace_minutes=self.settings.misfire_grace_minutes,
            drain_timeout=self.settings.drain_timeout,
            clock=self.clock,
        )
        scheduler.register_hourly_collector(None, body=self.run_slot)
        scheduler.add_job(
            self.beat, "interval", id=HEARTBEAT_JOB_ID, name="Runner heartbeat", minutes=1
        )
        scheduler.start()
        await asyncio.to_thread(self.beat)
        catch_up = asyncio.create_task(scheduler.catch_up())
        try:
            await stop.wait()
            log.info("stopping: no new runs; draining the running one")
        finally:
            await scheduler.stop_async()
            if not catch_up.done():
                await asyncio.wait([catch_up], timeout=self.settings.drain_timeout)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await asyncio.to_thread(records.remove_runner, self.engine, self.runner_id)
            self.engine.dispose()

    def beat(self) -> None:
        """Refresh this runner's heartbeat row."""
        next_run = self.scheduler.next_run_time() if self.scheduler else None
        try:
            records.beat(
                self.engine, self.runner_id, self.mode, self.started, self.clock(), next_run
            )
        except Exception as exc:
            log.warning("heartbeat not written: %s", exc)

    def reports(self) -> None:
        """Regenerate the HTML reports (a second scheduled job, daily by default)."""
        from hnlab.report import build_reports

        try:
            index, reports = build_reports(self.settings, self.settings.reports_dir)
            log.info(
                "reports written to %s (%s ok of %s)",
                index,
                sum(r.ok for r in reports),
                len(reports),
            )
        except Exception as exc:
            log.error("reports not written: %s", exc)

    def _close_stale(self) -> None:
        now = self.clock()
        closed = records.close_stale_runs(
            self.engine, now - timedelta(seconds=self.settings.run_timeout), now
        )
        if closed:
            log.warning("closed %s stale running record(s) as failed", closed)
