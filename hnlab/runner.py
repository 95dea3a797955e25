"""Notebook runs: papermill executes ``collect.ipynb`` in a child process, one record per run.

The child process (``python -m hnlab.runner``) calls papermill, which starts a
real Jupyter kernel; the parent waits with the per-run timeout and kills the
whole process group when it passes. Output notebooks land in
``$HNLAB_RUNS_DIR/YYYY/MM/DD/collect-YYYYMMDDTHHMMZ.ipynb`` and are kept on
failure too. The runner creates the run record (claiming the hour's slot when
scheduled) and hands its id to the notebook, so the notebook's collection and
the runner's bookkeeping are one ``collection_runs`` row.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hnlab import records
from hnlab.config import Settings, env_name
from hnlab.tables import STATISTICS

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
REPO_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "collect.ipynb"


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_notebook(settings: Settings) -> Path:
    """The collection notebook: HNLAB_NOTEBOOK, or ``notebooks/collect.ipynb`` of the checkout."""
    return settings.notebook or REPO_NOTEBOOK


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour that contains ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


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


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as HNLAB_* variables, for child processes (a kernel reads these)."""
    env: dict[str, str] = {}
    for name, value in settings.as_dict().items():
        if value is None or name == "database_url":
            continue
        env[env_name(name)] = str(value)
    if settings.database_url:
        env["HNLAB_DATABASE_URL"] = settings.database_url
    env["HNLAB_DATA_DIR"] = str(settings.data_dir.resolve())
    env["HNLAB_ROCKSDB_PATH"] = str(settings.rocksdb.resolve())
    env["HNLAB_RUNS_DIR"] = str(settings.runs.resolve())
    return env


@dataclass
class RunOutcome:
    """What one notebook (or direct) run ended as."""

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


def open_run(
    eng: sa.Engine,
    *,
    trigger: str,
    slot: datetime | None,
    started: datetime,
    notebook_path: str | None = None,
) -> int | None:
    """Create the run record: claim ``slot`` if given (None when already claimed)."""
    if slot is not None:
        run_id = records.claim_slot(eng, slot, trigger, started, notebook_path)
        if run_id is None:
            log.info("slot %s already claimed", slot.astimezone(UTC).isoformat())
        return run_id
    return records.start_run(eng, trigger=trigger, started=started, notebook_path=notebook_path)


def run_notebook(
    settings: Settings,
    eng: sa.Engine,
    *,
    slot: datetime | None = None,
    trigger: str = "manual",
    clock: Clock = utc_now,
    notebook: Path | None = None,
) -> RunOutcome:
    """Claim the slot (if any), execute the notebook in a child process, and record the end."""
    started = clock()
    notebook = notebook or default_notebook(settings)
    out = output_path(settings.runs, slot or started)
    run_id = open_run(eng, trigger=trigger, slot=slot, started=started, notebook_path=str(out))
    if run_id is None:
        return RunOutcome(None, "skipped", slot=slot, error="slot already claimed")
    out.parent.mkdir(parents=True, exist_ok=True)
    parameters = {
        "database_url": None,  # read from the environment, never written into the notebook
        "rocksdb_path": str(settings.rocksdb.resolve()),
        "hn_api_url": settings.hn_api_url,
        "score_threshold": settings.score_threshold,
        "limit": settings.posts_limit,
        "slot": slot.astimezone(UTC).isoformat() if slot else None,
        "run_id": run_id,
    }
    outcome = execute(notebook, out, parameters, settings)
    outcome.run_id, outcome.slot = run_id, slot
    record = records.get_run(eng, run_id)
    if outcome.status == "succeeded":
        if record and record["status"] == "running":
            # The kernel finished but never closed its record: the notebook did not collect.
            outcome.status, outcome.error = "failed", "the notebook finished without a collection"
        elif record and record["status"] == "failed":
            outcome.status, outcome.error = "failed", record["error"]
    if outcome.status == "failed":
        reason = outcome.error or "notebook failed"
        if outcome.cell_index is not None:
            reason = f"cell {outcome.cell_index}: {reason}"
        records.finish_run(eng, run_id, "failed", clock(), error=reason, notebook_path=str(out))
        log.error("run %s failed: %s (notebook kept at %s)", run_id, reason, out)
        outcome.error = reason
    else:
        outcome.statistics = {k: record[k] for k in STATISTICS} if record else {}
        log.info("run %s succeeded; notebook at %s", run_id, out)
    prune_outputs(settings.runs, settings.retention_days, clock())
    return outcome


