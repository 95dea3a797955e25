"""Stored summaries: one row per summary made, found again by what reproduces it.

Sync (the analysis layer's ``summarize`` and the digest read them in a thread).
A summary is keyed by its story, kind, model, prompt version and input hash: asking
again with the same input returns the stored one instead of calling the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from hnlab.store.tables import summaries

_KEY = ("story_id", "kind", "model", "prompt_version", "input_hash")


def find(conn: sa.Connection, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored summary with ``key``'s story, kind, model, prompt version and input hash."""
    stmt = sa.select(summaries).where(*(summaries.c[k] == key[k] for k in _KEY))
    row = conn.execute(stmt.order_by(summaries.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row is not None else None


def save(conn: sa.Connection, row: dict[str, Any]) -> None:
    """Store ``row``; one made again from the same input replaces the earlier one."""
    from sqlalchemy.dialects.postgresql import insert

    stmt = insert(summaries).values(**row)
    updated = {k: stmt.excluded[k] for k in ("method", "text", "cited", "dropped", "note")}
    conn.execute(
        stmt.on_conflict_do_update(
            constraint="uq_summaries_input",
            set_={**updated, "created_at": stmt.excluded.created_at},
        )
    )


def latest(conn: sa.Connection, story_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each story's newest summary, an article's before a thread's."""
    ids = [int(i) for i in story_ids]
    if not ids:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT ON (story_id) * FROM summaries WHERE story_id = ANY(:ids) "
            "ORDER BY story_id, kind = 'article' DESC, created_at DESC"
        ),
        {"ids": ids},
    ).mappings()
    return {int(r["story_id"]): dict(r) for r in rows}
