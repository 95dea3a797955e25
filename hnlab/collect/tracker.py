"""MinuteTracker: every tracked list's ranks, scores and comments, once a minute.

The second job of ``hnlab run``, beside the hourly collection, and a peer of it:
it claims its slot (a UTC minute) in ``track_ticks`` through ``records``, fetches
with the same ``HNClient``, and writes through the same repository. A tick:

1. a tick that starts later than half its interval is recorded as ``missed``,
   not run late; otherwise the minute is claimed (one unique row: a second tracker,
   or ``hnlab track --once`` again for that minute, finds it taken);
2. the lists are fetched concurrently, then the items on them (each item once,
   however many lists it is on);
3. one transaction writes the minute's row (``rank_minutes``: one row per minute,
   every list's arrays end to end, the layout measured in
   ``scripts/bench_track_storage.py``), the stories it saw (their items into
   ``items``, when it first and last saw them into ``story_sightings``; the
   ``stories`` view joins the two), their spans, and the tick's record. All or nothing:
   a tick that loses PostgreSQL leaves no half-written minute;
4. a list whose request fails is left out of that minute and named in the tick's
   error; a tick whose every list fails is recorded as failed. The next tick
   starts afresh either way.

Load on the API: the default lists and depths (top 90, new 30, best 30, ask 30,
show 30) are 5 list requests and at most 210 item requests a minute (about 3.6 a
second); stories on several lists are fetched once, so typically fewer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hnlab.clock import Clock, utc_now
from hnlab.collect.pipeline import Pipeline
from hnlab.config import STORY_LISTS
from hnlab.errors import DatabaseError, FetchError
from hnlab.hn.client import HNClient, ItemResult
from hnlab.hn.items import Post, item_row, parse_item
from hnlab.jobs import Body, Job, Runtime, register
from hnlab.store import records
from hnlab.store.minutes import MinutePart, MinuteRepository, Ranked

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    """How one tick ended, and what it did."""

    slot: datetime
    status: str  # succeeded, failed, missed, skipped (the minute was already recorded)
    lists: int = 0
    observations: int = 0
    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["slot"] = self.slot.isoformat()
        return out


class MinuteTracker:
    """Records ticks of ``lists`` (each to its ``depth``) every ``every`` minutes."""

    def __init__(
        self,
        repository: MinuteRepository,
        client: HNClient,
        *,
        lists: Sequence[str],
        depth: Mapping[str, int],
        every: int = 1,
        clock: Clock = utc_now,
    ) -> None:
        if not 1 <= every <= 60:
            raise ValueError(f"every must be 1 to 60 minutes, got {every!r}")
        unknown = [name for name in lists if name not in STORY_LISTS]
        if unknown or not lists:
            raise ValueError(f"lists must be some of {', '.join(STORY_LISTS)}, got {lists!r}")
        self.repository = repository
        self.client = client
        self.lists = tuple(lists)
        self.depth = {name: int(depth[name]) for name in self.lists}
        self.every = every
        self.clock = clock
        self.stale_after = timedelta(minutes=10)
        self._last_scheduled: datetime | None = None

    @property
    def engine(self) -> Any:
        return self.repository.engine

    def slot(self, now: datetime | None = None) -> datetime:
        """The tick ``now`` belongs to: the minute, floored to the interval (UTC)."""
        now = (now or self.clock()).astimezone(UTC).replace(second=0, microsecond=0)
        return now - timedelta(minutes=now.minute % self.every)

    async def tick(self, at: datetime | None = None, *, scheduled: bool = False) -> TickResult:
        """Record one tick: the current minute, or the minute ``at`` (a replay).

        A ``scheduled`` tick that starts later than half its interval is recorded as
        missed instead; a tick asked for by hand is recorded whenever it runs.
        """
        started = self.clock()
        slot = self.slot(at or started)
        if scheduled:
            await self._record_gap(slot, started)
        if scheduled and started - slot > timedelta(minutes=self.every) / 2:
            reason = (
                f"started {(started - slot).total_seconds():.0f} s late, more than half of "
                f"its {self.every}-minute interval"
            )
            await records.record_missed_tick(self.engine, slot, started, reason)
            log.warning("tick %s missed: %s", slot.isoformat(), reason)
            return TickResult(slot, "missed", error=reason)
        t0 = time.perf_counter()
        requests = self.client.requests_made
        # The lists load while the minute is claimed; a minute taken already cancels them.
        pipeline: Pipeline[MinutePart, tuple[list[Ranked], list[str], int]]
        pipeline = Pipeline(self._fetch)
        claimed = False
        try:
            await records.close_stale_ticks(self.engine, started - self.stale_after, started)
            claimed = await records.claim_tick(self.engine, slot, started)
        finally:
            if not claimed:
                await pipeline.cancel()
        if not claimed:
            return TickResult(slot, "skipped", error=f"{slot:%Y-%m-%d %H:%M}Z is recorded already")
        # Spans are written once the lists are known and stories as their items arrive,
        # in one transaction that the minute's row and the tick's record close.
        final: asyncio.Future[tuple[Sequence[Ranked], Any]] = (
            asyncio.get_running_loop().create_future()
        )
        fetched, writing = await pipeline.write(
            lambda parts: self.repository.write_minute(slot, parts, final)
        )
        ranked, failures, failed_items = fetched
        try:
            result = TickResult(
                slot,
                "succeeded" if ranked else "failed",
                lists=len(ranked),
                observations=sum(len(r.hn_ids) for r in ranked),
                errors=len(failures) + failed_items,
                error="; ".join(failures) or None,
            )
            result.requests = self.client.requests_made - requests
            result.duration_s = round(time.perf_counter() - t0, 3)
            finish = records.finish_tick_statement(
                slot, result.status, self.clock(), self._stats(result), result.error
            )
            final.set_result((ranked, finish))
            await writing
        except DatabaseError as exc:  # the claim holds; the stale sweep closes it later
            log.error("tick %s not written: %s", slot.isoformat(), exc)
            return TickResult(slot, "failed", error=str(exc))
        log.info(
            "tick %s: %s lists, %s observations, %s requests, %s errors in %.2fs",
            slot.isoformat(),
            result.lists,
            result.observations,
            result.requests,
            result.errors,
            result.duration_s,
        )
        return result

    async def _record_gap(self, slot: datetime, started: datetime) -> None:
        """Record as missed the ticks this tracker should have run since its last one (a
        blocked or suspended process); a minute another tracker recorded stays as it is."""
        last, self._last_scheduled = self._last_scheduled, slot
        if last is None:
            return
        step = timedelta(minutes=self.every)
        gap = last + step
        while gap < slot:
            reason = f"no tick ran for this minute; the next one ran at {started:%H:%M:%S}Z"
            await records.record_missed_tick(self.engine, gap, started, reason)
            gap += step

    async def prune(self, keep_days: int) -> int:
        """Downsample the minutes older than ``keep_days`` to hourly (each hour's :00
        minute stays); return how many minute rows were deleted."""
        before = self.clock() - timedelta(days=keep_days)
        deleted = await self.repository.downsample_minutes(before)
        log.info("downsampled the minutes before %s to hourly: %s rows", before, deleted)
        return deleted

    @staticmethod
    def _stats(result: TickResult) -> dict[str, Any]:
        return {
            k: getattr(result, k)
            for k in ("lists", "observations", "requests", "errors", "duration_s")
        }

    async def _fetch(
        self, arrivals: asyncio.Queue[MinutePart | None]
    ) -> tuple[list[Ranked], list[str], int]:
        """The lists, then every item on them once: the ranked lists, the lists that
        failed (named) and how many items failed after retries. The lists' memberships
        and each story are queued for the writer as they come."""
        posts: dict[int, Post] = {}
        seen_at = self.clock()

        def arrived(index: int, item: ItemResult) -> None:
            parsed = parse_item(item.data, collected_at=seen_at) if item.ok else None
            if isinstance(parsed, Post):
                posts[item.id] = parsed
                row = item_row(item.data)
                rows = [row] if isinstance(row, dict) else []
                arrivals.put_nowait(MinutePart(stories=[parsed], items=rows))

        async with self.client as hn:
            hn.restart_deadline()
            answers = await asyncio.gather(
                *(hn.story_ids(name) for name in self.lists), return_exceptions=True
            )
            ids: dict[str, list[int]] = {}
            failures = []
            for name, answer in zip(self.lists, answers, strict=True):
                if isinstance(answer, FetchError):
                    failures.append(f"{name}: {answer}")
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    ids[name] = answer[: self.depth[name]]
            if ids:
                arrivals.put_nowait(
                    MinutePart(
                        [i for listed in ids.values() for i in listed],
                        [STORY_LISTS.index(n) for n, listed in ids.items() for _ in listed],
                    )
                )
            wanted = list(dict.fromkeys(i for listed in ids.values() for i in listed))
            items = await hn.items(wanted, arrived)
        ranked = []
        for name, listed in ids.items():
            shown = [posts.get(i) for i in listed]
            ranked.append(
                Ranked(
                    STORY_LISTS.index(name),
                    listed,
                    [p.score if p else None for p in shown],
                    [p.comment_count if p else None for p in shown],
                )
            )
        failed_items = sum(not item.ok for item in items)
        return ranked, failures, failed_items


TRACK_JOB_ID = "minute_tracker"
PRUNE_JOB_ID = "tracker_retention"


def _tick_job(runtime: Runtime) -> Body:
    """Tick every HNLAB_TRACK_EVERY minutes; a late tick records itself as missed."""
    tracker = runtime.parts.tracker(clock=runtime.clock)
    label = runtime.settings.label("track_every")
    depth = ", ".join(f"{name} {tracker.depth[name]}" for name in tracker.lists)
    runtime.say(f"tracking every {tracker.every} min ({label}): {depth}")

    async def tick() -> str | None:
        try:
            result = await tracker.tick(scheduled=True)
        except DatabaseError as exc:
            return f"tick not recorded: {exc}"
        runtime.metrics.observe_tick(result.status, result.observations, runtime.clock())
        return (result.error or "every list failed") if result.status == "failed" else None

    return tick


def _prune_job(runtime: Runtime) -> Body:
    """Downsample minutes older than HNLAB_TRACK_KEEP_DAYS to hourly, daily."""
    tracker = runtime.parts.tracker(clock=runtime.clock)
    keep = runtime.settings.track_keep_days

    async def prune() -> str | None:
        try:
            await tracker.prune(keep)
        except DatabaseError as exc:
            return f"minute data not downsampled: {exc}"
        return None

    return prune


register(
    Job(
        TRACK_JOB_ID,
        "Minute tracker",
        "track_every",
        trigger=lambda s: f"*/{s.track_every} * * * *" if s.track_every else None,
        build=_tick_job,
        group="track",
        # always run: the tick itself records a late one as missed
        options={"max_instances": 1, "misfire_grace_time": 24 * 3600},
    )
)
register(
    Job(
        PRUNE_JOB_ID,
        "Tracker retention",
        "track_keep_days",
        trigger=lambda s: "30 3 * * *" if s.track_every and s.track_keep_days else None,
        build=_prune_job,
        group="track",
    )
)
