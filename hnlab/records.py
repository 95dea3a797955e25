"""Run records and runner heartbeats: the rows that say what each run and runner did.

Split from ``db`` so the sync runner and scheduler, and the async collector,
share one set of statements. Slots are claimed with a transaction-scoped
advisory lock *and* a unique ``slot`` row: the lock alone lets a replica that
fires after the first one released it run the hour again.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.config import mask_url
from hnlab.errors import DatabaseError
from hnlab.tables import collection_runs, runners

SLOT_LOCK_NAMESPACE = 0x686E  # first key of pg_advisory_xact_lock(int, int) for slots


def host_name() -> str:
    """This machine's name, as run records and heartbeats show it."""
    return socket.gethostname()


def connection_error(eng: sa.Engine | AsyncEngine, exc: BaseException) -> DatabaseError:
    """A one-line DatabaseError for a failed statement, with the password masked."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    url = eng.url.render_as_string(hide_password=False)
    if eng.url.host is None and "host" in eng.url.query:
        hint = "the embedded server stopped; run the command again"
    else:
        hint = "start the server or fix HNLAB_DATABASE_URL"
    return DatabaseError(f"cannot reach PostgreSQL at {mask_url(url)}: {detail}; {hint}")


def _slot_key(slot: datetime) -> int:
    return int(slot.astimezone(UTC).timestamp() // 3600)


def _claim_stmts(
    slot: datetime, trigger: str, started_at: datetime, notebook_path: str | None
) -> tuple[sa.TextClause, dict[str, Any], Any]:
    lock = sa.text("SELECT pg_advisory_xact_lock(:ns, :key)")
    params = {"ns": SLOT_LOCK_NAMESPACE, "key": _slot_key(slot)}
    insert = (
        pg_insert(collection_runs)
        .values(
            trigger=trigger,
            status="running",
            started_at=started_at,
            slot=slot.astimezone(UTC),
            notebook_path=notebook_path,
            host=host_name(),
            pid=os.getpid(),
        )
        .on_conflict_do_nothing(index_elements=["slot"])
        .returning(collection_runs.c.id)
    )
    return lock, params, insert


async def claim_slot_async(
    eng: AsyncEngine,
    slot: datetime,
    trigger: str,
    started_at: datetime,
    notebook_path: str | None = None,
) -> int | None:
    """Claim ``slot`` under an advisory lock with a unique row; None if already claimed."""
    lock, params, insert = _claim_stmts(slot, trigger, started_at, notebook_path)
    async with eng.begin() as conn:
        await conn.execute(lock, params)
        got = (await conn.execute(insert)).scalar_one_or_none()
    return int(got) if got is not None else None


def claim_slot(
    eng: sa.Engine,
    slot: datetime,
    trigger: str,
    started_at: datetime,
    notebook_path: str | None = None,
) -> int | None:
    """Sync twin of ``claim_slot_async``."""
    lock, params, insert = _claim_stmts(slot, trigger, started_at, notebook_path)
    try:
        with eng.begin() as conn:
            conn.execute(lock, params)
            got = conn.execute(insert).scalar_one_or_none()
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise connection_error(eng, exc) from None
    return int(got) if got is not None else None


def _finish_values(
    status: str,
    finished_at: datetime,
    statistics: dict[str, Any] | None,
    error: str | None,
    cache_pending: bool | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status, "finished_at": finished_at, "error": error}
    stats = dict(statistics or {})
    for key in ("posts_fetched", "posts_saved", "posts_cached", "duplicates_skipped", "errors"):
        if key in stats:
            values[key] = stats.pop(key)
    if "last_run" in stats:
        last_run = stats.pop("last_run")
        values["last_run"] = (
            datetime.fromisoformat(last_run) if isinstance(last_run, str) else last_run
        )
    if "duration_s" in stats:
        values["duration_s"] = stats.pop("duration_s")
    stats.pop("run_id", None)
    if stats:
        values["details"] = stats
    if cache_pending is not None:
        values["cache_pending"] = cache_pending
    return values


async def finish_run_async(
    eng: AsyncEngine,
    run_id: int,
    status: str,
    finished_at: datetime,
    statistics: dict[str, Any] | None = None,
    error: str | None = None,
    cache_pending: bool | None = None,
) -> None:
    """Close a run record (async)."""
    values = _finish_values(status, finished_at, statistics, error, cache_pending)
    async with eng.begin() as conn:
        await conn.execute(
            collection_runs.update().where(collection_runs.c.id == run_id).values(**values)
        )


def finish_run(
    eng: sa.Engine,
    run_id: int,
    status: str,
    finished_at: datetime,
    statistics: dict[str, Any] | None = None,
    error: str | None = None,
    notebook_path: str | None = None,
    only_if_running: bool = False,
) -> bool:
    """Close a run record (sync). With ``only_if_running``, leave a closed record alone."""
    values = _finish_values(status, finished_at, statistics, error, None)
    if notebook_path is not None:
        values["notebook_path"] = notebook_path
    stmt = collection_runs.update().where(collection_runs.c.id == run_id).values(**values)
    if only_if_running:
        stmt = stmt.where(collection_runs.c.status == "running")
    with eng.begin() as conn:
        return bool(conn.execute(stmt).rowcount)


def record_run(
    eng: sa.Engine,
    *,
    trigger: str,
    status: str,
    started_at: datetime,
    slot: datetime | None = None,
    error: str | None = None,
) -> int | None:
    """Insert a closed record (a skipped or failed fire); None if the slot is taken."""
    stmt = (
        pg_insert(collection_runs)
        .values(
            trigger=trigger,
            status=status,
            started_at=started_at,
            finished_at=started_at,
            slot=slot.astimezone(UTC) if slot else None,
            error=error,
            host=host_name(),
            pid=os.getpid(),
        )
        .on_conflict_do_nothing(index_elements=["slot"])
        .returning(collection_runs.c.id)
    )
    with eng.begin() as conn:
        got = conn.execute(stmt).scalar_one_or_none()
    return int(got) if got is not None else None


def _stale_stmt(older_than: datetime, now: datetime) -> Any:
    return (
        collection_runs.update()
        .where(collection_runs.c.status == "running", collection_runs.c.started_at < older_than)
        .values(
            status="failed",
            finished_at=now,
            error="run did not finish (process killed or timed out); closed as stale",
        )
    )


async def close_stale_runs_async(eng: AsyncEngine, older_than: datetime, now: datetime) -> int:
    """Mark ``running`` records started before ``older_than`` as failed."""
    async with eng.begin() as conn:
        return int((await conn.execute(_stale_stmt(older_than, now))).rowcount)


def close_stale_runs(eng: sa.Engine, older_than: datetime, now: datetime) -> int:
    """Sync twin of ``close_stale_runs_async``."""
    with eng.begin() as conn:
        return int(conn.execute(_stale_stmt(older_than, now)).rowcount)


def recent_runs(eng: sa.Engine, last: int = 20) -> list[dict[str, Any]]:
    """The newest ``last`` run records, newest first."""
    stmt = collection_runs.select().order_by(collection_runs.c.id.desc()).limit(last)
    with eng.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def beat(
    eng: sa.Engine,
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
    with eng.begin() as conn:
        conn.execute(stmt)


def remove_runner(eng: sa.Engine, runner_id: str) -> None:
    """Delete this runner's heartbeat row."""
    with eng.begin() as conn:
        conn.execute(runners.delete().where(runners.c.id == runner_id))


