"""Comment threads as DataFrames: items, a story's comments, reading order, and per-story
discussion statistics.

``load_items`` and ``load_comments`` read ``items`` (what the item stream and the
tracker stored); ``thread`` puts one story's comments in reading order;
``discussion_stats`` is pure pandas over ``load_comments``' frame. A comment's
``depth`` is 1 for a reply to the story, 2 for a reply to that, and so on.
A deleted item keeps its place (id, parent, time, ``deleted``) with no text or
author: hnlab erases what HN says is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hnlab.analysis.loaders import _read, _typed

ITEM_TYPES = {
    "id": "int64",
    "type": "string",
    "by": "string",
    "parent": "Int64",
    "story_id": "Int64",
    "title": "string",
    "url": "string",
    "text": "string",
    "score": "Int64",
    "descendants": "Int64",
    "dead": "bool",
    "deleted": "bool",
    "poll": "Int64",
}
ITEM_TIMES = ("time", "first_fetched", "settled_at")
COMMENT_COLUMNS = ["id", "story_id", "parent", "depth", "by", "time", "text", "dead", "deleted"]
COMMENT_TYPES = {
    "id": "int64",
    "story_id": "int64",
    "parent": "int64",
    "depth": "int64",
    "by": "string",
    "text": "string",
    "dead": "bool",
    "deleted": "bool",
}


def load_items(
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    types: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Items created in ``[since, until)``, of ``types`` (e.g. ``["story", "comment"]``),
    or with ``ids``; oldest first.

    Columns: ``id`` (int64), ``type``, ``by``, ``title``, ``url``, ``text`` (HN's HTML
    as given; ``hnlab.hn.text.plain_text`` renders it) (string), ``time``,
    ``first_fetched``, ``settled_at`` (UTC), ``parent``, ``story_id``, ``score``,
    ``descendants``, ``poll`` (Int64, NA where the item has none), ``dead``,
    ``deleted`` (bool), ``parts`` (a list of ids, or None).
    """
    from hnlab.store.tables import items as it

    where: list[Any] = []
    if since is not None:
        where.append(it.c.time >= since)
    if until is not None:
        where.append(it.c.time < until)
    if types is not None:
        where.append(it.c.type.in_(list(types)))
    if ids is not None:
        where.append(it.c.id.in_([int(i) for i in ids]))
    columns = [c for c in it.c if c.name not in ("extra", "version_at", "settle_at", "domain")]
    df = _read(engine, sa.select(*columns).where(*where).order_by(it.c.id))
    return _typed(df, ITEM_TYPES, ITEM_TIMES)


_COMMENTS_SQL = """
    SELECT c.id, c.story_id, c.parent, c."by", c.time, c.text, c.dead, c.deleted,
           s.time AS story_time
      FROM items c LEFT JOIN items s ON s.id = c.story_id
     WHERE c.story_id = ANY(:ids) AND c.type = 'comment'
     ORDER BY c.story_id, c.id
"""


def load_comments(
    story_ids: Iterable[int] | int, engine: sa.Engine | str | None = None
) -> pd.DataFrame:
    """Every comment on ``story_ids``, one row each, by story then id (creation order).

    Columns: ``id``, ``story_id``, ``parent``, ``depth`` (int64; 1 answers the story),
    ``by``, ``text`` (string: plain text, HN's HTML rendered and entities decoded; NA
    when deleted), ``time``, ``story_time`` (UTC), ``dead``, ``deleted`` (bool).
    """
    from hnlab.hn.text import plain_text

    ids = [int(story_ids)] if isinstance(story_ids, int) else [int(i) for i in story_ids]
    df = _read(engine, sa.text(_COMMENTS_SQL).bindparams(ids=ids))
    depth: dict[int, int] = {}
    depths = []
    for cid, parent, story in zip(df["id"], df["parent"], df["story_id"], strict=True):
        # a parent always has a smaller id than its replies (ids follow creation)
        d = 1 if parent == story else depth.get(int(parent), 0) + 1
        depth[int(cid)] = d
        depths.append(d)
    df.insert(3, "depth", pd.Series(depths, index=df.index, dtype="int64"))
    df["text"] = df["text"].map(plain_text, na_action="ignore")
    df = _typed(df, COMMENT_TYPES, ("time", "story_time"))
    return df[[*COMMENT_COLUMNS, "story_time"]]


def thread(story_id: int, engine: sa.Engine | str | None = None) -> pd.DataFrame:
    """One story's comments in reading order (each reply under what it answers, oldest
    first among siblings), with ``depth``; the columns of ``load_comments``."""
    comments = load_comments([story_id], engine)
    return reading_order(comments)


def reading_order(comments: pd.DataFrame) -> pd.DataFrame:
    """``comments`` (one story's, from ``load_comments``) depth first, oldest first."""
    if comments.empty:
        return comments
    kids: dict[int, list[int]] = {}
    for cid, parent in zip(comments["id"], comments["parent"], strict=True):
        kids.setdefault(int(parent), []).append(int(cid))
    present = set(int(i) for i in comments["id"])
    roots = [int(p) for p in kids if p not in present]
    order: list[int] = []
    stack = [c for root in sorted(roots, reverse=True) for c in reversed(kids[root])]
    while stack:
        cid = stack.pop()
        order.append(cid)
        stack.extend(reversed(kids.get(cid, [])))
    position = {cid: n for n, cid in enumerate(order)}
    ranked = comments.assign(_at=comments["id"].map(position)).sort_values("_at")
    return ranked.drop(columns="_at").reset_index(drop=True)


def discussion_stats(comments: pd.DataFrame) -> pd.DataFrame:
    """Per story, from ``load_comments``' frame: ``comments`` (neither dead nor deleted,
    as HN counts them), ``commenters`` (distinct authors), ``max_depth``,
    ``first_comment_minutes`` (from the story's submission; NaN without its time),
    ``comments_first_hour`` and ``top_level_share`` (of the visible comments, the
    share that answer the story). Indexed by ``story_id``."""
    columns = [
        "comments",
        "commenters",
        "max_depth",
        "first_comment_minutes",
        "comments_first_hour",
        "top_level_share",
    ]
    if comments.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="story_id", dtype="int64"))
    shown = comments[~comments["dead"] & ~comments["deleted"]]
    by_story = shown.groupby("story_id")
    out = pd.DataFrame(index=pd.Index(sorted(comments["story_id"].unique()), name="story_id"))
    out["comments"] = by_story.size()
    out["commenters"] = by_story["by"].nunique()
    out["max_depth"] = comments.groupby("story_id")["depth"].max()
    if "story_time" in comments:
        after = (comments["time"] - comments["story_time"]).dt.total_seconds() / 60
        out["first_comment_minutes"] = after.groupby(comments["story_id"]).min()
        early = shown[(shown["time"] - shown["story_time"]) < pd.Timedelta(hours=1)]
        out["comments_first_hour"] = early.groupby("story_id").size()
    else:
        out["first_comment_minutes"] = float("nan")
        out["comments_first_hour"] = 0
    out["top_level_share"] = (shown["depth"] == 1).groupby(shown["story_id"]).mean()
    out = out.fillna({"comments": 0, "commenters": 0, "comments_first_hour": 0})
    return out.astype({"comments": "int64", "commenters": "int64", "comments_first_hour": "int64"})
