"""hnlab.analysis: the collected data as pandas DataFrames, and the metrics behind every chart.

Light to import: the names load from their modules on first use, so neither
``import hnlab.analysis`` nor the papermill child (``hnlab.analysis.execute``)
loads pandas, httpx, apscheduler or rocksdict before a function needs them.
``hnlab.plots`` draws what these functions return.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "as_snapshots",
    "attention_by_rank",
    "attention_curves",
    "collection_summary",
    "engine",
    "front_page_churn",
    "front_page_lifetimes",
    "latest_observation",
    "load_metadata",
    "load_posts",
    "load_ranks",
    "load_runs",
    "load_snapshots",
    "load_stories",
    "naive_attention_by_rank",
    "rank_penalties",
    "reconcile",
    "run_health",
    "run_summary",
    "score_velocity",
    "story_path",
    "time_to_front_page",
    "top_domains",
    "top_gainers",
    "upvote_rate",
    "window",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'hnlab.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module("hnlab.analysis.loaders"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
