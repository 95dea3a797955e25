"""hnlab.analysis: the collected data as pandas DataFrames, and the metrics behind every chart.

``loaders`` reads PostgreSQL and RocksDB, ``metrics`` computes from the frames,
``discussions`` reads and measures comment threads,
``contents`` what the stories link to (``load_contents``, ``search``),
``ranking`` holds the ranking research, ``trends`` what is rising (terms,
bursts, topics), ``summaries`` summaries that cite their sources, ``plots``
draws (``from hnlab import plots``).
Light to import: each name loads its module on first use, so neither
``import hnlab.analysis`` nor the papermill child (``hnlab.analysis.execute``)
loads pandas, httpx, apscheduler or rocksdict before a function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hnlab.analysis.contents import (
        load_contents,
        outcomes_by_domain,
        reading_vs_engagement,
        search,
    )
    from hnlab.analysis.discussions import (
        discussion_stats,
        load_comments,
        load_items,
        thread,
    )
    from hnlab.analysis.loaders import (
        collection_summary,
        engine,
        latest_observation,
        load_metadata,
        load_posts,
        load_ranks,
        load_runs,
        load_snapshots,
        load_stories,
        load_titles,
        window,
    )
    from hnlab.analysis.metrics import (
        front_page_churn,
        front_page_lifetimes,
        reconcile,
        run_health,
        run_summary,
        score_velocity,
        top_domains,
    )
    from hnlab.analysis.ranking import (
        as_snapshots,
        attention_by_rank,
        attention_curves,
        naive_attention_by_rank,
        rank_penalties,
        story_path,
        time_to_front_page,
        top_gainers,
        upvote_rate,
    )
    from hnlab.analysis.summaries import check_citations, summarize
    from hnlab.analysis.trends import bursts, term_trends, topics

_HOMES = {
    "load_contents": "contents",
    "outcomes_by_domain": "contents",
    "reading_vs_engagement": "contents",
    "search": "contents",
    "discussion_stats": "discussions",
    "load_comments": "discussions",
    "load_items": "discussions",
    "thread": "discussions",
    "check_citations": "summaries",
    "summarize": "summaries",
    "bursts": "trends",
    "term_trends": "trends",
    "topics": "trends",
    "as_snapshots": "ranking",
    "attention_by_rank": "ranking",
    "attention_curves": "ranking",
    "collection_summary": "loaders",
    "engine": "loaders",
    "front_page_churn": "metrics",
    "front_page_lifetimes": "metrics",
    "latest_observation": "loaders",
    "load_metadata": "loaders",
    "load_posts": "loaders",
    "load_ranks": "loaders",
    "load_runs": "loaders",
    "load_snapshots": "loaders",
    "load_stories": "loaders",
    "load_titles": "loaders",
    "naive_attention_by_rank": "ranking",
    "rank_penalties": "ranking",
    "reconcile": "metrics",
    "run_health": "metrics",
    "run_summary": "metrics",
    "score_velocity": "metrics",
    "story_path": "ranking",
    "time_to_front_page": "ranking",
    "top_domains": "metrics",
    "top_gainers": "ranking",
    "upvote_rate": "ranking",
    "window": "loaders",
}
__all__ = [
    "as_snapshots",
    "attention_by_rank",
    "attention_curves",
    "bursts",
    "check_citations",
    "collection_summary",
    "discussion_stats",
    "engine",
    "front_page_churn",
    "front_page_lifetimes",
    "latest_observation",
    "load_comments",
    "load_contents",
    "load_items",
    "load_metadata",
    "load_posts",
    "load_ranks",
    "load_runs",
    "load_snapshots",
    "load_stories",
    "load_titles",
    "naive_attention_by_rank",
    "outcomes_by_domain",
    "rank_penalties",
    "reading_vs_engagement",
    "reconcile",
    "run_health",
    "run_summary",
    "score_velocity",
    "search",
    "story_path",
    "summarize",
    "term_trends",
    "thread",
    "time_to_front_page",
    "top_domains",
    "top_gainers",
    "topics",
    "upvote_rate",
    "window",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hnlab.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hnlab.analysis.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
