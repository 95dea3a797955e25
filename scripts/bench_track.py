"""One minute tracker tick against a haxor-style fetch of the same requests (#12).

Starts the simulator with 100 ms per request in its own process and a scratch
database, then, interleaved, ``--repeat`` times each:

* **(a) hnlab tick**: ``MinuteTracker.tick`` with the default lists and depths
  (top 90, new 30, best 30, ask 30, show 30): the five lists at once, then every
  story on them once, then one PostgreSQL transaction (minute row, stories,
  spans, tick record). Each repeat records a different minute;
* **(c) haxor-style**: one aiohttp session (its default pool of 100 connections)
  gathering the same five lists, then the same items; nothing parsed or stored;
* **(b)** the latency limit: two rounds of 100 ms (lists, then items; at most 100
  in flight, and a tick asks for at most 210 items, so items take up to three).

Also the benchmark process's CPU seconds per tick (parsing, SQL building; the
database server's own CPU is not in it) and that figure over a day of ticks.

    python scripts/bench_track.py --repeat 9

Measured 2026-11-29 on the 2-core machine (medians of 9, 100 ms latency): a tick
0.369 s (182 requests for 210 observations), haxor-style 0.345 s, a/c 1.07
(1.114 before the tick claimed its minute while the lists loaded); 0.054 CPU
seconds per tick, 78 s per day of ticks; 3.03 requests a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from bench_collect import start_simulator
from scratch_db import scratch_database

from hnlab.config import DEFAULT_TRACK_DEPTH, Settings
from hnlab.run.factory import open_parts

LISTS = tuple(DEFAULT_TRACK_DEPTH)
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def haxor_style(base: str) -> tuple[float, int]:
    """The same requests as a tick, as haxor would send them: lists, then a gather of items."""
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:

        async def get(url: str) -> object:
            async with session.get(url) as r:
                return await r.json(content_type=None) if r.status == 200 else None

        lists = await asyncio.gather(*(get(f"{base}/{name}stories.json") for name in LISTS))
        wanted = list(
            dict.fromkeys(
                i
                for name, ids in zip(LISTS, lists, strict=True)
                for i in ids[: DEFAULT_TRACK_DEPTH[name]]  # type: ignore[index]
            )
        )
        await asyncio.gather(*(get(f"{base}/item/{i}.json") for i in wanted))
    return time.perf_counter() - t0, len(LISTS) + len(wanted)


async def measure(settings: Settings, base: str, repeat: int) -> dict[str, object]:
    ticks: list[float] = []
    cpu: list[float] = []
    haxor: list[float] = []
    requests = observations = 0
    async with open_parts(settings) as parts:
        tracker = parts.tracker()
        await tracker.tick(START - timedelta(minutes=1))  # warm: partitions, pool, SSL context
        for n in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            result = await tracker.tick(START + timedelta(minutes=n))
            ticks.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert result.status == "succeeded" and result.errors == 0, result
            requests, observations = result.requests, result.observations
            took, haxor_requests = await haxor_style(base)
            haxor.append(took)
    a, c = statistics.median(ticks), statistics.median(haxor)
    rounds = 1 + math.ceil((requests - len(LISTS)) / settings.concurrency)
    cpu_tick = statistics.median(cpu)
    return {
        "a_tick_s": round(a, 3),
        "a_runs_s": [round(t, 3) for t in ticks],
        "b_latency_limit_s": round(rounds * 0.1, 3),
        "c_haxor_style_s": round(c, 3),
        "a_over_c": round(a / c, 3),
        "requests_per_tick": requests,
        "haxor_requests": haxor_requests,
        "observations_per_tick": observations,
        "cpu_s_per_tick": round(cpu_tick, 4),
        "cpu_s_per_day_of_ticks": round(cpu_tick * 1440, 1),
        "requests_per_second_at_one_tick_a_minute": round(requests / 60, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    proc, base = start_simulator(args.latency_ms)
    try:
        base_settings = Settings.from_env()
        with scratch_database(base_settings, "hnlab_bench_track") as url:
            settings = base_settings.with_values(
                database_url=url, hn_api_url=base, concurrency=100, track_every=1
            )
            result = asyncio.run(measure(settings, base, args.repeat))
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    result["latency_ms"] = args.latency_ms
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
