"""The composition root: the one place that builds hnlab's parts from ``Settings``.

Everything that collects, the CLI, the runner service, notebooks (through
``collector_from_settings``), the demo and the seed's ``SchedulerFactory``,
gets its client, store, repositories, collector, tracker and slot runner here,
so a setting reaches every route the same way.

The order is always: ``db.prepare(settings)`` (an explicit step: start the
embedded server if it is the one, migrate), then one async engine for the
current event loop, then the parts on top of it. ``open_parts`` disposes the
engine it opened when its block ends; ``SchedulerFactory`` hands an engine it
made from a URL to the scheduler, which disposes it on ``stop()``; an engine a
caller passed in is never disposed here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hnlab.clock import Clock, utc_now
from hnlab.collect.collector import HourlyPostsCollectorJob
from hnlab.collect.items import ItemStream
from hnlab.collect.tracker import MinuteTracker
from hnlab.config import Settings
from hnlab.hn.client import HNClient
from hnlab.run.runner import Mode, SlotRunner
from hnlab.run.scheduler import JobScheduler
from hnlab.store import db
from hnlab.store.cache import RocksDBStore
from hnlab.store.items import ItemRepository
from hnlab.store.minutes import MinuteRepository
from hnlab.store.posts import PostRepository


def build_client(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> HNClient:
    """The HN API client with every request setting: concurrency, timeouts, retries, deadline.

    ``transport`` replaces the network (the demo's in-process simulator)."""
    return HNClient(
        settings.hn_api_url,
        concurrency=settings.concurrency,
        timeout=settings.read_timeout,
        connect_timeout=settings.connect_timeout,
        retry_attempts=settings.retry_attempts,
        deadline=settings.run_deadline,
        transport=transport,
    )


def build_collector(
    settings: Settings,
    engine: AsyncEngine,
    *,
    trigger: str = "manual",
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HourlyPostsCollectorJob:
    """A collector on ``engine`` (which the caller owns) with the settings' client and cache."""
    return HourlyPostsCollectorJob(
        PostRepository(engine),
        RocksDBStore(settings.rocksdb),
        build_client(settings, transport=transport),
        settings.score_threshold,
        settings.posts_limit,
        story_list=settings.story_list,
        clock=clock,
        trigger=trigger,
        stale_after=timedelta(seconds=settings.run_timeout),
    )


def build_tracker(
    settings: Settings,
    engine: AsyncEngine,
    *,
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
) -> MinuteTracker:
    """The minute tracker on ``engine``, with the settings' lists, depths and interval."""
    return MinuteTracker(
        MinuteRepository(engine, settle_after=timedelta(hours=settings.items_settle_hours)),
        build_client(settings, transport=transport),
        lists=settings.track_lists,
        depth=settings.track_depth,
        every=settings.track_every or 1,
        clock=clock,
    )


def build_items(
    settings: Settings,
    engine: AsyncEngine,
    *,
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
    rate: bool = False,
) -> ItemStream:
    """The item stream on ``engine``; ``rate`` caps it at HNLAB_ITEMS_RATE requests a
    second (the backfill's cap; a sync pass is a minute's ids, a few dozen)."""
    client = build_client(settings, transport=transport)
    client.rate = settings.items_rate if rate else None
    repository = ItemRepository(
        engine,
        settle_after=timedelta(hours=settings.items_settle_hours),
        null_retries=settings.items_null_retries,
    )
    return ItemStream(repository, client, clock=clock, workers=8)


@dataclass(frozen=True)
class Parts:
    """What one process needs to collect: the prepared database, its engine, the collector."""

    settings: Settings
    database: db.Database
    engine: AsyncEngine
    collector: HourlyPostsCollectorJob
    transport: httpx.AsyncBaseTransport | None = None

    def tracker(self, *, clock: Clock = utc_now) -> MinuteTracker:
        """The minute tracker on this engine."""
        return build_tracker(self.settings, self.engine, clock=clock, transport=self.transport)

    def items(self, *, clock: Clock = utc_now, rate: bool = False) -> ItemStream:
        """The item stream on this engine."""
        return build_items(
            self.settings, self.engine, clock=clock, transport=self.transport, rate=rate
        )

    def slot_runner(
        self, mode: Mode = "direct", *, notebook: Path | None = None, clock: Clock = utc_now
    ) -> SlotRunner:
        """A slot runner on this engine, in ``mode``."""
        return SlotRunner(
            self.engine,
            mode=mode,
            collector=self.collector,
            settings=self.settings,
            notebook=notebook,
            clock=clock,
        )


@contextlib.asynccontextmanager
async def open_parts(
    settings: Settings,
    *,
    trigger: str = "manual",
    clock: Clock = utc_now,
    database: db.Database | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Parts]:
    """Prepare the database (unless ``database`` is already prepared), open one async engine
    for this event loop, and build the parts on it; the engine is disposed on exit.

    Building the parts touches no network, so a command that only reads records uses
    ``parts.engine`` and ignores the rest.
    """
    if database is None:
        database = await asyncio.to_thread(db.prepare, settings)
    engine = database.async_engine()
    try:
        collector = build_collector(
            settings, engine, trigger=trigger, clock=clock, transport=transport
        )
        yield Parts(settings, database, engine, collector, transport)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def collector_from_settings(
    settings: Settings, *, trigger: str = "manual", clock: Clock = utc_now
) -> AsyncIterator[HourlyPostsCollectorJob]:
    """A collector wired from ``settings``; its database engine is disposed on exit."""
    async with open_parts(settings, trigger=trigger, clock=clock) as parts:
        yield parts.collector


async def collect_once(
    settings: Settings,
    *,
    trigger: str = "manual",
    run_id: int | None = None,
    slot: datetime | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Build everything from ``settings``, run one collection, close everything."""
    async with collector_from_settings(settings, trigger=trigger, clock=clock) as job:
        return await job.run_collection(run_id=run_id, slot=slot)


class SchedulerFactory:
    """The seed's factory: wires the repository, store, client, collector and scheduler."""

    @staticmethod
    def create_scheduler(
        db_session: async_sessionmaker[Any] | AsyncEngine | str,
        rocksdb_path: str,
        score_threshold: int = 50,
        posts_limit: int = 100,
        *,
        settings: Settings | None = None,
        hn_api_url: str | None = None,
        mode: Mode = "direct",
        clock: Clock | None = None,
    ) -> JobScheduler:
        """A JobScheduler whose ``.hourly_collector`` is ready to run every hour.

        ``db_session`` is an ``async_sessionmaker``, an ``AsyncEngine`` or a URL; the
        scheduler records on it and never disposes an engine it was handed. The engine
        it makes from a URL is its own, disposed by ``stop()``. Everything
        the seed's arguments do not say (HN API URL, timeouts, retries, deadline, cron,
        misfire grace, story list) comes from ``settings`` (default: ``Settings()``);
        ``hn_api_url`` overrides the settings' URL. ``mode="notebook"`` runs each hour
        through ``collect.ipynb`` with papermill instead of in-process.
        """
        base = settings or Settings()
        settings = base.with_values(
            rocksdb_path=rocksdb_path,
            score_threshold=score_threshold,
            posts_limit=posts_limit,
            hn_api_url=hn_api_url or base.hn_api_url,
        )
        owns_engine = isinstance(db_session, str)
        if isinstance(db_session, str):
            engine = db.make_async_engine(db_session)
        elif isinstance(db_session, AsyncEngine):
            engine = db_session
        else:
            engine = PostRepository(db_session).engine
        clock = clock or utc_now
        collector = build_collector(settings, engine, trigger="scheduled", clock=clock)
        runner = SlotRunner(engine, mode=mode, collector=collector, settings=settings, clock=clock)
        scheduler = JobScheduler(
            engine=engine,
            cron=settings.cron,
            misfire_grace_minutes=settings.misfire_grace_minutes,
            drain_timeout=settings.drain_timeout,
            clock=clock,
            owns_engine=owns_engine,
        )
        scheduler.register_hourly_collector(collector, body=runner.run)
        return scheduler
