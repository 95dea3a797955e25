"""The ``contents`` table: which stories' links are due, one current row per story.

A story is due when it reached rank <= ``top`` on HN's top list in a tracked minute,
or was saved as a post, within ``window`` of now, has a URL, is not deleted, and has
no row yet, or a row whose ``retry_at`` has come.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.config import STORY_LISTS
from hnlab.store.tables import contents

WINDOW = timedelta(days=2)
"""How far back a story's first sighting may be and still be fetched."""

_DUE = sa.text(
    """
WITH ranked AS (
    SELECT DISTINCT unnest(m.hn_ids[o.start + 1 : o.start + LEAST(o.len, :top)]) AS hn_id
      FROM rank_minutes m
      CROSS JOIN LATERAL (
          SELECT (SELECT coalesce(sum(l), 0) FROM unnest(m.lens[1:k - 1]) AS l) AS start,
                 m.lens[k] AS len
            FROM generate_subscripts(m.lists, 1) AS k
           WHERE m.lists[k] = :top_code
      ) o
     WHERE m.sampled_at >= :since AND :top > 0
), candidates AS (
    SELECT hn_id FROM ranked
    UNION SELECT hn_id FROM posts WHERE collected_at >= :since
)
SELECT c.hn_id, coalesce(i.url, p.url) AS url
  FROM candidates c
  LEFT JOIN items i ON i.id = c.hn_id
  LEFT JOIN LATERAL (
      SELECT url FROM posts WHERE posts.hn_id = c.hn_id ORDER BY collected_at DESC LIMIT 1
  ) p ON true
  LEFT JOIN contents t ON t.hn_id = c.hn_id
 WHERE coalesce(i.url, p.url) IS NOT NULL AND coalesce(i.url, p.url) <> ''
   AND NOT coalesce(i.deleted, false)
   AND (t.hn_id IS NULL OR (t.retry_at <= :now AND t.attempts < :attempts))
 ORDER BY c.hn_id DESC
 LIMIT :limit
"""
)

_URLS = sa.text(
    """
SELECT x.hn_id, coalesce(i.url, p.url) AS url
  FROM unnest(CAST(:ids AS integer[])) AS x(hn_id)
  LEFT JOIN items i ON i.id = x.hn_id
  LEFT JOIN LATERAL (
      SELECT url FROM posts WHERE posts.hn_id = x.hn_id ORDER BY collected_at DESC LIMIT 1
  ) p ON true
"""
)


class ContentRepository:
    """Reads and writes ``contents`` on an async engine the caller owns."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def due(
        self, now: datetime, *, top: int, limit: int = 200, attempts: int = 3
    ) -> list[tuple[int, str]]:
        """Stories whose link is due, newest first: (hn_id, url); a row due again only
        before its ``attempts``-th fetch."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                _DUE,
                {
                    "top": top,
                    "top_code": STORY_LISTS.index("top"),
                    "since": now - WINDOW,
                    "now": now,
                    "limit": limit,
                    "attempts": attempts,
                },
            )
            return [(int(r.hn_id), str(r.url)) for r in rows]

    async def urls(self, ids: Sequence[int]) -> dict[int, str | None]:
        """The stored URL of each id (None: not stored, or no URL)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(_URLS, {"ids": list(ids)})
            return {int(r.hn_id): (r.url or None) for r in rows}

    async def save(self, row: dict[str, Any]) -> None:
        """Insert or replace a story's row; ``attempts`` counts the fetches."""
        stmt = insert(contents).values(**row)
        update: dict[str, Any] = {k: stmt.excluded[k] for k in row if k != "hn_id"}
        update["attempts"] = contents.c.attempts + 1
        async with self.engine.begin() as conn:
            await conn.execute(stmt.on_conflict_do_update(index_elements=["hn_id"], set_=update))

    async def update(self, hn_id: int, values: dict[str, Any]) -> None:
        """Change some fields of a row (re-extraction)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(contents).where(contents.c.hn_id == hn_id).values(**values)
            )

    async def archived(self, since: datetime | None) -> list[dict[str, Any]]:
        """Rows with an archived response, oldest first."""
        query = sa.select(
            contents.c.hn_id,
            contents.c.url,
            contents.c.final_url,
            contents.c.outcome,
            contents.c.warc_file,
            contents.c.warc_offset,
        ).where(contents.c.warc_file.is_not(None), contents.c.http_status == 200)
        if since is not None:
            query = query.where(contents.c.fetched_at >= since)
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.order_by(contents.c.fetched_at))
            return [dict(r._mapping) for r in rows]

    async def status(self, *, worst: int = 10) -> dict[str, Any]:
        """Counts by outcome, and the domains (as ``posts.domain``) whose fetches fail most."""
        from hnlab.hn.items import extract_domain

        async with self.engine.connect() as conn:
            found = (await conn.execute(sa.select(contents.c.url, contents.c.outcome))).all()
        outcomes = Counter(outcome for _, outcome in found)
        failed: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for url, outcome in found:
            domain = extract_domain(url) or "?"
            total[domain] += 1
            failed[domain] += outcome != "ok"
        ranked = sorted((d for d in failed if failed[d]), key=lambda d: (-failed[d], d))
        return {
            "outcomes": dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
            "failing_domains": [
                {"domain": d, "failed": failed[d], "total": total[d]} for d in ranked[:worst]
            ],
        }
