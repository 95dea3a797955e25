"""Notebook runs on a real Jupyter kernel, and ``hnlab run`` as processes."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
import sqlalchemy as sa

from hnlab.analysis.execute import execute
from hnlab.config import NOTEBOOKS_DIR, Settings
from hnlab.run.factory import open_parts
from hnlab.run.runner import Mode, RunOutcome, output_path, prune_outputs
from hnlab.run.service import RunnerService
from hnlab.sim.server import SimulatedHN
from hnlab.store import records

from .conftest import START
from .helpers import REPO, hnlab_process, on_loop

pytestmark = pytest.mark.slow


def notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("run_id = None\nslot = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def run_slot(
    settings: Settings,
    mode: Mode,
    slot: datetime | None = None,
    *,
    trigger: str | None = None,
    notebook: Path | None = None,
) -> RunOutcome:
    """One slot through the slot runner, built the way ``hnlab run`` builds it."""

    async def go() -> RunOutcome:
        async with open_parts(settings) as parts:
            return await parts.slot_runner(mode, notebook=notebook).run(slot, trigger=trigger)

    return asyncio.run(go())


def execute_with(settings: Settings, nb: Path, out: Path, **kwargs: Any) -> Any:
    return execute(
        nb,
        out,
        {},
        env=settings.to_env(),
        cell_timeout=settings.cell_timeout,
        run_timeout=settings.run_timeout,
        **kwargs,
    )


def run_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.text("SELECT * FROM collection_runs ORDER BY id")).mappings()
        ]


def test_output_paths_are_utc_and_never_overwrite(tmp_path: Path) -> None:
    moment = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    first = output_path(tmp_path, moment)
    assert first == tmp_path / "2026/03/01/collect-20260301T0700Z.ipynb"
    first.parent.mkdir(parents=True)
    first.write_text("{}")
    assert output_path(tmp_path, moment).name == "collect-20260301T0700Z-2.ipynb"


def test_old_output_notebooks_are_pruned(tmp_path: Path) -> None:
    old = tmp_path / "2026/01/01/collect-20260101T0000Z.ipynb"
    new = tmp_path / "2026/03/01/collect-20260301T0000Z.ipynb"
    for p in (old, new):
        p.parent.mkdir(parents=True)
        p.write_text("{}")
    now = datetime.now(UTC)
    stamp = (now - timedelta(days=31)).timestamp()
    os.utime(old, (stamp, stamp))
    assert prune_outputs(tmp_path, 30, now) == 1
    assert not old.exists() and not old.parent.exists() and new.exists()


def test_a_real_papermill_run_collects_and_keeps_one_record(
    settings: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    outcome = run_slot(settings, "notebook", slot)
    assert outcome.status == "succeeded", outcome.error
    [row] = run_rows(engine)
    assert (row["status"], row["trigger"], row["slot"]) == ("succeeded", "scheduled", slot)
    assert row["posts_saved"] > 0 and row["posts_fetched"] == row["posts_saved"]
    assert row["notebook_path"] == outcome.notebook_path
    out = Path(outcome.notebook_path or "")
    assert out.parent == settings.runs / f"{slot:%Y/%m/%d}"
    nb = nbformat.read(out, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert f"run_id = {row['id']}" in injected.source
    assert "postgres" not in injected.source
    assert re.findall(r"^(\w+) =", injected.source, re.M) == ["run_id", "slot"]
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM posts")).scalar_one() == row["posts_saved"]
        )
    again = run_slot(settings, "notebook", slot)
    assert again.status == "skipped" and len(run_rows(engine)) == 1


@pytest.mark.parametrize(
    ("cells", "error_start", "cell_index"),
    [
        # indices are those of the kept output notebook, after papermill's injected cell
        (["x = 1", "1 / 0"], "cell 3: ZeroDivisionError: division by zero", 3),
        (["import time\ntime.sleep(30)"], "cell 2: a cell timed out after 2s", 2),
        (["import os\nos._exit(1)"], "cell 2: the kernel died", 2),
    ],
    ids=["raises", "times-out", "kernel-dies"],
)
def test_failing_notebooks_are_recorded_with_their_cell_and_kept(
    make_settings: Callable[..., Settings],
    engine: sa.Engine,
    tmp_path: Path,
    cells: list[str],
    error_start: str,
    cell_index: int,
) -> None:
    settings = make_settings(cell_timeout=2)
    nb = notebook(tmp_path / "bad.ipynb", *cells)
    outcome = run_slot(settings, "notebook", notebook=nb)
    assert outcome.status == "failed"
    assert outcome.cell_index == cell_index
    [row] = run_rows(engine)
    assert row["status"] == "failed" and row["error"].startswith(error_start), row["error"]
    assert Path(row["notebook_path"]).exists()


def test_a_missing_kernel_is_reported(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    nb = notebook(tmp_path / "ok.ipynb", "x = 1")
    outcome = execute_with(make_settings(), nb, tmp_path / "out.ipynb", kernel_name="nope")
    assert outcome.status == "failed" and outcome.ename == "NoSuchKernel"
    assert outcome.error == (
        "no Jupyter kernel named 'nope'; run 'python -m ipykernel install --user'"
    )


def test_the_per_run_timeout_kills_the_kernel(
    make_settings: Callable[..., Settings], engine: sa.Engine, tmp_path: Path
) -> None:
    settings = make_settings(run_timeout=4, cell_timeout=60)
    nb = notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    t0 = time.monotonic()
    outcome = run_slot(settings, "notebook", notebook=nb)
    assert time.monotonic() - t0 < 20
    assert outcome.error == ("run timed out after 4s (HNLAB_RUN_TIMEOUT); the kernel was killed")
    assert run_rows(engine)[0]["status"] == "failed"


def test_direct_runs_claim_the_slot_once(settings: Settings, engine: sa.Engine) -> None:
    first = run_slot(settings, "direct", START)
    second = run_slot(settings, "direct", START)
    assert (first.status, second.status) == ("succeeded", "skipped")
    assert [r["status"] for r in run_rows(engine)] == ["succeeded"]


def test_two_run_once_processes_make_one_collection(
    settings: Settings, engine: sa.Engine, sim: SimulatedHN
) -> None:
    procs = [hnlab_process(settings, "run", "--once", "--direct") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted(o[0].strip() for o in outs)
    assert re.fullmatch(r"run \d+ succeeded", said[0]), said
    assert re.fullmatch(r"slot \d{4}-\d\d-\d\d \d\d:00Z already claimed; nothing to do", said[1]), (
        said
    )
    rows = run_rows(engine)
    assert [r["status"] for r in rows] == ["succeeded"]
    assert sim.requests_for("topstories.json") == 1  # the loser fetched nothing
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(DISTINCT run_id) FROM post_snapshots")).scalar_one()
            == 1
        )


def test_sigterm_drains_the_running_collection_and_exits_0(
    make_settings: Callable[..., Settings], engine: sa.Engine, sim: SimulatedHN
) -> None:
    sim.faults.latency_ms = 400
    settings = make_settings(hn_api_url=sim.base_url, concurrency=5, posts_limit=40)
    proc = hnlab_process(settings, "run", "--direct", "--cron", "* * * * *")
    deadline = time.monotonic() + 60
    while not any(r["status"] == "running" for r in run_rows(engine)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "hnlab runner stopped" in out
    rows = run_rows(engine)
    assert rows[0]["status"] == "succeeded" and rows[0]["posts_fetched"] is not None
    since = datetime.now(UTC) - timedelta(hours=1)
    assert on_loop(engine, lambda eng: records.live_runners(eng, since)) == []


def test_collect_notebook_run_by_hand_opens_its_own_notebook_record(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    outcome = execute_with(settings, NOTEBOOKS_DIR / "collect.ipynb", tmp_path / "by-hand.ipynb")
    assert outcome.status == "succeeded", outcome.error
    [row] = run_rows(engine)
    assert (row["trigger"], row["status"], row["slot"]) == ("notebook", "succeeded", None)
    nb = nbformat.read(tmp_path / "by-hand.ipynb", as_version=4)
    table = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert re.search(rf"posts_saved\s+{row['posts_saved']}\b", table)


def test_hnlab_simulate_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hnlab", "simulate", "--port", "0", "--latency-ms", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"simulated HN API at (http://127\.0\.0\.1:\d+/v0) \(seed 1\)", line)
    assert match, line
    import httpx

    ids = httpx.get(f"{match.group(1)}/topstories.json").json()
    assert len(ids) == 500
    assert httpx.get(f"{match.group(1)}/item/{ids[0]}.json").json()["id"] == ids[0]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_direct_run_uses_one_engine(settings: Settings, engine: sa.Engine) -> None:
    """``hnlab run --once --direct``: the database is prepared once, then one async engine
    serves the claim, the collection and the record (not a sync engine, a throwaway one
    for migrations and an async one, as before)."""
    service = RunnerService(settings, mode="direct")  # prepares: migrations on their own engine
    connected: list[int] = []

    def on_connect(conn: sa.Connection) -> None:
        connected.append(id(conn.engine))

    sa.event.listen(sa.Engine, "engine_connect", on_connect)
    try:
        outcome = asyncio.run(service.run_once())
    finally:
        sa.event.remove(sa.Engine, "engine_connect", on_connect)
    assert outcome.status == "succeeded", outcome.error
    assert len(connected) >= 4  # claim, stale sweep, cache query, write, record, ...
    assert len(set(connected)) == 1


def test_a_failed_collection_in_the_notebook_keeps_the_collectors_reason(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url="http://127.0.0.1:9/v0", retry_attempts=1)
    outcome = run_slot(settings, "notebook", START)
    assert outcome.status == "failed" and outcome.cell_index is not None
    [row] = run_rows(engine)
    assert row["error"] == outcome.error
    assert re.fullmatch(
        rf"cell {outcome.cell_index}: cannot fetch the top list: topstories\.json: "
        r"connection failed \(.*\) \(gave up after retries\)",
        row["error"],
    ), row["error"]
    assert Path(row["notebook_path"]).exists()
