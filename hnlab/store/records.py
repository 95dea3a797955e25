"""Records: the rows that say what each run, tick, runner and job did.

Opens, claims, closes and reads ``collection_runs``, ``track_ticks``,
``runners`` and ``job_outcomes``; the only other writer of those tables is the
posts repository, which sets a run's ``cache_pending`` flag in the run's own
transaction, and the minute repository, which executes the tick's closing
statement built here. Every function is async and takes the caller's
``AsyncEngine``; a sync caller (the CLI) wraps its call in ``asyncio.run``.
Every driver error leaves as one ``DatabaseError`` line (``db.database_errors``).

Slots are claimed with a transaction-scoped advisory lock *and* a unique
``slot`` row: the lock alone lets a replica that fires after the first one
released it run the hour again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.store.db import SLOT_LOCK_NAMESPACE, Row, read, write
from hnlab.store.tables import STATISTICS, collection_runs, job_outcomes, runners, track_ticks

STALE_ERROR = "run did not finish (process killed or timed out); closed as stale"


def host_name() -> str:
    """This machine's name, as run records and heartbeats show it."""
    return socket.gethostname()


async def _by_status(engine: AsyncEngine, table: sa.Table, *where: Any) -> dict[str, int]:
    """How many rows of ``table`` match ``where``, by their ``status``."""
    stmt = sa.select(table.c.status, sa.func.count().label("n")).where(*where)
    rows = await read(engine, stmt.group_by(table.c.status))
    return {r["status"]: int(r["n"]) for r in rows}


def _new_run(**values: Any) -> Any:
    return pg_insert(collection_runs).values(host=host_name(), pid=os.getpid(), **values)


