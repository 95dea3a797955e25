"""ItemStream: every item HN creates, once, in id order; settling; a shared backfill.

HN gives out ids in creation order and ``maxitem`` names the newest, so following
the ids gives every story, comment, poll and job exactly once, one request each.

A sync pass (``hnlab items sync``, and the ``item_stream`` job every
``HNLAB_ITEMS_EVERY`` minutes):

1. asks ``maxitem`` and plans the ids above the last planned one as ranges in
   PostgreSQL (a new database starts at ``maxitem``: older ids are the backfill's);
2. claims open ranges, oldest first, a few at a time, each in its own transaction
   held while its ids are fetched and written (``ItemRepository.claim``): several
   runners share the work, and a killed one's range is claimed again;
3. tries again the ids answered ``null`` or garbage before (after
   ``HNLAB_ITEMS_NULL_RETRIES`` tries an id is recorded as missing);
4. re-fetches the items whose edit window closed (``HNLAB_ITEMS_SETTLE_HOURS``
   after creation): changes become revisions, deletions are erased.

A backfill (``hnlab items backfill --since``) finds the dates' id bounds by a
k-ary search over item times, plans them as ranges, and walks them newest first with
the same claims, so the command on several hosts shares one backfill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hnlab.clock import Clock, utc_now
from hnlab.errors import DatabaseError, FetchError
from hnlab.hn.client import HNClient, ItemResult
from hnlab.hn.items import Skip, item_row
from hnlab.jobs import Body, Job, Runtime, register
from hnlab.store.items import Claim, ItemRepository, Stored

log = logging.getLogger(__name__)

SYNC_CHUNK = 500
"""Ids per sync range: a minute of HN's ids is about 20-30, so a pass is one range."""
BACKFILL_CHUNK = 2000
"""Ids per backfill range: a few seconds of fetching at full speed, so a killed host
loses little, and few enough ranges that planning a year stays quick."""
SETTLE_BATCH = 1000
GAP_BATCH = 1000
FILL_BATCH = 250
"""Ids a worker asks for at once inside its range; the factory's eight workers keep
``HNLAB_CONCURRENCY`` (100) in flight while some of them write."""
CLAIM_POLL_S = 1.0
_A_YEAR = 365 * 24 * 3600.0  # a backfill's deadline: it runs until it is done


@dataclass
class PassStats:
    """What a sync pass or a backfill did."""

    max_item: int | None = None
    planned: int = 0  # ids newly planned
    fetched: int = 0  # ids asked for
    stored: int = 0
    gaps: int = 0  # answered null or garbage this time (tried again later)
    missing: int = 0  # given up on this time, after the last retry
    errors: int = 0  # answers that were not items (malformed, HTTP errors)
    settled: int = 0
    revised: int = 0
    erased: int = 0
    resolved: int = 0  # comments given their root story once their parent came
    requests: int = 0
    duration_s: float = 0.0
    search_s: float = 0.0  # a backfill's search for its bounds
    left: int = 0  # ids still planned and open

    def add(self, stored: Stored) -> None:
        self.stored += stored.stored
        self.gaps += stored.gaps
        self.missing += stored.missing

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Answers:
    rows: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[tuple[int, str]] = field(default_factory=list)
    errors: int = 0


def _sort(results: list[ItemResult]) -> _Answers:
    out = _Answers()
    for result in results:
        if not result.ok:
            out.gaps.append((result.id, f"error: {result.error}"[:500]))
            out.errors += 1
            continue
        row = item_row(result.data)
        if row is Skip.NULL:
            out.gaps.append((result.id, "null"))
        elif not isinstance(row, dict) or row["id"] != result.id:
            out.gaps.append((result.id, "malformed item"))
            out.errors += 1
        else:
            out.rows.append(row)
    return out


