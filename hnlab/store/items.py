"""ItemRepository: every HN item once (``items``), its revisions, gaps and id-range claims.

PostgreSQL is the coordinator. Ids are cut into non-overlapping ranges
(``item_chunks``, planned under one advisory lock); a process claims a range with
``FOR UPDATE SKIP LOCKED`` and holds the row lock in the transaction that writes
the range's items, so two processes never fetch the same range, and a process
killed mid-range loses only that range: its transaction rolls back with the
connection and the range is open again. Ids answered ``null`` or garbage become
gaps, retried until ``null_retries`` tries, then recorded as missing.

Settling: each item is due ``settle_after`` past its creation. A re-fetch that
shows a changed title, url, text or dead flag keeps the earlier version in
``item_revisions``; one that shows the item deleted erases its text, title, url
and author everywhere hnlab holds them (items, revisions, the seed's posts) and
keeps the thread's shape (id, type, time, parent, story, ``deleted``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hnlab.store.db import CHUNK_LOCK, connection, transaction

Purpose = str  # "sync" or "backfill"


@dataclass
class Claim:
    """A claimed id range ``lo..hi`` and the open transaction that holds it."""

    conn: AsyncConnection
    lo: int
    hi: int
    present: set[int] = field(default_factory=set)

    @property
    def wanted(self) -> list[int]:
        """The range's ids not stored yet."""
        return [i for i in range(self.lo, self.hi + 1) if i not in self.present]


@dataclass(frozen=True)
class Stored:
    """What one write did: items stored, gaps recorded, ids now given up as missing."""

    stored: int = 0
    gaps: int = 0
    missing: int = 0