# -- a run's life --------------------------------------------------------------------------
async def open_run(
    engine: AsyncEngine,
    *,
    trigger: str,
    started: datetime,
    slot: datetime | None = None,
    notebook_path: str | None = None,
) -> int | None:
    """Insert a ``running`` record and return its id.

    With a ``slot`` (a scheduled time, UTC) the slot is claimed: None means another
    run holds it already. Without one the record always opens (a manual run).
    """
    insert = _new_run(
        trigger=trigger,
        status="running",
        started_at=started,
        slot=slot.astimezone(UTC) if slot else None,
        notebook_path=notebook_path,
    )
    if slot is None:
        return int((await write(engine, insert.returning(collection_runs.c.id))).scalar_one())
    lock = sa.select(
        sa.func.pg_advisory_xact_lock(
            SLOT_LOCK_NAMESPACE, int(slot.astimezone(UTC).timestamp() // 3600)
        )
    )
    claim = insert.on_conflict_do_nothing(index_elements=["slot"]).returning(collection_runs.c.id)
    got = (await write(engine, lock, claim)).scalar_one_or_none()
    return int(got) if got is not None else None


def _finish_values(statistics: dict[str, Any] | None) -> dict[str, Any]:
    """The seed's statistics go to their columns; the rest goes to ``details``."""
    stats = dict(statistics or {})
    stats.pop("run_id", None)
    values = {key: stats.pop(key) for key in (*STATISTICS, "duration_s") if key in stats}
    if "last_run" in stats:
        last_run = stats.pop("last_run")
        values["last_run"] = (
            datetime.fromisoformat(last_run) if isinstance(last_run, str) else last_run
        )
    if stats:
        values["details"] = stats
    return values


async def finish_run(
    engine: AsyncEngine,
    run_id: int,
    status: str,
    finished_at: datetime,
    statistics: dict[str, Any] | None = None,
    *,
    error: str | None = None,
    notebook_path: str | None = None,
    cache_pending: bool | None = None,
    only_if_running: bool = False,
) -> bool:
    """Close a run record with its status, statistics and error; True if a row changed.

    With ``only_if_running``, a record that is already closed is left alone.
    """
    values = _finish_values(statistics)
    values.update(status=status, finished_at=finished_at, error=error)
    if notebook_path is not None:
        values["notebook_path"] = notebook_path
    if cache_pending is not None:
        values["cache_pending"] = cache_pending
    stmt = collection_runs.update().where(collection_runs.c.id == run_id).values(**values)
    if only_if_running:
        stmt = stmt.where(collection_runs.c.status == "running")
    return bool((await write(engine, stmt)).rowcount)


async def record_event(
    engine: AsyncEngine, *, slot: datetime | None, status: str, error: str, at: datetime
) -> None:
    """Record a skipped or failed fire; a slot still ``running`` is closed with it."""
    stmt = _new_run(
        trigger="scheduled",
        status=status,
        started_at=at,
        finished_at=at,
        slot=slot,
        error=error,
    )
    if slot is not None:
        stmt = stmt.on_conflict_do_update(
            index_elements=["slot"],
            set_={"status": status, "error": error, "finished_at": at},
            where=collection_runs.c.status == "running",
        )
    await write(engine, stmt)


async def close_stale_runs(engine: AsyncEngine, older_than: datetime, now: datetime) -> int:
    """Mark ``running`` records started before ``older_than`` as failed (killed runs)."""
    return await _close_stale(engine, collection_runs, older_than, now, STALE_ERROR)


async def _close_stale(
    engine: AsyncEngine, table: sa.Table, older_than: datetime, now: datetime, error: str
) -> int:
    stmt = (
        table.update()
        .where(table.c.status == "running", table.c.started_at < older_than)
        .values(status="failed", finished_at=now, error=error)
    )
    return int((await write(engine, stmt)).rowcount)


# -- the cache's debt ----------------------------------------------------------------------
async def runs_needing_cache(engine: AsyncEngine) -> list[int]:
    """Ids of runs whose new posts may be missing from RocksDB."""
    rows = await read(
        engine, sa.select(collection_runs.c.id).where(collection_runs.c.cache_pending)
    )
    return [r["id"] for r in rows]


async def clear_cache_pending(engine: AsyncEngine, run_ids: Sequence[int]) -> None:
    """Mark runs' posts as cached."""
    if run_ids:
        await write(
            engine,
            collection_runs.update()
            .where(collection_runs.c.id.in_(list(run_ids)))
            .values(cache_pending=False),
        )


# -- reading -------------------------------------------------------------------------------
async def get_run(engine: AsyncEngine, run_id: int) -> Row | None:
    """One run record as a dict, or None."""
    rows = await read(engine, collection_runs.select().where(collection_runs.c.id == run_id))
    return rows[0] if rows else None


async def recent_runs(engine: AsyncEngine, last: int = 20) -> list[Row]:
    """The newest ``last`` run records, newest first."""
    stmt = collection_runs.select().order_by(collection_runs.c.id.desc()).limit(last)
    return await read(engine, stmt)


# -- runners -------------------------------------------------------------------------------
async def beat(
    engine: AsyncEngine,
    runner_id: str,
    mode: str,
    started_at: datetime,
    now: datetime,
    next_run_at: datetime | None,
) -> None:
    """Insert or refresh this runner's heartbeat row."""
    host, _, pid = runner_id.rpartition(":")
    stmt = pg_insert(runners).values(
        id=runner_id,
        host=host,
        pid=int(pid),
        mode=mode,
        started_at=started_at,
        last_beat=now,
        next_run_at=next_run_at,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={"last_beat": now, "next_run_at": next_run_at}
    )
    await write(engine, stmt)


async def remove_runner(engine: AsyncEngine, runner_id: str) -> None:
    """Delete this runner's heartbeat row."""
    await write(engine, runners.delete().where(runners.c.id == runner_id))


async def live_runners(engine: AsyncEngine, since: datetime) -> list[Row]:
    """Runners whose heartbeat is newer than ``since``."""
    stmt = runners.select().where(runners.c.last_beat >= since).order_by(runners.c.started_at)
    return await read(engine, stmt)


# -- for monitoring ------------------------------------------------------------------------
_FINISHED = collection_runs.c.status.in_(("succeeded", "failed"))


async def last_finished(engine: AsyncEngine, *, succeeded: bool = False) -> Row | None:
    """The newest run that finished (succeeded or failed), or the newest that succeeded."""
    where = collection_runs.c.status == "succeeded" if succeeded else _FINISHED
    stmt = (
        collection_runs.select()
        .where(where, collection_runs.c.finished_at.is_not(None))
        .order_by(collection_runs.c.finished_at.desc())
        .limit(1)
    )
    rows = await read(engine, stmt)
    return rows[0] if rows else None


async def failure_streak(engine: AsyncEngine) -> list[Row]:
    """The failed runs since the last success, oldest first (empty when the last succeeded)."""
    last_ok = (
        sa.select(sa.func.max(collection_runs.c.finished_at))
        .where(collection_runs.c.status == "succeeded")
        .scalar_subquery()
    )
    stmt = (
        collection_runs.select()
        .where(
            collection_runs.c.status == "failed",
            sa.or_(last_ok.is_(None), collection_runs.c.finished_at > last_ok),
        )
        .order_by(collection_runs.c.finished_at)
    )
    return await read(engine, stmt)


async def outcomes_between(engine: AsyncEngine, since: datetime, until: datetime) -> dict[str, int]:
    """How many runs started in ``(since, until]`` ended in each status."""
    started = collection_runs.c.started_at
    return await _by_status(engine, collection_runs, started > since, started <= until)


# -- the minute tracker's ticks ------------------------------------------------------------
TICK_STALE_ERROR = "tick did not finish (process killed or PostgreSQL lost); closed as stale"


async def claim_tick(engine: AsyncEngine, slot: datetime, started: datetime) -> bool:
    """Claim the tick for ``slot`` (a UTC minute); False when another tick has it."""
    stmt = (
        pg_insert(track_ticks)
        .values(slot=slot, status="running", started_at=started, host=host_name(), pid=os.getpid())
        .on_conflict_do_nothing(index_elements=["slot"])
        .returning(track_ticks.c.slot)
    )
    return (await write(engine, stmt)).scalar_one_or_none() is not None


def finish_tick_statement(
    slot: datetime, status: str, finished: datetime, stats: dict[str, Any], error: str | None
) -> Any:
    """The UPDATE that closes a tick; run it in the transaction that writes the tick's data
    (a tick whose every list failed has none, and the transaction holds only this)."""
    columns = ("lists", "observations", "requests", "errors", "duration_s")
    return (
        track_ticks.update()
        .where(track_ticks.c.slot == slot)
        .values(
            status=status,
            finished_at=finished,
            error=error,
            **{k: stats[k] for k in columns if k in stats},
        )
    )


async def record_missed_tick(
    engine: AsyncEngine, slot: datetime, at: datetime, reason: str
) -> None:
    """Record a tick that ran too late to count (unless that minute was recorded)."""
    stmt = (
        pg_insert(track_ticks)
        .values(
            slot=slot,
            status="missed",
            started_at=at,
            finished_at=at,
            error=reason,
            host=host_name(),
            pid=os.getpid(),
        )
        .on_conflict_do_nothing(index_elements=["slot"])
    )
    await write(engine, stmt)


async def close_stale_ticks(engine: AsyncEngine, older_than: datetime, now: datetime) -> int:
    """Mark ``running`` ticks started before ``older_than`` as failed."""
    return await _close_stale(engine, track_ticks, older_than, now, TICK_STALE_ERROR)


async def tick_summary(engine: AsyncEngine, since: datetime) -> dict[str, int]:
    """Ticks since ``since`` by status (for ``hnlab runs``, which lists ticks apart)."""
    return await _by_status(engine, track_ticks, track_ticks.c.slot >= since)


# -- every scheduled job's last outcome -------------------------------------------------------
async def record_job_outcome(
    engine: AsyncEngine, job_id: str, error: str | None, at: datetime, runner: str
) -> Row:
    """Record a job's outcome (``error`` None: it succeeded) and return its row: a failure
    keeps the time the streak began and counts it; a success clears both."""
    failed = error is not None
    t = job_outcomes
    insert = pg_insert(t).values(
        job_id=job_id,
        outcome="failed" if failed else "succeeded",
        at=at,
        error=error,
        failing_since=at if failed else None,
        failures=1 if failed else 0,
        runner=runner,
    )
    excluded = insert.excluded
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.job_id],
        set_={
            "outcome": excluded.outcome,
            "at": excluded.at,
            "error": excluded.error,
            "runner": excluded.runner,
            "failing_since": sa.case(
                (excluded.outcome == "succeeded", None),
                else_=sa.func.coalesce(t.c.failing_since, excluded.at),
            ),
            "failures": sa.case((excluded.outcome == "succeeded", 0), else_=t.c.failures + 1),
        },
    ).returning(*t.c)
    result = await write(engine, stmt)
    return dict(result.mappings().one())


async def job_outcome_rows(engine: AsyncEngine) -> list[Row]:
    """Every job's last outcome, by job id."""
    return await read(engine, job_outcomes.select().order_by(job_outcomes.c.job_id))
