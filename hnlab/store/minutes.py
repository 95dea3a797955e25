"""MinuteRepository: the minute tracker's rows (``rank_minutes``, ``rank_spans``, and the
stories it sees: their items in ``items``, when it saw them in ``story_sightings``).

One transaction per tick writes what the tick saw: spans once the
lists are known, the stories once their items have come (in id order, so two
ticks never deadlock), then the minute's row and the
tick's closing statement. A story's content lives in ``items`` only (the
``stories`` view joins it to the sightings); the tracker inserts a story it is the
first to see, and refreshes only the score and comment count of one stored
already: edits reach ``items`` when the item stream settles them.
``rank_minutes`` is partitioned by month; the partitions are made here, under one
advisory lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.hn.items import Post, post_row
from hnlab.store.db import PARTITION_LOCK, transaction
from hnlab.store.items import insert_items


class MinuteRepository:
    """Async writes of the minute tracker's ticks; never closes the engine it was handed."""

    def __init__(
        self, engine: AsyncEngine, *, settle_after: timedelta = timedelta(hours=2)
    ) -> None:
        self.engine = engine
        self.settle_after = settle_after
        self._partitions: set[date] = set()

    async def record_minute(
        self,
        slot: datetime,
        ranked: Sequence[Ranked],
        seen: Sequence[Post],
        finish: Any,
    ) -> None:
        """In one transaction: the minute's ranks, the stories' static facts, their spans,
        and ``finish`` (the tick record's closing statement). All of it, or none."""
        hn_ids = [i for r in ranked for i in r.hn_ids]
        codes = [r.code for r in ranked for _ in r.hn_ids]

        async def one() -> AsyncIterator[MinutePart]:
            yield MinutePart(hn_ids, codes, list(seen), [post_row(p) for p in seen])

        done: asyncio.Future[tuple[Sequence[Ranked], Any]] = (
            asyncio.get_running_loop().create_future()
        )
        done.set_result((ranked, finish))
        await self.write_minute(slot, one(), done)

    async def write_minute(
        self,
        slot: datetime,
        parts: AsyncIterator[MinutePart],
        final: asyncio.Future[tuple[Sequence[Ranked], Any]],
    ) -> None:
        """``record_minute`` for a tick in progress: one transaction that writes the
        spans once the lists are known, then, once every item has come, the stories'
        items and sightings, then, once ``final`` is set, the minute's row (ranks,
        scores, comments; none when no list came) and the tick's closing statement,
        and commits. If ``parts`` raises, nothing is written."""
        await self.ensure_partitions(slot)
        seen: dict[int, dict[str, Any]] = {}
        async with transaction(self.engine) as conn:
            async for part in parts:
                seen.update((row["id"], row) for row in part.items)
                if part.hn_ids:
                    pairs = sorted(set(zip(part.hn_ids, part.codes, strict=True)))
                    await conn.exec_driver_sql(
                        _UPSERT_SPANS,
                        {"at": slot, "ids": [i for i, _ in pairs], "codes": [c for _, c in pairs]},
                    )
            # Shared rows (items, sightings) are written once, in id order: two ticks, or
            # a tick and the item stream, then always lock them in the same order and
            # cannot deadlock (as they could writing each story as it arrived).
            if seen:
                ids = sorted(seen)
                await insert_items(conn, [seen[i] for i in ids], slot, self.settle_after)
                await conn.exec_driver_sql(_UPSERT_SIGHTINGS, {"at": slot, "ids": ids})
            ranked, finish = await final
            if ranked:
                await conn.exec_driver_sql(
                    _INSERT_MINUTE,
                    {
                        "at": slot,
                        "lists": [r.code for r in ranked],
                        "lens": [len(r.hn_ids) for r in ranked],
                        "ids": [i for r in ranked for i in r.hn_ids],
                        "scores": [v for r in ranked for v in r.scores],
                        "comments": [v for r in ranked for v in r.comments],
                    },
                )
            await conn.execute(finish)

    async def downsample_minutes(self, before: datetime) -> int:
        """Keep only each hour's first minute (:00) of the ranks older than ``before``;
        return how many minute rows were deleted. Safe to run again."""
        stmt = sa.text(
            "DELETE FROM rank_minutes WHERE sampled_at < :before "
            "AND date_trunc('hour', sampled_at) <> sampled_at"
        )
        async with transaction(self.engine) as conn:
            return int((await conn.execute(stmt, {"before": before})).rowcount)

    async def ensure_partitions(self, at: datetime) -> None:
        """Create rank_minutes' partitions for ``at``'s month and the next, if missing."""
        month = at.astimezone(UTC).date().replace(day=1)
        if month in self._partitions:
            return
        async with transaction(self.engine) as conn:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK})
            for start in (month, _next_month(month)):
                end = _next_month(start)
                await conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS rank_minutes_{start:%Y_%m} PARTITION OF "
                    f"rank_minutes FOR VALUES FROM ('{start:%Y-%m-%d} 00:00+00') "
                    f"TO ('{end:%Y-%m-%d} 00:00+00')"
                )
        self._partitions.add(month)


@dataclass(frozen=True)
class Ranked:
    """One list at one minute: ids in rank order, with each one's score and comments."""

    code: int
    hn_ids: list[int]
    scores: list[int | None]
    comments: list[int | None]


@dataclass
class MinutePart:
    """Part of a tick, written as it comes: list memberships (one span per id and list
    code) and the stories whose items have arrived."""

    hn_ids: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    stories: list[Post] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)  # the stories' item rows

    def extend(self, other: MinutePart) -> None:
        self.hn_ids += other.hn_ids
        self.codes += other.codes
        self.stories += other.stories
        self.items += other.items


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


_INSERT_MINUTE = (
    "INSERT INTO rank_minutes (sampled_at, lists, lens, hn_ids, scores, comments) VALUES "
    "(%(at)s, %(lists)b::smallint[], %(lens)b::smallint[], %(ids)b::integer[], "
    "%(scores)b::integer[], %(comments)b::integer[])"
)
_UPSERT_SIGHTINGS = """
    INSERT INTO story_sightings (hn_id, first_seen, last_seen)
    SELECT v.hn_id, %(at)s, %(at)s FROM unnest(%(ids)b::integer[]) AS v(hn_id)
    ON CONFLICT (hn_id) DO UPDATE
       SET first_seen = least(story_sightings.first_seen, EXCLUDED.first_seen),
           last_seen = greatest(story_sightings.last_seen, EXCLUDED.last_seen)
"""
_UPSERT_SPANS = """
    INSERT INTO rank_spans (hn_id, list, first_at, last_at)
    SELECT v.hn_id, v.list, %(at)s, %(at)s
      FROM unnest(%(ids)b::integer[], %(codes)b::smallint[]) AS v(hn_id, list)
    ON CONFLICT (hn_id, list) DO UPDATE
       SET first_at = least(rank_spans.first_at, EXCLUDED.first_at),
           last_at = greatest(rank_spans.last_at, EXCLUDED.last_at)
"""