class ItemRepository:
    """The item stream's SQL; never closes the engine it was handed."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        settle_after: timedelta = timedelta(hours=2),
        null_retries: int = 5,
    ) -> None:
        self.engine = engine
        self.settle_after = settle_after
        self.null_retries = null_retries

    # -- planning ---------------------------------------------------------------------------
    async def plan(
        self, lo: int, hi: int, purpose: Purpose, chunk: int, at: datetime
    ) -> tuple[int, int]:
        """Add chunks of at most ``chunk`` ids covering what of ``lo..hi`` no chunk covers
        yet; return (chunks added, ids in them)."""
        if hi < lo:
            return 0, 0
        async with transaction(self.engine) as conn:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHUNK_LOCK})
            taken = (
                await conn.execute(
                    sa.text(
                        "SELECT lo, hi FROM item_chunks WHERE hi >= :lo AND lo <= :hi ORDER BY lo"
                    ),
                    {"lo": lo, "hi": hi},
                )
            ).all()
            rows: list[dict[str, Any]] = [
                {"lo": a, "hi": b, "purpose": purpose, "at": at, **_HOST}
                for start, end in _uncovered(lo, hi, [(r.lo, r.hi) for r in taken])
                for a, b in _cut(start, end, chunk)
            ]
            if rows:
                await conn.execute(
                    sa.text(
                        "INSERT INTO item_chunks (lo, hi, purpose, created_at, host, pid) "
                        "VALUES (:lo, :hi, :purpose, :at, :host, :pid)"
                    ),
                    rows,
                )
        return len(rows), sum(int(r["hi"]) - int(r["lo"]) + 1 for r in rows)

    async def plan_sync(self, max_item: int, chunk: int, at: datetime) -> tuple[int, int]:
        """Chunks from the sync's frontier up to ``max_item``; on a new database the sync
        starts at ``max_item`` itself (older ids are the backfill's)."""
        async with connection(self.engine) as conn:
            frontier = (
                await conn.execute(
                    sa.text("SELECT max(hi) FROM item_chunks WHERE purpose = 'sync'")
                )
            ).scalar()
        start = max_item if frontier is None else frontier + 1
        return await self.plan(start, max_item, "sync", chunk, at)

    # -- claiming ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def claim(
        self,
        purpose: Purpose,
        *,
        within: tuple[int, int] | None = None,
        newest_first: bool = False,
    ) -> AsyncIterator[Claim | None]:
        """Claim one open chunk (None: none is open and unclaimed) for the block; the
        block's writes commit with the chunk marked done, or roll back with it open."""
        lo, hi = within or (0, 2**31 - 1)
        order = "DESC" if newest_first else "ASC"
        async with transaction(self.engine) as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT lo, hi FROM item_chunks WHERE purpose = :purpose "
                        "AND done_at IS NULL AND lo >= :lo AND hi <= :hi "
                        f"ORDER BY lo {order} LIMIT 1 FOR UPDATE SKIP LOCKED"
                    ),
                    {"purpose": purpose, "lo": lo, "hi": hi},
                )
            ).first()
            if row is None:
                yield None
                return
            present = (
                await conn.execute(
                    sa.text("SELECT id FROM items WHERE id BETWEEN :lo AND :hi"),
                    {"lo": row.lo, "hi": row.hi},
                )
            ).scalars()
            yield Claim(conn, row.lo, row.hi, set(present))

    async def finish(self, claim: Claim, stored: Stored, at: datetime) -> None:
        await claim.conn.execute(
            sa.text(
                "UPDATE item_chunks SET done_at = :at, stored = :stored, gaps = :gaps, "
                "host = :host, pid = :pid WHERE lo = :lo"
            ),
            {"at": at, "stored": stored.stored, "gaps": stored.gaps, "lo": claim.lo, **_HOST},
        )

    async def open_ids(self, purpose: Purpose, within: tuple[int, int] | None = None) -> int:
        """How many ids the open chunks of ``purpose`` (inside ``within``) hold."""
        lo, hi = within or (0, 2**31 - 1)
        async with connection(self.engine) as conn:
            value = (
                await conn.execute(
                    sa.text(
                        "SELECT coalesce(sum(hi - lo + 1), 0) FROM item_chunks "
                        "WHERE purpose = :purpose AND done_at IS NULL AND lo >= :lo AND hi <= :hi"
                    ),
                    {"purpose": purpose, "lo": lo, "hi": hi},
                )
            ).scalar()
        return int(value or 0)

    # -- writing ----------------------------------------------------------------------------
    async def store(
        self,
        conn: AsyncConnection,
        rows: Sequence[dict[str, Any]],
        at: datetime,
        gaps: Iterable[tuple[int, str]] = (),
    ) -> Stored:
        """Insert ``rows`` (from ``hn.items.item_row``), each once; record ``gaps`` (id,
        reason); clear the gaps of the ids stored. Runs in the caller's transaction."""
        gaps = list(gaps)
        stored = 0
        if rows:
            stored = await insert_items(conn, rows, at, self.settle_after)
            ids = [r["id"] for r in rows]
            await conn.exec_driver_sql(
                "DELETE FROM item_gaps WHERE id = ANY(%(ids)s::int[])", {"ids": ids}
            )
        missing = 0
        if gaps:
            result = await conn.exec_driver_sql(
                _UPSERT_GAPS,
                {
                    "ids": [g[0] for g in gaps],
                    "reasons": [g[1] for g in gaps],
                    "at": at,
                    "limit": self.null_retries,
                },
            )
            missing = sum(1 for (gone,) in result if gone)
        return Stored(stored, len(gaps), missing)

    async def resolve_stories(self, conn: AsyncConnection | None = None) -> int:
        """Give every comment whose ancestors have arrived its root story; return how many.

        A backfill walks ids downwards, so replies arrive before what they answer."""
        if conn is not None:
            return int((await conn.exec_driver_sql(_RESOLVE)).rowcount)
        async with transaction(self.engine) as own:
            return int((await own.exec_driver_sql(_RESOLVE)).rowcount)

    # -- gaps -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def claim_gaps(
        self, tried_before: datetime, limit: int = 1000
    ) -> AsyncIterator[tuple[AsyncConnection, list[int]]]:
        """Claim up to ``limit`` gaps still worth a try and last tried before
        ``tried_before`` (not this pass), in one transaction."""
        async with transaction(self.engine) as conn:
            ids = (
                await conn.execute(
                    sa.text(
                        "SELECT id FROM item_gaps WHERE NOT missing AND last_tried < :before "
                        "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"n": limit, "before": tried_before},
                )
            ).scalars()
            yield conn, list(ids)

    # -- settling ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def claim_due(
        self, at: datetime, limit: int = 1000
    ) -> AsyncIterator[tuple[AsyncConnection, dict[int, dict[str, Any]]]]:
        """Claim up to ``limit`` items whose edit window has closed by ``at``, unsettled,
        with their current version, in one transaction."""
        async with transaction(self.engine) as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT id, title, url, text, dead, deleted, version_at FROM items "
                        "WHERE settled_at IS NULL AND settle_at <= :at ORDER BY settle_at "
                        "LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"at": at, "n": limit},
                )
            ).mappings()
            yield conn, {r["id"]: dict(r) for r in rows}

    async def settle(
        self,
        conn: AsyncConnection,
        before: dict[int, dict[str, Any]],
        after: dict[int, dict[str, Any]],
        at: datetime,
    ) -> tuple[int, int]:
        """Settle the items re-fetched as ``after`` (rows), against ``before`` (their
        stored versions): keep changed versions as revisions, erase the deleted, update
        the counters. Ids in ``before`` with no answer are tried again later. Return
        (revisions kept, items erased)."""
        revised = [
            {**old, "replaced_at": at}
            for i, old in before.items()
            if i in after and not after[i]["deleted"] and _version(old) != _version(after[i])
        ]
        erased = [i for i in after if after[i]["deleted"] and i in before]
        kept = [after[i] for i in after if i in before and not after[i]["deleted"]]
        if revised:
            await conn.execute(
                sa.text(
                    "INSERT INTO item_revisions (id, seen_at, replaced_at, title, url, text, dead) "
                    "VALUES (:id, :version_at, :replaced_at, :title, :url, :text, :dead) "
                    "ON CONFLICT DO NOTHING"
                ),
                revised,
            )
        if kept:
            await conn.exec_driver_sql(
                _SETTLE,
                {
                    "rows": json.dumps(kept, separators=(",", ":")),
                    "at": at,
                    "changed": [r["id"] for r in revised],
                },
            )
        if erased:
            await erase(conn, erased, at)
        retry = [i for i in before if i not in after]
        if retry:
            await conn.execute(
                sa.text("UPDATE items SET settle_at = :later WHERE id = ANY(:ids)"),
                {"later": at + timedelta(minutes=10), "ids": retry},
            )
        return len(revised), len(erased)

    # -- reading ----------------------------------------------------------------------------
    async def counts(self) -> dict[str, int]:
        """Items, comments, revisions, open gaps, missing ids and open chunks."""
        async with connection(self.engine) as conn:
            row = (await conn.exec_driver_sql(_COUNTS)).mappings().one()
        return {k: int(v or 0) for k, v in row.items()}


