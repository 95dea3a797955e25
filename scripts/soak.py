"""Soak: 200 simulated hours with random faults, then check that nothing was lost or doubled.

Each hour claims its slot and runs one collection against the in-process simulator,
with a fault drawn at random: HTTP noise (503s, 429s with Retry-After, null and
truncated items, slow items past the read timeout), topstories down (the run fails),
RocksDB held by another process (posts saved, cache filled later), or a PostgreSQL
restart before the run. The last hour is fault-free so the cache can catch up.
At the end it asserts: one succeeded-or-failed record per hour, no duplicate posts or
snapshots, and PostgreSQL and RocksDB holding the same posts.

    python scripts/soak.py [--hours 200] [--seed 7]

PostgreSQL: an embedded server in a temporary directory (restarted as a fault).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.errors import CollectionError
from hnlab.run.factory import collector_from_settings
from hnlab.sim.server import Faults, Scripted, SimulatedHN
from hnlab.store import db, records
from hnlab.store.cache import RocksDBStore
from hnlab.store.embedded import EmbeddedPostgres

HOLD = (
    "import sys\nfrom hnlab.store.cache import RocksDBStore\nwith RocksDBStore(sys.argv[1]):\n"
    "    print('ready', flush=True)\n    sys.stdin.readline()\n"
)
FAULTS = ("none", "http_noise", "topstories_down", "cache_locked", "pg_restart")
WEIGHTS = (0.45, 0.25, 0.1, 0.1, 0.1)


def noise() -> Faults:
    return Faults(
        error_rate=0.15,
        rate_limit_rate=0.03,
        retry_after_s=0.5,
        null_rate=0.03,
        truncated_rate=0.03,
        slow_rate=0.02,
        slow_ms=1500,
    )


async def soak(hours: int, seed: int, root: Path) -> dict[str, object]:
    rng = random.Random(seed)
    server = EmbeddedPostgres(root / "postgres")
    server.attach()
    url = server.url()
    eng = db.make_engine(url)
    db.upgrade(eng)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sim = SimulatedHN(seed=seed, start=start)
    sim.start()
    settings = Settings.from_env(
        environ={},
        overrides={
            "data_dir": root,
            "database_url": url,
            "hn_api_url": sim.base_url,
            "posts_limit": 100,
            "retry_attempts": 3,
            "read_timeout": 1,
            "run_deadline": 20,
        },
    )
    drawn: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    errors = 0
    t0 = time.perf_counter()
    try:
        async with collector_from_settings(settings, trigger="scheduled", clock=sim.clock) as job:
            job.record_retry_s = 15
            for hour in range(hours):
                if hour:
                    sim.advance(hours=1)
                fault = "none" if hour == hours - 1 else rng.choices(FAULTS, WEIGHTS)[0]
                drawn[fault] += 1
                sim.faults = noise() if fault == "http_noise" else Faults()
                if fault == "topstories_down":
                    sim.script("topstories.json", *[Scripted(status=503)] * 3)
                if fault == "pg_restart":
                    await asyncio.to_thread(server.restart, immediate=rng.random() < 0.5)
                holder = None
                if fault == "cache_locked":
                    holder = subprocess.Popen(  # noqa: ASYNC220 - a real second process
                        [sys.executable, "-c", HOLD, str(settings.rocksdb)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
                slot = sim.now
                run_id = await records.open_run(
                    job.post_repository.engine, trigger="scheduled", started=slot, slot=slot
                )
                assert run_id is not None, f"slot {slot} claimed twice"
                try:
                    stats = await job.run_collection(run_id=run_id, slot=slot)
                    outcomes["succeeded"] += 1
                    errors += int(stats["errors"])
                except CollectionError:
                    outcomes["failed"] += 1
                finally:
                    if holder is not None:
                        holder.communicate("\n")
        elapsed = time.perf_counter() - t0
        with eng.connect() as conn:

            def one(sql: str) -> object:
                return conn.execute(sa.text(sql)).scalar_one()

            per_hour = conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT slot), "
                    "count(*) FILTER (WHERE status IN ('succeeded', 'failed')) "
                    "FROM collection_runs"
                )
            ).one()
            dup_posts = one("SELECT count(*) - count(DISTINCT hn_id) FROM posts")
            dup_snaps = one(
                "SELECT count(*) - count(DISTINCT (run_id, list, hn_id)) FROM post_snapshots"
            )
            stored = {r[0] for r in conn.execute(sa.text("SELECT hn_id FROM posts"))}
            snapshots = one("SELECT count(*) FROM post_snapshots")
            pending = one("SELECT count(*) FROM collection_runs WHERE cache_pending")
        with RocksDBStore(settings.rocksdb, mode="read_only") as store:
            cached = {m["hn_id"] for m in store.iter_metadata()}
        assert tuple(per_hour) == (hours, hours, hours), f"records per hour: {per_hour}"
        assert dup_posts == 0 and dup_snaps == 0, (dup_posts, dup_snaps)
        assert cached == stored, f"{len(stored - cached)} missing, {len(cached - stored)} extra"
        assert pending == 0
        return {
            "hours": hours,
            "elapsed_s": round(elapsed, 1),
            "faults": dict(drawn),
            "runs": dict(outcomes),
            "item_errors": errors,
            "posts": len(stored),
            "snapshots": snapshots,
            "cache_keys": len(cached),
            "http_requests": sim.stats.total,
        }
    finally:
        sim.stop()
        eng.dispose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hnlab-soak-"))
    root.chmod(0o755)
    try:
        result = asyncio.run(soak(args.hours, args.seed, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"soak passed: {json.dumps(result)}")


if __name__ == "__main__":
    main()
