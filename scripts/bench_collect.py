"""Benchmark one collection of 500 stories against the simulator at a given latency.

Measures, in one process and one run, medians over several repetitions:
  (a) hnlab's whole collection: fetch + PostgreSQL + RocksDB (run_collection)
  (b) the latency limit, (ceil(500 / concurrency) + 1) * latency
  (c) haxor's approach: an aiohttp gather of the same list and items, one task per item,
      through aiohttp's default connection pool (100); the same gather with no
      connection limit at all is printed for reference
  (d) a sequential httpx client, on a smaller count, scaled to 501 requests
The simulator runs in its own process so it does not share the GIL with the client.

    python scripts/bench_collect.py [--latency-ms 100] [--concurrency 100] [--repeat 5]

PostgreSQL: a scratch database, dropped at the end, on HNLAB_DATABASE_URL's server if set,
else on an embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import sqlalchemy as sa
from scratch_db import scratch_database

from hnlab.config import Settings
from hnlab.run.factory import collector_from_settings
from hnlab.store import db
from hnlab.store.cache import RocksDBStore

SERVE = """
import sys, time
from datetime import datetime, UTC
from hnlab.sim.server import Faults, SimulatedHN
sim = SimulatedHN(seed=7, start=datetime(2026, 3, 1, 12, tzinfo=UTC),
                  faults=Faults(latency_ms=float(sys.argv[1])))