async def insert_items(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], at: datetime, settle_after: timedelta
) -> int:
    """Insert item rows not stored yet; for one stored already, refresh its score and
    descendants (the living counters) and leave its content to settling. A comment
    whose parent is stored gets its root story now, the others in ``resolve_stories``."""
    result = await conn.exec_driver_sql(
        _INSERT_ITEMS,
        {"rows": json.dumps(rows, separators=(",", ":")), "at": at, "settle": settle_after},
    )
    return int(result.rowcount)


async def erase(conn: AsyncConnection, ids: Sequence[int], at: datetime) -> None:
    """HN says these items are deleted: erase their text, title, url and author from
    every table that holds them (summaries that quote them included), and keep their
    place in the thread."""
    await conn.execute(
        sa.text(
            'UPDATE items SET "by" = NULL, title = NULL, url = NULL, domain = NULL, '
            "text = NULL, extra = NULL, deleted = true, dead = false, version_at = :at, "
            "settled_at = coalesce(settled_at, :at) WHERE id = ANY(:ids)"
        ),
        {"ids": list(ids), "at": at},
    )
    await conn.execute(
        sa.text("DELETE FROM item_revisions WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )
    await conn.execute(
        sa.text(
            "UPDATE posts SET title = '', author = NULL, url = NULL, domain = NULL, "
            "is_dead = true WHERE hn_id = ANY(:ids)"
        ),
        {"ids": list(ids)},
    )
    # a deleted story's link is no longer HN's to show; its extracted text goes too
    await conn.execute(sa.text("DELETE FROM contents WHERE hn_id = ANY(:ids)"), {"ids": list(ids)})
    # a summary of a deleted story, or one that cites a deleted comment, quotes it
    await conn.execute(
        sa.text(
            "DELETE FROM summaries WHERE story_id = ANY(:ids) OR cited && CAST(:ids AS integer[])"
        ),
        {"ids": list(ids)},
    )


def _version(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["title"], row["url"], row["text"], bool(row["dead"]))


def _uncovered(lo: int, hi: int, taken: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``lo..hi`` outside the sorted ranges ``taken``."""
    out, at = [], lo
    for a, b in taken:
        if a > at:
            out.append((at, min(a - 1, hi)))
        at = max(at, b + 1)
        if at > hi:
            break
    if at <= hi:
        out.append((at, hi))
    return out


def _cut(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size - 1, hi)) for a in range(lo, hi + 1, size)]


_HOST = {"host": socket.gethostname()[:255], "pid": os.getpid()}

_COLUMNS = """
    id int, type text, "by" text, time double precision, parent int, title text, url text,
    domain text, text text, score int, descendants int, dead bool, deleted bool, poll int,
    parts int[], extra jsonb
"""
_INSERT_ITEMS = f"""
    INSERT INTO items (id, type, "by", time, parent, story_id, title, url, domain, text,
                       score, descendants, dead, deleted, poll, parts, extra,
                       first_fetched, version_at, settle_at, settled_at)
    SELECT v.id, v.type, v."by", to_timestamp(v.time), v.parent,
           CASE WHEN v.parent IS NULL THEN coalesce(v.poll, v.id) ELSE p.story_id END,
           v.title, v.url, v.domain, v.text, v.score, v.descendants, v.dead, v.deleted,
           v.poll, v.parts, v.extra, %(at)s, %(at)s,
           to_timestamp(v.time) + %(settle)s,
           CASE WHEN v.deleted OR v.time IS NULL
                  OR to_timestamp(v.time) + %(settle)s <= %(at)s THEN %(at)s END
      FROM jsonb_to_recordset(%(rows)s::jsonb) AS v({_COLUMNS})
      LEFT JOIN items p ON p.id = v.parent
    ON CONFLICT (id) DO UPDATE
       SET score = coalesce(EXCLUDED.score, items.score),
           descendants = coalesce(EXCLUDED.descendants, items.descendants)
"""
_SETTLE = f"""
    UPDATE items i
       SET title = v.title, url = v.url, domain = v.domain, text = v.text, dead = v.dead,
           "by" = coalesce(v."by", i."by"), score = v.score, descendants = v.descendants,
           extra = v.extra, settled_at = %(at)s,
           version_at = CASE WHEN i.id = ANY(%(changed)s::int[]) THEN %(at)s ELSE i.version_at END
      FROM jsonb_to_recordset(%(rows)s::jsonb) AS v({_COLUMNS})
     WHERE i.id = v.id
"""
_UPSERT_GAPS = """
    INSERT INTO item_gaps (id, tries, reason, last_tried, missing)
    SELECT g.id, 1, g.reason, %(at)s, 1 >= %(limit)s
      FROM unnest(%(ids)s::int[], %(reasons)s::text[]) AS g(id, reason)
    ON CONFLICT (id) DO UPDATE
       SET tries = item_gaps.tries + 1, reason = EXCLUDED.reason,
           last_tried = EXCLUDED.last_tried, missing = item_gaps.tries + 1 >= %(limit)s
    RETURNING missing AND tries = %(limit)s
"""
_RESOLVE = """
    WITH RECURSIVE fix(id, story_id) AS (
        SELECT c.id, p.story_id FROM items c JOIN items p ON p.id = c.parent
         WHERE c.story_id IS NULL AND p.story_id IS NOT NULL
        UNION ALL
        SELECT c.id, f.story_id FROM items c JOIN fix f ON c.parent = f.id
         WHERE c.story_id IS NULL
    )
    UPDATE items SET story_id = fix.story_id FROM fix WHERE items.id = fix.id
"""
_COUNTS = """
    SELECT (SELECT count(*) FROM items) AS items,
           (SELECT count(*) FROM items WHERE type = 'comment') AS comments,
           (SELECT count(*) FROM items WHERE settled_at IS NULL) AS unsettled,
           (SELECT count(*) FROM item_revisions) AS revisions,
           (SELECT count(*) FROM item_gaps WHERE NOT missing) AS gaps,
           (SELECT count(*) FROM item_gaps WHERE missing) AS missing,
           (SELECT count(*) FROM item_chunks WHERE done_at IS NULL) AS open_chunks,
           (SELECT coalesce(sum(hi - lo + 1), 0) FROM item_chunks WHERE done_at IS NULL)
               AS open_ids
"""