def execute(
    notebook: Path,
    out: Path,
    parameters: Mapping[str, Any],
    settings: Settings,
    kernel_name: str = "python3",
) -> RunOutcome:
    """Run papermill in a child process with per-cell and per-run timeouts."""
    with tempfile.TemporaryDirectory(prefix="hnlab-run-") as tmp:
        result_path = Path(tmp) / "result.json"
        request = {
            "notebook": str(notebook),
            "output": str(out),
            "parameters": dict(parameters),
            "cell_timeout": settings.cell_timeout,
            "kernel_name": kernel_name,
            "result": str(result_path),
            "cwd": str(notebook.resolve().parent),
        }
        env = {**os.environ, **settings_env(settings)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "hnlab.runner", json.dumps(request)],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, stderr = proc.communicate(timeout=settings.run_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return RunOutcome(
                None,
                "failed",
                notebook_path=str(out),
                error=f"run timed out after {settings.run_timeout:g}s "
                "(HNLAB_RUN_TIMEOUT); the kernel was killed",
            )
        if result_path.exists():
            result = json.loads(result_path.read_text())
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
            result = {
                "status": "failed",
                "error": f"papermill exited with {proc.returncode}: {' '.join(tail)}",
            }
    return RunOutcome(
        None,
        result["status"],
        notebook_path=str(out),
        error=result.get("error"),
        cell_index=result.get("cell_index"),
        ename=result.get("ename"),
        evalue=result.get("evalue"),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()  # reaps it and closes its pipes


def _child(request: dict[str, Any]) -> int:
    """In the child: run papermill and write what happened to ``request['result']``."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    result: dict[str, Any] = {"status": "succeeded"}
    try:
        papermill.execute_notebook(
            request["notebook"],
            request["output"],
            parameters=request["parameters"],
            kernel_name=request["kernel_name"],
            execution_timeout=request["cell_timeout"],
            progress_bar=False,
            request_save_on_cell_execute=True,
            cwd=request["cwd"],
        )
    except papermill.PapermillExecutionError as exc:
        result = {
            "status": "failed",
            "cell_index": exc.cell_index,
            "ename": exc.ename,
            "evalue": exc.evalue,
            "error": f"{exc.ename}: {exc.evalue}",
        }
    except CellTimeoutError as exc:
        result = {
            "status": "failed",
            "ename": "CellTimeoutError",
            "error": f"a cell timed out after {request['cell_timeout']:g}s "
            f"(HNLAB_CELL_TIMEOUT): {str(exc).splitlines()[0]}",
        }
        result["cell_index"] = _running_cell(request["output"])
    except DeadKernelError as exc:
        result = {
            "status": "failed",
            "ename": "DeadKernelError",
            "error": f"the kernel died: {exc}",
        }
        result["cell_index"] = _running_cell(request["output"])
    except NoSuchKernel as exc:
        result = {
            "status": "failed",
            "ename": "NoSuchKernel",
            "error": f"no Jupyter kernel named {exc.name!r}; run "
            "'python -m ipykernel install --user'",
        }
    except Exception as exc:  # the notebook file itself, papermill's own errors
        result = {"status": "failed", "ename": type(exc).__name__, "error": str(exc)}
    Path(request["result"]).write_text(json.dumps(result))
    return 0 if result["status"] == "succeeded" else 1


def _running_cell(output: str) -> int | None:
    """The index of the cell that was executing when the run stopped, or None.

    After a cell timeout papermill marks that cell ``completed`` without an
    exception, so the status alone is not trusted: the answer is the last cell
    papermill started (cells it never reached stay ``pending``).
    """
    try:
        nb = json.loads(Path(output).read_text())
    except (OSError, ValueError):
        return None
    started = None
    for index, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("status") == "running":
            return index
        if meta.get("start_time") and meta.get("status") != "pending":
            started = index
    return started


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


def run_direct(
    settings: Settings,
    eng: sa.Engine,
    *,
    slot: datetime | None = None,
    trigger: str = "manual",
    clock: Clock = utc_now,
) -> RunOutcome:
    """Claim the slot (if any) and run the collector in this process, in its own event loop."""
    import asyncio

    from hnlab.collector import collect_once
    from hnlab.errors import HnlabError

    started = clock()
    run_id = open_run(eng, trigger=trigger, slot=slot, started=started)
    if run_id is None:
        return RunOutcome(None, "skipped", slot=slot, error="slot already claimed")
    try:
        stats = asyncio.run(
            collect_once(settings, trigger=trigger, run_id=run_id, slot=slot, clock=clock)
        )
    except HnlabError as exc:
        records.finish_run(eng, run_id, "failed", clock(), error=str(exc), only_if_running=True)
        return RunOutcome(run_id, "failed", slot=slot, error=str(exc))
    return RunOutcome(run_id, "succeeded", slot=slot, statistics=stats)


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
