"""The content job's event-loop lag and throughput against the simulator's web (#20).

Seeds a scratch database with ``--hours`` simulated hours (collected and tracked, no
web), then runs content passes over every due story's link on the simulator's web
(12 loopback sites, ``--delay`` seconds between requests to a site), twice:

* **pool**: extraction in the job's process pool, as ``hnlab run`` does;
* **inline**: extraction on the event loop itself, the baseline the pool replaces.

For each: pages fetched, pages a second, and the event loop's worst lag and its 99th
percentile (a ticker asks to wake every 10 ms and records how late it woke). The
goal is a worst lag of at most 50 ms with the pool.

    python scripts/bench_content.py [--hours 6] [--delay 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from typing import Any

from scratch_db import scratch_database

from hnlab.config import Settings
from hnlab.content.job import ContentJob
from hnlab.run.factory import open_parts
from hnlab.sim.demo import run_demo
from hnlab.sim.server import SimulatedHN
from hnlab.sim.web import SimulatedWeb

START = datetime(2026, 3, 1, tzinfo=UTC)


class Inline(Executor):
    """An executor that runs the task at once, on the caller's thread (the event loop)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(fn(*args, **kwargs))
        return done


class Ticker:
    """Every lateness of a 10 ms wake-up while the block runs."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        async def tick() -> None:
            while True:
                start = time.perf_counter()
                await asyncio.sleep(0.01)
                self.lags.append(time.perf_counter() - start - 0.01)

        task = asyncio.get_running_loop().create_task(tick())
        try:
            yield self
        finally:
            task.cancel()


async def one(settings: Settings, sim: SimulatedHN, pool: Any) -> dict[str, Any]:
    async with open_parts(settings) as parts:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_truncate(parts.database.url))
            web = stack.enter_context(SimulatedWeb(seed=1))
            job = ContentJob(
                settings, parts.engine, clock=sim.clock, pool=pool, rewrite=web.rewrite
            )
            ticker = Ticker()
            t0 = time.perf_counter()
            fetched = 0
            async with ticker.running():
                for _ in range(10):
                    stats = await job.run()
                    fetched += stats.fetched
                    if stats.due == 0:
                        break
            took = time.perf_counter() - t0
    lags = sorted(ticker.lags)
    return {
        "pages": fetched,
        "seconds": round(took, 2),
        "pages_per_s": round(fetched / took, 1),
        "worst_lag_ms": round(lags[-1] * 1000, 1),
        "p99_lag_ms": round(lags[int(len(lags) * 0.99)] * 1000, 1),
        "median_lag_ms": round(statistics.median(lags) * 1000, 2),
    }


@contextlib.contextmanager
def _truncate(url: str) -> Iterator[None]:
    """Each run starts with no content rows."""
    import sqlalchemy as sa

    from hnlab.store import db

    eng = db.make_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("TRUNCATE contents"))
    eng.dispose()
    yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    base = Settings.from_env()
    with scratch_database(base) as url, tempfile.TemporaryDirectory() as data:
        settings = base.with_values(
            database_url=url,
            data_dir=data,
            track_every=5,
            content_host_delay=args.delay,
            content_allow="127.0.0.1/32",
            read_timeout=2,
        )
        sim = SimulatedHN(seed=1, start=START)
        asyncio.run(run_demo(settings, hours=args.hours, start=START, sim=sim, progress=False))
        from hnlab.content.job import extraction_pool

        with extraction_pool() as pool:
            pooled = asyncio.run(one(settings, sim, pool))
        inline = asyncio.run(one(settings, sim, Inline()))
    print(f"{args.hours} simulated hours, {args.delay} s between requests to a site")
    print("| extraction | pages | seconds | pages/s | worst lag ms | p99 lag ms | median lag ms |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("process pool", pooled), ("inline (baseline)", inline)):
        print(
            f"| {name} | {r['pages']} | {r['seconds']} | {r['pages_per_s']} | "
            f"{r['worst_lag_ms']} | {r['p99_lag_ms']} | {r['median_lag_ms']} |"
        )
    ratio = inline["worst_lag_ms"] / pooled["worst_lag_ms"] if pooled["worst_lag_ms"] else 0
    print(f"worst lag: inline / pool = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