print(sim.start(), flush=True)
sys.stdin.readline()
"""


def start_simulator(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(latency_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def hnlab_collection(settings: Settings) -> tuple[float, dict[str, Any]]:
    async with collector_from_settings(settings, trigger="manual") as job:
        t0 = time.perf_counter()
        stats = await job.run_collection()
        took = time.perf_counter() - t0
    assert stats["items_requested"] == 500 and stats["errors"] == 0, stats
    return took, stats


async def bare_aiohttp(base: str, limit: int) -> float:
    """The least client work this stand-in allows: one pooled session, bodies read, not parsed."""
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as s:
        async with s.get(f"{base}/topstories.json") as r:
            ids = json.loads(await r.read())

        async def one(i: int) -> bytes:
            async with s.get(f"{base}/item/{i}.json") as r:
                return await r.read()

        await asyncio.gather(*(one(i) for i in ids[:500]))
    return time.perf_counter() - t0


async def haxor_gather(base: str) -> float:
    """haxor's ``top_stories(limit=500)``: the list, then one aiohttp session gathering every item.

    As in avinassh/haxor ``HackerNews._async_loop``: ``ClientSession(connector=
    TCPConnector(ssl=False))`` and ``asyncio.gather`` over one task per item. The gather is
    unbounded; the connector keeps aiohttp's default pool of 100 connections. haxor reads
    the list with a blocking ``requests`` call; here it is one aiohttp GET (the same round trip).
    """
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as s, s.get(f"{base}/topstories.json") as r:
        ids = await r.json()

    async def one(session: aiohttp.ClientSession, url: str) -> object:
        async with session.get(url) as r:
            return await r.json(content_type=None) if r.status == 200 else None

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        tasks = [asyncio.ensure_future(one(session, f"{base}/item/{i}.json")) for i in ids[:500]]
        items = await asyncio.gather(*tasks)
    assert len(items) == 500
    return time.perf_counter() - t0


async def unbounded_gather(base: str) -> float:
    """The same gather with no connection limit (``TCPConnector(limit=0)``), for reference."""
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async with s.get(f"{base}/topstories.json") as r:
            ids = await r.json()

        async def one(i: int) -> object:
            async with s.get(f"{base}/item/{i}.json") as r:
                return await r.json(content_type=None)

        items = await asyncio.gather(*(one(i) for i in ids[:500]))
    assert len(items) == 500
    return time.perf_counter() - t0


def sequential(base: str, count: int) -> float:
    t0 = time.perf_counter()
    with httpx.Client() as client:
        ids = client.get(f"{base}/topstories.json").json()
        for i in ids[:count]:
            client.get(f"{base}/item/{i}.json").json()
    return (time.perf_counter() - t0) * 501 / (count + 1)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def simulator_throughput(base: str, n: int = 3000) -> float:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:

        async def one(i: int) -> None:
            async with s.get(f"{base}/item/{43200000 + i % 500}.json") as r:
                await r.read()

        await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t0)


def measure(
    settings: Settings, base: str, args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time (a), (c) and the references, interleaved, ``args.repeat`` times."""
    # Every run starts from empty PostgreSQL tables (500 new posts: the heaviest write)
    # and an existing RocksDB store, as every hourly run but the very first one does.
    RocksDBStore(settings.rocksdb).open().close()
    eng = db.prepare(settings).engine()
    times: dict[str, list[float]] = {"a": [], "c": [], "unbounded": [], "bare": []}
    phases: dict[str, list[float]] = {"fetch_s": [], "write_s": [], "cache_s": []}
    try:
        for _ in range(args.repeat):
            with eng.begin() as conn:
                conn.execute(sa.text("TRUNCATE posts, post_snapshots, collection_runs"))
            took, stats = asyncio.run(hnlab_collection(settings))
            times["a"].append(took)
            for key, values in phases.items():
                values.append(stats[key])
            times["c"].append(asyncio.run(haxor_gather(base)))
            times["unbounded"].append(asyncio.run(unbounded_gather(base)))
            times["bare"].append(asyncio.run(bare_aiohttp(base, args.concurrency)))
    finally:
        eng.dispose()
    return times, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sequential-count", type=int, default=50)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    workdir = Path(tempfile.mkdtemp(prefix="hnlab-bench-"))
    workdir.chmod(0o755)
    sim_proc, base = start_simulator(args.latency_ms)
    fast_proc, fast_base = start_simulator(0)
    try:
        settings = Settings.from_env(
            overrides={
                "data_dir": workdir,
                "hn_api_url": base,
                "posts_limit": 500,
                "concurrency": args.concurrency,
                "score_threshold": 0,
                "rocksdb_path": workdir / "cache.rocksdb",
            }
        )
        with scratch_database(settings) as url:
            times, phases = measure(settings.with_values(database_url=url), base, args)
        d = sequential(base, args.sequential_count)
        cpu_before = cpu_seconds(fast_proc.pid)
        rps = asyncio.run(simulator_throughput(fast_base))
        cpu_after = cpu_seconds(fast_proc.pid)
        server_rps = (
            3000 / (cpu_after - cpu_before)
            if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before
            else None
        )
    finally:
        for proc in (sim_proc, fast_proc):
            proc.communicate("\n", timeout=30)

    a, c, u, f = (statistics.median(times[key]) for key in ("a", "c", "unbounded", "bare"))
    split = {key: statistics.median(values) for key, values in phases.items()}
    b = (math.ceil(500 / args.concurrency) + 1) * latency
    rows = [
        ("(a) hnlab collection, 500 stories (fetch+PostgreSQL+RocksDB)", a),
        ("      its fetch phase (list, items, parsing)", split["fetch_s"]),
        ("      its PostgreSQL write (one transaction)", split["write_s"]),
        ("      its RocksDB write and run bookkeeping", split["cache_s"]),
        (f"(b) latency limit at {args.concurrency} in flight", b),
        ("(c) haxor: aiohttp gather, default pool of 100 connections", c),
        ("    for reference: the same gather with no connection limit", u),
        (f"    for reference: bare aiohttp, {args.concurrency} connections, bodies unparsed", f),
        (f"(d) sequential httpx (measured on {args.sequential_count}, scaled to 501)", d),
    ]
    print(
        f"latency {args.latency_ms:g} ms, concurrency {args.concurrency}, "
        f"medians of {args.repeat} on {datetime.now(UTC):%Y-%m-%d %H:%MZ}"
    )
    for label, seconds in rows:
        print(f"  {label:<66} {seconds:8.3f} s")
    print(f"  simulator throughput (no latency, one aiohttp client): {rps:,.0f} requests/s")
    if server_rps is not None:
        print(f"  simulator's own capacity (requests per CPU-second): {server_rps:,.0f}")
    print(
        json.dumps(
            {
                "a_hnlab_s": round(a, 3),
                "b_latency_limit_s": round(b, 3),
                "c_haxor_gather_s": round(c, 3),
                "unbounded_gather_s": round(u, 3),
                "bare_aiohttp_s": round(f, 3),
                "a_phases_s": {key: round(value, 3) for key, value in split.items()},
                "d_sequential_s": round(d, 3),
                "a_over_b": round(a / b, 3),
                "a_over_c": round(a / c, 3),
                "a_runs_s": [round(x, 3) for x in times["a"]],
                "simulator_rps": round(rps),
                "simulator_rps_per_cpu_s": round(server_rps) if server_rps else None,
                "latency_ms": args.latency_ms,
                "concurrency": args.concurrency,
                "database": "HNLAB_DATABASE_URL"
                if os.environ.get("HNLAB_DATABASE_URL")
                else "embedded",
            }
        )
    )


if __name__ == "__main__":
    main()
