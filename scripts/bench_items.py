"""The item stream's backfill against the latency limit, its CPU, storage and queries (#19).

Starts the simulator with ``--latency-ms`` per request in its own process (the
client's CPU is then this process's alone), moves its clock a day and an hour
ahead, and backfills the simulated day into a scratch database with
``HNLAB_CONCURRENCY`` in flight and the rate cap lifted:

* **throughput**: items a second, against the latency limit ``concurrency /
  latency`` (100 in flight at 100 ms: 1,000 items a second);
* **CPU per item**: this process's CPU seconds (parsing, JSON, SQL building; the
  database server's own CPU is not in it) over the items;
* **storage**: bytes per comment in PostgreSQL (``items`` with its indexes), and the
  database's size after the day;
* **queries**: ``load_comments`` for the day's busiest story (median of 9) and
  ``load_comments`` + ``discussion_stats`` for the day's front page: the 30 stories
  with the most points.

    python scripts/bench_items.py [--latency-ms 100] [--concurrency 100]

Measured on the 2-core machine: see README ("Items: the figures").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import psutil
import sqlalchemy as sa
from scratch_db import scratch_database

from hnlab import analysis
from hnlab.config import Settings
from hnlab.run.factory import open_parts
from hnlab.store import db

START = datetime(2026, 3, 1, tzinfo=UTC)
SERVE = f"""
import sys
from datetime import datetime, UTC
from hnlab.sim.server import Faults, SimulatedHN
sim = SimulatedHN(seed=7, start=datetime.fromisoformat("{START.isoformat()}"),
                  faults=Faults(latency_ms=float(sys.argv[1])))
print(sim.start(), flush=True)
sys.stdin.readline()
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def backfill(settings: Settings) -> tuple[dict[str, float], float, float]:
    async with open_parts(settings) as parts:
        stream = parts.items(rate=True)
        c0, t0 = cpu(), time.perf_counter()
        stats = await stream.backfill(START.date(), (START + timedelta(days=1)).date())
        return stats.as_dict(), time.perf_counter() - t0, cpu() - c0


async def bare_aiohttp(base: str, lo: int, hi: int, limit: int) -> float:
    """The least client work this stand-in allows over the same ids: one pooled aiohttp
    session, ``limit`` in flight, bodies read, nothing parsed or stored; seconds."""
    gate = asyncio.Semaphore(limit)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:

        async def one(i: int) -> bytes:
            async with gate, session.get(f"{base}/item/{i}.json") as response:
                return await response.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(lo, hi + 1)))
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    sim = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(args.latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None and sim.stdin is not None
    base = sim.stdout.readline().strip()
    try:
        httpx.post(f"{base}/_sim/advance", params={"hours": 25}, timeout=300).raise_for_status()
        httpx.get(f"{base}/maxitem.json", timeout=300)  # the world steps to its clock, untimed
        with scratch_database(Settings.from_env()) as url:
            settings = Settings.from_env(
                overrides={
                    "database_url": url,
                    "hn_api_url": base,
                    "concurrency": args.concurrency,
                    "items_rate": 1e9,  # the cap lifted
                    "run_deadline": 3600,
                }
            )
            db.prepare(settings)
            sim_cpu = psutil.Process(sim.pid).cpu_times()
            stats, wall, used = asyncio.run(backfill(settings))
            after = psutil.Process(sim.pid).cpu_times()
            engine = db.make_engine(url)
            report = measure(engine, stats, wall, used, args)
            lo, hi = (
                engine.connect().execute(sa.text("SELECT min(lo), max(hi) FROM item_chunks")).one()
            )
            engine.dispose()
            bare = asyncio.run(bare_aiohttp(base, lo, hi, args.concurrency))
            report["simulator cpu s during the backfill"] = round(
                after.user + after.system - sim_cpu.user - sim_cpu.system, 2
            )
            report["bare aiohttp, same ids, items per second"] = round((hi - lo + 1) / bare, 1)
            report["hnlab after the search / bare aiohttp"] = round(
                report["items per second after the search"] / ((hi - lo + 1) / bare), 3
            )
    finally:
        sim.stdin.write("\n")
        sim.stdin.flush()
        sim.wait(30)
    print(json.dumps(report, indent=2))


def measure(
    engine: sa.Engine, stats: dict[str, float], wall: float, used: float, args: argparse.Namespace
) -> dict[str, Any]:
    with engine.connect() as conn:
        comments = conn.execute(
            sa.text("SELECT count(*) FROM items WHERE type = 'comment'")
        ).scalar()
        items_bytes = conn.execute(sa.text("SELECT pg_total_relation_size('items')")).scalar()
        database_bytes = conn.execute(
            sa.text("SELECT pg_database_size(current_database())")
        ).scalar()
        busiest, size = conn.execute(
            sa.text(
                "SELECT story_id, count(*) FROM items WHERE type = 'comment' "
                "AND story_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            )
        ).one()
        front = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT id FROM items WHERE type = 'story' AND score IS NOT NULL "
                    "ORDER BY score DESC LIMIT 30"
                )
            )
        ]
    analysis.load_comments([busiest], engine)  # warm the cache and the connection
    one = []
    for _ in range(9):
        t0 = time.perf_counter()
        analysis.load_comments([busiest], engine)
        one.append(time.perf_counter() - t0)
    day = []
    for _ in range(5):
        t0 = time.perf_counter()
        frame = analysis.load_comments(front, engine)
        analysis.discussion_stats(frame)
        day.append(time.perf_counter() - t0)
    limit = args.concurrency / (args.latency_ms / 1000)
    stored = float(stats["stored"])
    return {
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "items stored": int(stored),
        "comments": comments,
        "backfill wall s": round(wall, 2),
        "items per second": round(stored / wall, 1),
        "latency limit per second": round(limit, 1),
        "ratio to the latency limit": round(stored / wall / limit, 3),
        "of which the search for the day's bounds, s": stats["search_s"],
        "items per second after the search": round(stored / (wall - stats["search_s"]), 1),
        "cpu s": round(used, 2),
        "cpu ms per item": round(1000 * used / stored, 3),
        "items per cpu second": round(stored / used, 1),
        "bytes per comment (items + indexes)": round(items_bytes / max(comments, 1), 1),
        "database MB after the day": round(database_bytes / 2**20, 1),
        "busiest story's comments": size,
        "load_comments, busiest story, median ms": round(1000 * statistics.median(one), 2),
        "front page stories": len(front),
        "front page comments": len(frame),
        "load_comments + discussion_stats, front page, median ms": round(
            1000 * statistics.median(day), 1
        ),
        "requests": stats["requests"],
        "gaps": stats["gaps"],
    }


if __name__ == "__main__":
    main()
