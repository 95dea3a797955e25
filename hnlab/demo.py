"""``hnlab demo``: fill the database with simulated hours, offline, in seconds.

The simulator runs in-process; each simulated hour moves its clock and the
collector's together and runs one collection (trigger ``demo``), so the data
looks like weeks of hourly runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hnlab.config import Settings
from hnlab.factory import collector_from_settings
from hnlab.simulator import SimulatedHN

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What a demo wrote."""

    runs: int
    posts_saved: int
    start: datetime
    end: datetime


def default_start(hours: int, now: datetime | None = None) -> datetime:
    """The first simulated hour, so that the last one is the current UTC hour."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)


async def run_demo(
    settings: Settings,
    *,
    hours: int = 48,
    seed: int = 1,
    start: datetime | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run one collection per simulated hour against an in-process simulator."""
    from tqdm import tqdm

    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")
    start = (start or default_start(hours)).astimezone(UTC)
    sim = SimulatedHN(seed=seed, start=start)
    sim.start()
    saved = 0
    try:
        demo_settings = settings.with_values(hn_api_url=sim.base_url)
        async with collector_from_settings(demo_settings, trigger="demo", clock=sim.clock) as job:
            for hour in tqdm(range(hours), desc="simulated hours", unit="h", disable=not progress):
                if hour:
                    sim.advance(hours=1)
                stats = await job.run_collection()
                saved += int(stats["posts_saved"])
    finally:
        sim.stop()
    return DemoResult(runs=hours, posts_saved=saved, start=start, end=sim.now)
