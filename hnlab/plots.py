"""matplotlib charts: each ``plot_*(df, ax=None) -> Axes``, titled, labelled, UTC time axes.

They draw on ``ax`` (or a new figure's axes) and never call ``plt.show()``; the
notebook or the report decides how to show them. Inputs are the frames from
``hnlab.analysis``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_churn",
    "plot_lifetimes",
    "plot_run_health",
    "plot_score_distribution",
    "plot_score_trajectories",
    "plot_score_vs_comments",
    "plot_top_domains",
]


def _axes(ax: Axes | None, size: tuple[float, float] = (9, 4)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _utc_time_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def _empty(ax: Axes, title: str) -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    return ax


def plot_score_distribution(
    posts: pd.DataFrame, ax: Axes | None = None, threshold: int | None = 50
) -> Axes:
    """Histogram of post scores on log-spaced bins, with the collection threshold marked."""
    import numpy as np

    ax = _axes(ax)
    title = "Score distribution of collected posts"
    scores = posts["score"].dropna().astype(float)
    scores = scores[scores > 0]
    if scores.empty:
        return _empty(ax, title)
    low, high = np.log10(scores.min()), np.log10(max(scores.max(), 10))
    bins = np.logspace(low - 0.05, high + 0.05, 30).tolist()
    ax.hist(scores, bins=bins, color="#ff6600", edgecolor="white")
    ax.set_xscale("log")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold ({threshold})")
        ax.legend()
    ax.set(title=title, xlabel="score (points, log scale)", ylabel="posts")
    return ax


def plot_score_vs_comments(posts: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Score against comment count, one dot per post, log-log, coloured by post type."""
    ax = _axes(ax, (7, 5))
    title = "Score versus comments"
    df = posts[(posts["score"] > 0) & (posts["comment_count"] > 0)]
    if df.empty:
        return _empty(ax, title)
    for kind, group in df.groupby("type", observed=True):
        ax.scatter(
            group["comment_count"].astype(float),
            group["score"].astype(float),
            s=12,
            alpha=0.6,
            label=str(kind),
        )
    ax.set(xscale="log", yscale="log", title=title, xlabel="comments", ylabel="score (points)")
    ax.legend(title="type")
    return ax


def plot_churn(churn: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Stories entering and leaving the front page per bucket, and the churn rate."""
    ax = _axes(ax)
    title = "Front-page churn per hour"
    if churn.empty:
        return _empty(ax, title)
    x = churn.index
    ax.bar(
        x, churn["entered"].fillna(0).astype(float), width=0.03, label="entered", color="#2a9d8f"
    )
    ax.bar(x, -churn["exited"].fillna(0).astype(float), width=0.03, label="exited", color="#e76f51")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set(title=title, ylabel="stories (entered up, exited down)")
    rate = ax.twinx()
    rate.plot(x, churn["churn_rate"].astype(float), color="black", linewidth=1, label="churn rate")
    rate.set_ylabel("churn rate (exited / previous page)")
    rate.set_ylim(0, 1)
    ax.legend(loc="upper left")
    _utc_time_axis(ax)
    return ax


def plot_score_trajectories(
    snapshots: pd.DataFrame,
    ax: Axes | None = None,
    top: int = 8,
    titles: dict[Any, str] | None = None,
) -> Axes:
    """Score over time of the ``top`` stories with the highest peak score."""
    ax = _axes(ax)
    title = f"Score trajectories of the top {top} stories"
    df = snapshots[snapshots["score"].notna()]
    if df.empty:
        return _empty(ax, title)
    best = df.groupby("hn_id")["score"].max().nlargest(top).index
    for hn_id in best:
        one = df[df["hn_id"] == hn_id].sort_values("observed_at")
        label = (titles or {}).get(hn_id, str(hn_id))
        ax.plot(one["observed_at"], one["score"].astype(float), marker=".", label=label[:40])
    ax.set(title=title, ylabel="score (points)")
    ax.legend(fontsize="small", loc="upper left")
    _utc_time_axis(ax)
    return ax


def plot_lifetimes(lifetimes: pd.DataFrame, ax: Axes | None = None, top: int = 20) -> Axes:
    """Time on the front page of the longest-lived stories, as a Gantt-like chart."""
    ax = _axes(ax, (9, 6))
    title = f"Front-page lifetimes (top {top})"
    if lifetimes.empty:
        return _empty(ax, title)
    df = lifetimes.head(top).iloc[::-1]
    start = df["first_seen"]
    width = (df["last_seen"] - df["first_seen"]) + pd.Timedelta("1h")
    ax.barh([str(i) for i in df.index], width, left=start, color="#264653")
    ax.set(title=title, ylabel="story (hn_id)")
    _utc_time_axis(ax)
    return ax


def plot_top_domains(domains: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Posts per domain, most first."""
    ax = _axes(ax, (8, 5))
    title = "Top domains by collected posts"
    if domains.empty:
        return _empty(ax, title)
    df = domains.iloc[::-1]
    ax.barh(df.index.astype(str), df["posts"].astype(float), color="#ff6600")
    ax.set(title=title, xlabel="posts", ylabel="domain")
    return ax


def plot_run_health(health: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Per run: posts saved and duplicates (stacked), failures marked, success rate line."""
    ax = _axes(ax)
    title = "Run health"
    if health.empty:
        return _empty(ax, title)
    x = health["started_at"]
    saved = health["posts_saved"].fillna(0).astype(float)
    dups = health["duplicates_skipped"].fillna(0).astype(float)
    ax.bar(x, saved, width=0.03, label="saved", color="#2a9d8f")
    ax.bar(x, dups, bottom=saved, width=0.03, label="duplicates", color="#a8dadc")
    failed = health[health["status"] != "succeeded"]
    if not failed.empty:
        ax.scatter(
            failed["started_at"],
            [0] * len(failed),
            marker="x",
            color="red",
            label="failed or skipped",
            zorder=3,
        )
    ax.set(title=title, ylabel="posts per run")
    ax.set_ylim(0, (saved + dups).max() * 1.25 or 1)  # headroom for the legend
    rate = ax.twinx()
    rate.plot(x, health["success_rate"].astype(float), color="black", linewidth=1)
    rate.set(ylim=(0, 1.05), ylabel="success rate (last 24 runs)")
    ax.legend(loc="upper left")
    _utc_time_axis(ax)
    return ax
