"""The metrics behind the charts: pure pandas on the frames the loaders return.

No database and no I/O here: each function takes DataFrames and returns one, so
a notebook or a test can feed it hand-made frames.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = [
    "front_page_churn",
    "front_page_lifetimes",
    "reconcile",
    "run_health",
    "run_summary",
    "score_velocity",
    "top_domains",
]


def reconcile(posts: pd.DataFrame, metadata: pd.DataFrame) -> pd.DataFrame:
    """One row per hn_id in either source: ``in_postgres``, ``in_cache`` and ``state``.

    ``state`` is ``ok`` (in both), ``missing_from_cache`` or ``only_in_cache``.
    """
    left = pd.DataFrame({"hn_id": posts["hn_id"].astype("Int64"), "in_postgres": True})
    right = pd.DataFrame({"hn_id": metadata["hn_id"].astype("Int64"), "in_cache": True})
    both = left.merge(right, on="hn_id", how="outer")
    both["in_postgres"] = both["in_postgres"].astype("boolean").fillna(False)
    both["in_cache"] = both["in_cache"].astype("boolean").fillna(False)
    state = pd.Series("ok", index=both.index, dtype="string")
    state[~both["in_cache"]] = "missing_from_cache"
    state[~both["in_postgres"]] = "only_in_cache"
    both["state"] = state.astype("category")
    return both.sort_values("hn_id", ignore_index=True)


def _front_page(snapshots: pd.DataFrame, top_n: int, freq: str) -> pd.DataFrame:
    """(bucket, hn_id) pairs on the top N, using the last run in each bucket."""
    top = snapshots.loc[snapshots["rank"] <= top_n, ["run_id", "hn_id", "observed_at"]].copy()
    top["bucket"] = top["observed_at"].dt.floor(freq)
    last_run = top.groupby("bucket")["run_id"].transform("max")
    return top.loc[top["run_id"] == last_run, ["bucket", "hn_id"]].drop_duplicates()


def front_page_churn(snapshots: pd.DataFrame, top_n: int = 30, freq: str = "1h") -> pd.DataFrame:
    """Per time bucket, how the top ``top_n`` changed since the bucket before.

    Definition: the front page of a bucket (``observed_at`` floored to ``freq``,
    UTC) is the set S of stories at rank <= ``top_n`` in the bucket's last run.
    ``entered`` = |S(t) minus S(t-1)|, ``exited`` = |S(t-1) minus S(t)|,
    ``retained`` = |S(t) and S(t-1)| and ``churn_rate`` = exited / |S(t-1)|. When the previous
    bucket has no run (a gap), those four are missing (<NA>), not zero.
    """
    page = _front_page(snapshots, top_n, freq)
    columns = ["stories", "entered", "exited", "retained", "churn_rate"]
    if page.empty:
        return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="bucket"))
    step = pd.Timedelta(freq)
    sizes = page.groupby("bucket").size().rename("stories")
    prev = page.assign(bucket=page["bucket"] + step)
    kept = page.merge(prev, on=["bucket", "hn_id"]).groupby("bucket").size()
    out = sizes.to_frame()
    out["retained"] = kept.reindex(out.index, fill_value=0)
    prev_sizes = sizes.reindex(pd.DatetimeIndex(out.index) - step)
    prev_sizes.index = out.index
    has_prev = prev_sizes.notna()
    out["entered"] = (out["stories"] - out["retained"]).where(has_prev)
    out["exited"] = (prev_sizes - out["retained"]).where(has_prev)
    out["retained"] = out["retained"].where(has_prev)
    out["churn_rate"] = (out["exited"] / prev_sizes).astype("Float64")
    for column in ("stories", "entered", "exited", "retained"):
        out[column] = out[column].astype("Int64")
    out.index.name = "bucket"
    return out[columns]


def front_page_lifetimes(
    snapshots: pd.DataFrame, top_n: int = 30, freq: str = "1h"
) -> pd.DataFrame:
    """For each story that reached the top ``top_n``: when, for how long, how high.

    ``first_seen``/``last_seen`` are the first and last buckets (UTC) it was on
    the top N, ``hours_on_top`` the number of buckets it was there (gaps not
    counted), and ``peak_rank`` its best rank. Longest-lived first.
    """
    top = snapshots.loc[snapshots["rank"] <= top_n].copy()
    top["bucket"] = top["observed_at"].dt.floor(freq)
    grouped = top.groupby("hn_id")
    out = pd.DataFrame(
        {
            "first_seen": grouped["bucket"].min(),
            "last_seen": grouped["bucket"].max(),
            "hours_on_top": grouped["bucket"].nunique().astype("Int64")
            * (pd.Timedelta(freq) / pd.Timedelta("1h")),
            "peak_rank": grouped["rank"].min().astype("Int64"),
        }
    )
    out["hours_on_top"] = out["hours_on_top"].astype("Float64")
    return out.sort_values(["hours_on_top", "peak_rank"], ascending=[False, True])


def score_velocity(
    snapshots: pd.DataFrame, posts: pd.DataFrame, hours: float = 6.0
) -> pd.DataFrame:
    """Points per hour of each story in its first ``hours`` hours.

    Definition: for each story in ``posts``, take its snapshots observed at most
    ``hours`` after ``created_at``; ``points_per_hour`` = the score at the last of
    those observations / the story's age then (hours). Stories first seen later
    than ``hours`` after submission are left out. Fastest first.
    """
    merged = snapshots[["hn_id", "score", "observed_at"]].merge(
        posts[["hn_id", "title", "created_at"]], on="hn_id"
    )
    merged["age_h"] = (merged["observed_at"] - merged["created_at"]).dt.total_seconds() / 3600
    early = merged[(merged["age_h"] > 0) & (merged["age_h"] <= hours) & merged["score"].notna()]
    last = early.sort_values("observed_at").groupby("hn_id").tail(1).copy()
    last["points_per_hour"] = (last["score"].astype("Float64") / last["age_h"]).round(2)
    out = last[["hn_id", "title", "age_h", "score", "points_per_hour"]]
    out = out.assign(age_h=out["age_h"].round(2).astype("Float64"))
    return out.sort_values("points_per_hour", ascending=False, ignore_index=True)


def top_domains(posts: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The ``n`` domains with the most stored posts (self-posts have none and are left out).

    Columns: ``posts``, ``total_score``, ``median_score``; ties broken by total score.
    """
    linked = posts[posts["domain"].notna()]
    grouped = linked.groupby("domain", observed=True)["score"]
    out = pd.DataFrame(
        {
            "posts": grouped.size().astype("Int64"),
            "total_score": grouped.sum().astype("Int64"),
            "median_score": grouped.median().astype("Float64"),
        }
    )
    out.index = out.index.astype("string")
    return out.sort_values(["posts", "total_score"], ascending=False).head(n)


def run_health(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: when, status, duration, saved versus duplicates, errors.

    ``succeeded`` is a boolean; ``success_rate`` is the share of succeeded runs
    among the last 24 runs up to and including this one.
    """
    out = runs[
        [
            "id",
            "started_at",
            "trigger",
            "status",
            "duration_s",
            "posts_saved",
            "duplicates_skipped",
            "errors",
        ]
    ].copy()
    out["succeeded"] = (out["status"] == "succeeded").astype("boolean")
    out["success_rate"] = out["succeeded"].astype("Float64").rolling(24, min_periods=1).mean()
    return out.reset_index(drop=True)


def run_summary(runs: pd.DataFrame) -> dict[str, Any]:
    """Counts by status, the success rate and the median duration of ``runs``."""
    counts = runs["status"].value_counts()
    total = len(runs)
    succeeded = int(counts.get("succeeded", 0))
    durations = runs["duration_s"].dropna()
    return {
        "runs": total,
        "succeeded": succeeded,
        "failed": int(counts.get("failed", 0)),
        "skipped": int(counts.get("skipped", 0)),
        "success_rate": round(succeeded / total, 3) if total else None,
        "median_duration_s": round(float(durations.median()), 3) if len(durations) else None,
    }
