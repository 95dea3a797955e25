"""The slot runner: one run for one slot, in either mode, and the record that says how it ended.

Every collection that a scheduler, ``hnlab run --once`` or a test starts goes
through ``SlotRunner.run``:

1. open the run record: claim the slot (a scheduled time, UTC), or open a manual
   record; a slot another run holds is ``skipped``, not run twice;
2. do the work: ``direct`` runs the collector on this event loop; ``notebook``
   executes ``collect.ipynb`` with papermill in a child process (from a worker
   thread, so the loop keeps running) and hands it only ``run_id`` and ``slot``;
   the kernel reads everything else from the same HNLAB_* environment;
3. make sure the record ends closed, with the error and the notebook's path.

Output notebooks land in ``$HNLAB_RUNS_DIR/YYYY/MM/DD/collect-YYYYMMDDTHHMMZ.ipynb``
and are kept on failure too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.analysis.execute import execute
from hnlab.clock import Clock, utc_now
from hnlab.collect.collector import HourlyPostsCollectorJob
from hnlab.config import Settings
from hnlab.errors import DatabaseError, HnlabError
from hnlab.jobs import Job, register
from hnlab.store import records
from hnlab.store.db import engine_url
from hnlab.store.tables import STATISTICS

log = logging.getLogger(__name__)

Mode = Literal["notebook", "direct"]
MODES: tuple[Mode, ...] = ("notebook", "direct")
HOURLY_JOB_ID = "hourly_posts_collection"


def output_path(runs_dir: Path, moment: datetime) -> Path:
    """``runs_dir/YYYY/MM/DD/collect-YYYYMMDDTHHMMZ.ipynb`` (UTC), suffixed if taken."""
    moment = moment.astimezone(UTC)
    folder = runs_dir / f"{moment:%Y}" / f"{moment:%m}" / f"{moment:%d}"
    stem = f"collect-{moment:%Y%m%dT%H%M}Z"
    path = folder / f"{stem}.ipynb"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.ipynb"
        n += 1
    return path


def prune_outputs(runs_dir: Path, retention_days: int, now: datetime) -> int:
    """Delete output notebooks older than ``retention_days`` (by file time); return the count."""
    if retention_days <= 0 or not runs_dir.exists():
        return 0
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    removed = 0
    for path in runs_dir.glob("*/*/*/collect-*.ipynb"):
        if path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    for folder in sorted(runs_dir.glob("*/*/*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


@dataclass
class RunOutcome:
    """What one run ended as."""

    run_id: int | None
    status: str  # succeeded, failed, skipped
    slot: datetime | None = None
    notebook_path: str | None = None
    error: str | None = None
    cell_index: int | None = None
    ename: str | None = None
    evalue: str | None = None
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped")


class SlotRunner:
    """Runs slots in one mode against one engine; see the module docstring for the steps.

    ``direct`` needs the ``collector`` (whose repository's engine is used unless
    ``engine`` is given); ``notebook`` needs the ``settings`` the kernel inherits.
    """

    def __init__(
        self,
        engine: AsyncEngine | None = None,
        *,
        mode: Mode = "direct",
        collector: HourlyPostsCollectorJob | None = None,
        settings: Settings | None = None,
        notebook: Path | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'notebook' or 'direct', got {mode!r}")
        if mode == "direct" and collector is None:
            raise ValueError("a direct SlotRunner needs the collector")
        if mode == "notebook" and settings is None:
            raise ValueError("a notebook SlotRunner needs settings=Settings(...)")
        if engine is None:
            if collector is None:
                raise ValueError("SlotRunner needs an engine or a collector")
            engine = collector.engine
        self.engine = engine
        self.mode: Mode = mode
        self.collector = collector
        self.settings = settings
        self.notebook = notebook or (settings or Settings()).collect_notebook
        self.clock = clock

    async def run(self, slot: datetime | None = None, *, trigger: str | None = None) -> RunOutcome:
        """Run ``slot`` (claimed first; None: a manual run) and return how it ended."""
        trigger = trigger or ("scheduled" if slot else "manual")
        started = self.clock()
        out = None
        if self.mode == "notebook":
            assert self.settings is not None
            out = output_path(self.settings.runs, slot or started)
        run_id = await records.open_run(
            self.engine,
            trigger=trigger,
            started=started,
            slot=slot,
            notebook_path=str(out) if out else None,
        )
        if run_id is None:
            log.info("slot %s already claimed", slot.isoformat() if slot else "-")
            return RunOutcome(None, "skipped", slot=slot, error="slot already claimed")
        if out is None:
            outcome = await self._direct(run_id, slot)
        else:
            outcome = await self._notebook(run_id, slot, out)
        if outcome.status == "failed":
            await self._close_failed(outcome)
            log.error("run %s failed: %s", run_id, outcome.error)
        else:
            log.info("run %s succeeded", run_id)
        return outcome

    async def _direct(self, run_id: int, slot: datetime | None) -> RunOutcome:
        assert self.collector is not None
        try:
            stats = await self.collector.run_collection(run_id=run_id, slot=slot)
        except HnlabError as exc:
            reason = str(exc).removeprefix(f"run {run_id} failed: ")
            return RunOutcome(run_id, "failed", slot=slot, error=reason)
        return RunOutcome(run_id, "succeeded", slot=slot, statistics=stats)

    async def _notebook(self, run_id: int, slot: datetime | None, out: Path) -> RunOutcome:
        settings = self.settings
        assert settings is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        # The kernel uses this runner's database, and reads every other setting from the
        # same environment; only the run's identity is a parameter.
        env = {**settings.to_env(), "HNLAB_DATABASE_URL": engine_url(self.engine)}
        parameters = {"run_id": run_id, "slot": slot.astimezone(UTC).isoformat() if slot else None}
        executed = await asyncio.to_thread(
            execute,
            self.notebook,
            out,
            parameters,
            env=env,
            cell_timeout=settings.cell_timeout,
            run_timeout=settings.run_timeout,
        )
        outcome = RunOutcome(
            run_id,
            executed.status,
            slot=slot,
            notebook_path=executed.notebook_path,
            error=executed.error,
            cell_index=executed.cell_index,
            ename=executed.ename,
            evalue=executed.evalue,
        )
        record = await records.get_run(self.engine, run_id)
        if outcome.status == "failed" and record and record["status"] == "failed":
            outcome.error = record["error"]  # the collector's own words, not papermill's wrapping
        if outcome.status == "succeeded" and record is not None:
            if record["status"] == "running":
                # The kernel finished but never closed its record: the notebook did not collect.
                outcome.status, outcome.error = (
                    "failed",
                    "the notebook finished without a collection",
                )
            elif record["status"] == "failed":
                outcome.status, outcome.error = "failed", record["error"]
            else:
                outcome.statistics = {k: record[k] for k in STATISTICS}
        if outcome.status == "failed" and outcome.cell_index is not None:
            outcome.error = f"cell {outcome.cell_index}: {outcome.error or 'notebook failed'}"
        await asyncio.to_thread(prune_outputs, settings.runs, settings.retention_days, self.clock())
        return outcome

    async def _close_failed(self, outcome: RunOutcome) -> None:
        """Close a failed run's record, unless the collector already closed it as failed."""
        assert outcome.run_id is not None
        with contextlib.suppress(DatabaseError):  # unreachable: the stale-run sweep closes it
            await records.finish_run(
                self.engine,
                outcome.run_id,
                "failed",
                self.clock(),
                error=outcome.error or "run failed",
                notebook_path=outcome.notebook_path,
                only_if_running=self.mode == "direct",
            )


register(
    Job(
        HOURLY_JOB_ID,
        "Hourly posts collection",
        "cron",
        trigger=lambda settings: settings.cron,
        build=lambda runtime: runtime.run_slot,
        group="collect",
        slots=True,
    )
)