def live_runners(eng: sa.Engine, since: datetime) -> list[dict[str, Any]]:
    """Runners whose heartbeat is newer than ``since``."""
    stmt = runners.select().where(runners.c.last_beat >= since).order_by(runners.c.started_at)
    with eng.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def get_run(eng: sa.Engine, run_id: int) -> dict[str, Any] | None:
    """One run record as a dict, or None."""
    with eng.connect() as conn:
        row = (
            conn.execute(collection_runs.select().where(collection_runs.c.id == run_id))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def start_run(
    eng: sa.Engine, *, trigger: str, started: datetime, notebook_path: str | None = None
) -> int:
    """Insert a ``running`` record without a slot (a manual run) and return its id."""
    stmt = (
        collection_runs.insert()
        .values(
            trigger=trigger,
            status="running",
            started_at=started,
            notebook_path=notebook_path,
            host=host_name(),
            pid=os.getpid(),
        )
        .returning(collection_runs.c.id)
    )
    try:
        with eng.begin() as conn:
            return int(conn.execute(stmt).scalar_one())
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise connection_error(eng, exc) from None


def record_event(
    eng: sa.Engine, *, slot: datetime | None, status: str, error: str, at: datetime
) -> None:
    """Record a skipped or failed fire; a slot still ``running`` is closed with it."""
    values = {
        "trigger": "scheduled",
        "status": status,
        "started_at": at,
        "finished_at": at,
        "slot": slot,
        "error": error,
        "host": host_name(),
        "pid": os.getpid(),
    }
    stmt = pg_insert(collection_runs).values(**values)
    if slot is not None:
        stmt = stmt.on_conflict_do_update(
            index_elements=["slot"],
            set_={"status": status, "error": error, "finished_at": at},
            where=collection_runs.c.status == "running",
        )
    with eng.begin() as conn:
        conn.execute(stmt)
