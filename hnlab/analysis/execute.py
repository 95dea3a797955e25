"""One notebook executed by papermill in a child process, with per-cell and per-run timeouts.

``execute`` starts ``python -m hnlab.analysis.execute``, which calls papermill on a real
Jupyter kernel; the parent waits up to the run timeout and then kills the whole
process group, kernel included. What happened comes back as an ``Executed``,
which keeps papermill's cell index, exception name and value. The slot runner
(collection runs) and ``hnlab report`` (analysis notebooks) both use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Executed:
    """How one notebook execution ended."""

    status: str  # succeeded or failed
    notebook_path: str
    error: str | None = None
    cell_index: int | None = None
    ename: str | None = None
    evalue: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def execute(
    notebook: Path,
    out: Path,
    parameters: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cell_timeout: float,
    run_timeout: float,
    kernel_name: str = "python3",
) -> Executed:
    """Run papermill on ``notebook`` into ``out`` in a child process with ``env`` added.

    Blocks until the child ends (at most ``run_timeout`` seconds): call it from a
    worker thread when an event loop must keep running.
    """
    with tempfile.TemporaryDirectory(prefix="hnlab-run-") as tmp:
        result_path = Path(tmp) / "result.json"
        request = {
            "notebook": str(notebook),
            "output": str(out),
            "parameters": dict(parameters),
            "cell_timeout": cell_timeout,
            "kernel_name": kernel_name,
            "result": str(result_path),
            "cwd": str(notebook.resolve().parent),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "hnlab.analysis.execute", json.dumps(request)],
            env={**os.environ, **env},
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, stderr = proc.communicate(timeout=run_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return Executed(
                "failed",
                str(out),
                error=f"run timed out after {run_timeout:g}s "
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
    return Executed(
        result["status"],
        str(out),
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


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
