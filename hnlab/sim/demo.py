"""``hnlab demo``: fill the database with simulated days, offline, in seconds.

The simulator runs in-process (its answers reach the real client through an
in-process transport, with no socket), and its clock is the collector's and the
tracker's. Every simulated minute (every ``HNLAB_TRACK_EVERY`` minutes; ``0``
turns it off) the tracker records a tick; every simulated hour the collector
runs once (trigger ``demo``), and every 10 simulated minutes the item stream
syncs (``HNLAB_ITEMS_EVERY=0`` turns it off), starting three hours before the
first, so the demo's threads include the stories already on the front page. The
result looks like days of ``hnlab run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hnlab.collect.items import SYNC_CHUNK
from hnlab.config import Settings
from hnlab.run.factory import Parts, open_parts
from hnlab.sim.server import SimulatedHN
from hnlab.sim.web import SimulatedWeb

ITEMS_EVERY = 10  # simulated minutes between item-stream passes
ITEMS_LEAD_HOURS = 3  # the stream starts this long before the demo


@dataclass
class DemoResult:
    """What a demo wrote."""

    runs: int
    posts_saved: int
    start: datetime
    end: datetime
    ticks: int = 0
    observations: int = 0
    items: int = 0
    content: dict[str, int] = field(default_factory=dict)
    web_score: dict[str, Any] | None = None
    loop_lag_ms: float = 0.0


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
    sim: SimulatedHN | None = None,
    web: bool | SimulatedWeb = False,
) -> DemoResult:
    """One collection per simulated hour and a tick every ``settings.track_every``
    simulated minutes (none when it is 0), from ``start`` to the last hour's collection.

    ``sim`` is the world to use (default: a new one, seed ``seed``, at ``start``).
    With ``web``, the content job then fetches the stories' links from the simulator's
    web (``hnlab.sim.web``) and the result carries its extraction scores.
    """
    from tqdm import tqdm

    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")
    start = (start or default_start(hours)).astimezone(UTC)
    sim = sim or SimulatedHN(seed=seed, start=start)
    every = settings.track_every
    minutes = (hours - 1) * 60
    hourly = set(range(0, minutes + 1, 60)) | set(range(0, minutes + 1, ITEMS_EVERY))
    steps = sorted(hourly.union(range(0, minutes + 1, every))) if every else sorted(hourly)
    result = DemoResult(runs=0, posts_saved=0, start=start, end=start)
    demo_settings = settings.with_values(hn_api_url="http://simulated-hn.invalid/v0")
    async with open_parts(
        demo_settings, trigger="demo", clock=sim.clock, transport=sim.transport()
    ) as parts:
        tracker = parts.tracker(clock=sim.clock) if every else None
        stream = parts.items(clock=sim.clock) if settings.items_every else None
        if stream is not None:
            stories = sim.truth()["stories"]
            early = start - timedelta(hours=ITEMS_LEAD_HOURS)
            first = min(s["hn_id"] for s in stories if s["arrived"] >= early.isoformat())
            await stream.repository.plan(first, sim.max_item(), "sync", SYNC_CHUNK, sim.now)
        at = start
        bar = tqdm(steps, desc="simulated minutes", unit="min", disable=not progress)
        for minute in bar:
            sim.advance(seconds=(start + timedelta(minutes=minute) - at).total_seconds())
            at = sim.now
            if tracker is not None and minute % every == 0:
                tick = await tracker.tick()
                result.ticks += tick.status == "succeeded"
                result.observations += tick.observations
            if stream is not None and minute % ITEMS_EVERY == 0:
                result.items += (await stream.sync()).stored
            if minute % 60 == 0:
                stats = await parts.collector.run_collection()
                result.runs += 1
                result.posts_saved += int(stats["posts_saved"])
        if isinstance(web, SimulatedWeb):
            await _fetch_web(settings, parts, sim, web, result)
        elif web:
            with SimulatedWeb(seed=seed) as site:
                await _fetch_web(settings, parts, sim, site, result)
    result.end = sim.now
    return result


async def _fetch_web(
    settings: Settings, parts: Parts, sim: SimulatedHN, site: SimulatedWeb, result: DemoResult
) -> None:
    """Content passes over the simulated web until nothing is due; then score them."""
    import asyncio

    from hnlab import analysis
    from hnlab.content.evaluate import score_web
    from hnlab.content.job import ContentJob

    web_settings = settings.with_values(
        content_allow=",".join((*settings.content_allow, "127.0.0.1/32")),
        read_timeout=min(settings.read_timeout, 2.0),
        content_host_delay=min(settings.content_host_delay, 0.2),
    )
    job = ContentJob(web_settings, parts.engine, clock=sim.clock, rewrite=site.rewrite)
    for _ in range(5):
        stats = await job.run()
        for outcome, n in stats.outcomes.items():
            result.content[outcome] = result.content.get(outcome, 0) + n
        result.loop_lag_ms = max(result.loop_lag_ms, stats.loop_lag_ms)
        if stats.due == 0:
            break
    contents = await asyncio.to_thread(analysis.load_contents, text=True, engine=parts.database.url)
    result.web_score = score_web(contents, site).as_dict()