class ItemStream:
    """Sync passes, settling and backfills over one repository and one client."""

    def __init__(
        self,
        repository: ItemRepository,
        client: HNClient,
        *,
        clock: Clock = utc_now,
        workers: int = 4,
    ) -> None:
        self.repository = repository
        self.client = client
        self.clock = clock
        self.workers = max(1, workers)

    @property
    def engine(self) -> Any:
        return self.repository.engine

    # -- sync -------------------------------------------------------------------------------
    async def sync(self) -> PassStats:
        """One pass: new ids up to ``maxitem``, then the gaps, then what is due to settle."""
        stats = PassStats()
        t0, requests = time.perf_counter(), self.client.requests_made
        started = self.clock()
        async with self.client as hn:
            hn.restart_deadline()
            stats.max_item = await hn.max_item()
            _, stats.planned = await self.repository.plan_sync(
                stats.max_item, SYNC_CHUNK, self.clock()
            )
            await self._drain("sync", stats)
            await self._retry_gaps(stats, started)
            await self._settle(stats)
        stats.resolved += await self.repository.resolve_stories()
        stats.left = await self.repository.open_ids("sync")
        stats.requests = self.client.requests_made - requests
        stats.duration_s = round(time.perf_counter() - t0, 3)
        log.info("item sync: %s", stats.as_dict())
        return stats

    async def _drain(
        self,
        purpose: str,
        stats: PassStats,
        *,
        within: tuple[int, int] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Claim and fill open ranges with ``workers`` claims at a time until none is open
        (a backfill: until none is left, open or held by another host)."""

        backfill = purpose == "backfill"
        finished = asyncio.Condition()  # a range of ours is done: the waiting look again

        async def worker() -> None:
            while True:
                async with self.repository.claim(
                    purpose, within=within, newest_first=backfill
                ) as claim:
                    if claim is not None:
                        done = await self._fill(claim, stats)
                if claim is not None:
                    if progress is not None:
                        progress(done)
                    async with finished:
                        finished.notify_all()
                    continue
                # A backfill waits out the ranges held elsewhere (by other hosts, or by
                # this one's other workers): if a host dies, its range opens again and
                # is claimed here. A sync pass leaves them.
                if not backfill or not await self.repository.open_ids(purpose, within):
                    return
                async with finished:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(CLAIM_POLL_S):
                            await finished.wait()

        await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def _fill(self, claim: Claim, stats: PassStats) -> int:
        """Fetch a claimed range's ids a batch at a time, writing each batch in the
        range's transaction while the other workers' requests keep the pipe full (a
        whole range at once made every worker finish, and write, together)."""
        wanted = claim.wanted
        parts: list[Stored] = []  # this range's own counts (other workers share ``stats``)
        for start in range(0, len(wanted), FILL_BATCH):
            batch = wanted[start : start + FILL_BATCH]
            answers = _sort(await self.client.items(batch))
            stored = await self.repository.store(
                claim.conn, answers.rows, self.clock(), answers.gaps
            )
            parts.append(stored)
            stats.add(stored)
            stats.fetched += len(batch)
            stats.errors += answers.errors
        total = Stored(
            sum(p.stored for p in parts), sum(p.gaps for p in parts), sum(p.missing for p in parts)
        )
        await self.repository.finish(claim, total, self.clock())
        return claim.hi - claim.lo + 1

    async def _retry_gaps(self, stats: PassStats, started: datetime) -> None:
        """Try again the ids a pass before this one found no item for."""
        while True:
            async with self.repository.claim_gaps(started, GAP_BATCH) as (conn, ids):
                if not ids:
                    return
                answers = _sort(await self.client.items(ids))
                stored = await self.repository.store(conn, answers.rows, self.clock(), answers.gaps)
            stats.fetched += len(ids)
            stats.errors += answers.errors
            stats.add(stored)
            if len(ids) < GAP_BATCH:
                return

    async def _settle(self, stats: PassStats) -> None:
        """Re-fetch what is due, a batch at a time, until nothing due is left."""
        while True:
            at = self.clock()
            async with self.repository.claim_due(at, SETTLE_BATCH) as (conn, before):
                if not before:
                    return
                answers = _sort(await self.client.items(list(before)))
                after = {row["id"]: row for row in answers.rows}
                revised, erased = await self.repository.settle(conn, before, after, at)
            stats.fetched += len(before)
            stats.settled += len(after)
            stats.revised += revised
            stats.erased += erased
            if len(before) < SETTLE_BATCH or not after:
                return

    # -- backfill ---------------------------------------------------------------------------
    async def bounds(self, since: date, until: date | None) -> tuple[int, int]:
        """The ids of the first item at or after ``since`` and the last before ``until``
        (or ``maxitem``), by searching item times (``_first_at``)."""
        async with self.client as hn:
            hn.restart_deadline()
            top = await hn.max_item()
            moments = [_midnight(since)] + ([_midnight(until)] if until is not None else [])
            found = await self._first_at(hn, moments, top)
        return found[0], (found[1] - 1 if until is not None else top)

    async def _first_at(self, hn: HNClient, moments: list[datetime], top: int) -> list[int]:
        """For each moment, the id after the last item created before it (top + 1: none).

        Ids grow with time, so this is a search over item times, done ``k``-ary to cost
        few round trips: every round asks about ``HNLAB_CONCURRENCY`` ids at once,
        shared by the moments' brackets (the ids known to be before and at or after
        each moment). The first round spreads its ids geometrically down from the top
        (a recent day is near it, a year ago far below); later rounds spread them
        evenly inside each bracket, shrinking it ``k + 1``-fold, until a bracket is
        small enough to ask every id in it. Ids with no time (``null``, never
        propagated) tell nothing and are passed over. A day a month back takes four
        round trips; halving 40 million ids one probe at a time would take 26."""
        targets = [m.timestamp() for m in moments]
        width = max(2, hn.concurrency)
        lo = [0] * len(targets)  # the largest id known to be older than the target
        hi = [top + 1] * len(targets)  # the smallest id known to be as new or newer
        ratio = max(top / 8, 2.0) ** (1 / (width - 1))
        probes = sorted({max(1, top - round(8 * ratio**j)) for j in range(width)})
        asked: set[int] = set()
        while probes:
            asked.update(probes)
            for result in await hn.items(probes):
                stamp = result.data.get("time") if result.data else None
                if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                    continue
                for n, target in enumerate(targets):
                    if stamp < target and lo[n] < result.id < hi[n]:
                        lo[n] = result.id
                    elif stamp >= target and lo[n] < result.id < hi[n]:
                        hi[n] = result.id
            open_ = [n for n in range(len(targets)) if hi[n] - lo[n] > 1]
            share = max(1, width // max(1, len(open_)))
            wanted: set[int] = set()
            for n in open_:
                inside = hi[n] - lo[n] - 1
                if inside <= share:
                    wanted.update(range(lo[n] + 1, hi[n]))
                else:
                    step = (hi[n] - lo[n]) / (share + 1)
                    wanted.update(lo[n] + round(step * (j + 1)) for j in range(share))
            probes = sorted(wanted - asked)
        return [n + 1 for n in lo]

    async def backfill(
        self,
        since: date,
        until: date | None = None,
        *,
        progress: Callable[[int, int], Callable[[int], None]] | None = None,
    ) -> PassStats:
        """Fill ``since..until`` (until: now), shared with every host running the same.

        ``progress(total_ids, done_ids)`` makes the callback told each finished range's
        size (a progress bar)."""
        stats = PassStats()
        t0, requests = time.perf_counter(), self.client.requests_made
        deadline = self.client.deadline
        async with self.client as hn:  # one session (and its connections) for both steps
            lo, hi = await self.bounds(since, until)
            stats.search_s = round(time.perf_counter() - t0, 3)
            stats.max_item = hi
            if hi >= lo:
                _, stats.planned = await self.repository.plan(
                    lo, hi, "backfill", BACKFILL_CHUNK, self.clock()
                )
                left = await self.repository.open_ids("backfill", (lo, hi))
                tick = progress(left, (hi - lo + 1) - left) if progress else None
                hn.deadline = _A_YEAR
                try:
                    hn.restart_deadline()
                    await self._drain("backfill", stats, within=(lo, hi), progress=tick)
                finally:
                    hn.deadline = deadline
                stats.resolved += await self.repository.resolve_stories()
        stats.left = await self.repository.open_ids("backfill", (lo, hi))
        stats.requests = self.client.requests_made - requests
        stats.duration_s = round(time.perf_counter() - t0, 3)
        return stats


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


ITEMS_JOB_ID = "item_stream"


def _sync_job(runtime: Runtime) -> Body:
    """A sync pass every HNLAB_ITEMS_EVERY minutes."""
    stream = runtime.parts.items(clock=runtime.clock)
    runtime.say(
        f"following HN's items every {runtime.settings.items_every} min "
        f"({runtime.settings.label('items_every')})"
    )

    async def sync() -> str | None:
        try:
            stats = await stream.sync()
        except (DatabaseError, FetchError) as exc:
            return f"item sync failed: {exc}"
        runtime.metrics.observe_items(stats.stored, stats.missing, stats.errors)
        return None

    return sync


register(
    Job(
        ITEMS_JOB_ID,
        "Item stream",
        "items_every",
        trigger=lambda s: f"*/{s.items_every} * * * *" if s.items_every else None,
        build=_sync_job,
        group="items",
        options={"max_instances": 1, "coalesce": True, "misfire_grace_time": 60},
    )
)
