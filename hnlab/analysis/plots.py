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
    "plot_attention",
    "plot_bursts",
    "plot_churn",
    "plot_content_outcomes",
    "plot_depths",
    "plot_lifetimes",
    "plot_penalties",
    "plot_reading_time",
    "plot_run_health",
    "plot_score_distribution",
    "plot_score_trajectories",
    "plot_score_vs_comments",
    "plot_story_path",
    "plot_thread_growth",
    "plot_time_to_front_page",
    "plot_top_domains",
    "plot_topics",
    "plot_upvote_rates",
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


def plot_lifetimes(
    lifetimes: pd.DataFrame, ax: Axes | None = None, top: int = 20, freq: str = "1h"
) -> Axes:
    """Time on the front page of the longest-lived stories, as a Gantt-like chart
    (``freq``: the buckets ``front_page_lifetimes`` used)."""
    ax = _axes(ax, (9, 6))
    title = f"Front-page lifetimes (top {top})"
    if lifetimes.empty:
        return _empty(ax, title)
    df = lifetimes.head(top).iloc[::-1]
    start = df["first_seen"]
    width = (df["last_seen"] - df["first_seen"]) + pd.Timedelta(freq)
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


_LIST_COLOURS = {
    "top": "#ff6600",
    "new": "#264653",
    "best": "#2a9d8f",
    "ask": "#e9c46a",
    "show": "#8d5a97",
    "job": "#999999",
}


def plot_story_path(path: pd.DataFrame, title: str = "", axes: Any = None) -> Any:
    """A story's rank on every list (top panel, rank 1 at the top) and its score beside the
    score an average story would have had at the same ranks (bottom panel); ``path`` is
    ``hnlab.analysis.story_path``. Returns the two axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained")
    rank_ax, score_ax = axes
    head = f"Story {title}" if title else "Story path"
    if path.empty:
        _empty(rank_ax, head)
        return axes
    for column in [c for c in path.columns if c.startswith("rank_")]:
        name = column.removeprefix("rank_")
        ranks = path[column].astype("Float64").astype(float)
        rank_ax.plot(path["sampled_at"], ranks, label=name, color=_LIST_COLOURS.get(name), lw=1.2)
    rank_ax.invert_yaxis()
    rank_ax.set(title=head[:90], ylabel="rank (1 = first)")
    rank_ax.legend(fontsize="small", loc="lower right")
    score_ax.plot(path["sampled_at"], path["score"].astype(float), label="score", color="black")
    score_ax.plot(
        path["sampled_at"],
        path["expected_score"],
        label="an average story at these ranks",
        color="#ff6600",
        linestyle="--",
    )
    score_ax.set(ylabel="points")
    score_ax.legend(fontsize="small", loc="upper left")
    _utc_time_axis(score_ax)
    return axes


def plot_attention(
    attention: pd.DataFrame,
    ax: Axes | None = None,
    naive: pd.DataFrame | None = None,
    truth: Any = None,
) -> Axes:
    """Upvote share by rank (of page one's total), log scale; ``naive`` (the per-rank
    average) and ``truth`` (a list of shares, rank 1 first) are drawn beside it."""
    ax = _axes(ax)
    name = attention.attrs.get("list", "top")
    title = f"Attention by rank on {name}"
    if attention.empty:
        return _empty(ax, title)
    ax.plot(attention["rank"], attention["share"], marker=".", color="#ff6600", label="estimate")
    if naive is not None and not naive.empty:
        ax.plot(naive["rank"], naive["share"], color="#999999", lw=1, label="naive average")
    if truth is not None:
        ax.plot(range(1, len(truth) + 1), truth, color="black", lw=1, ls=":", label="truth")
    for page_end in (30.5, 60.5):
        if attention["rank"].max() > page_end:
            ax.axvline(page_end, color="#cccccc", lw=0.8)
    ax.set_yscale("log")
    # at most four decades below the largest share: deep ranks on a short window get
    # almost no votes, and a log axis down to them would flatten page one
    shares = attention["share"].astype(float)
    positive = shares[shares > 0]
    if not positive.empty:
        top = float(positive.max())
        ax.set_ylim(bottom=max(float(positive.min()), top * 1e-4) / 2, top=top * 2)
    ax.set(title=title, xlabel="rank", ylabel="share of page one's upvotes")
    ax.legend(fontsize="small")
    return ax


def plot_upvote_rates(rates: pd.DataFrame, ax: Axes | None = None, min_upvotes: int = 10) -> Axes:
    """Distribution of upvote rates (log scale) of stories with at least ``min_upvotes``."""
    import numpy as np

    ax = _axes(ax)
    title = f"Upvote rates (stories with >= {min_upvotes} upvotes)"
    chosen = rates.loc[rates["upvotes"] >= min_upvotes, "upvote_rate"].astype(float)
    chosen = chosen[chosen > 0]
    if chosen.empty:
        return _empty(ax, title)
    bins = np.logspace(np.log10(chosen.min()) - 0.05, np.log10(chosen.max()) + 0.05, 30)
    ax.hist(chosen, bins=bins.tolist(), color="#2a9d8f", edgecolor="white")
    ax.axvline(1.0, color="black", linestyle="--", label="an average story")
    ax.set_xscale("log")
    ax.set(title=title, xlabel="upvote rate (actual / expected, log scale)", ylabel="stories")
    ax.legend(fontsize="small")
    return ax


def plot_penalties(events: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Penalty events over time: each story's first event, by severity (log scale)."""
    ax = _axes(ax)
    title = "Stories ranked below their score and age"
    if events.empty:
        return _empty(ax, title)
    first = events.sort_values("sampled_at").groupby("hn_id").head(1)
    below = first["rank"].isna()
    finite = first["severity"].clip(upper=100.0)
    ax.scatter(
        first.loc[~below, "sampled_at"],
        finite[~below],
        color="#e76f51",
        label="ranked low",
        s=18,
    )
    ax.scatter(
        first.loc[below, "sampled_at"],
        finite[below],
        color="#264653",
        marker="v",
        label="fell below the tracked ranks",
        s=18,
    )
    ax.set_yscale("log")
    ax.set(title=title, ylabel="severity (formula value / value of its place)")
    ax.legend(fontsize="small")
    _utc_time_axis(ax)
    return ax


def plot_time_to_front_page(times: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Minutes from ``new`` to the front page, for the stories that made it."""
    ax = _axes(ax)
    title = "Time from new to the front page"
    reached = times.loc[times["reached"], "minutes"].astype(float)
    if reached.empty:
        return _empty(ax, title)
    share = len(reached) / len(times)
    ax.hist(reached, bins=30, color="#264653", edgecolor="white")
    ax.axvline(reached.median(), color="#ff6600", linestyle="--", label="median")
    ax.set(
        title=f"{title}: {len(reached)} of {len(times)} stories ({share:.0%})",
        xlabel="minutes",
        ylabel="stories",
    )
    ax.legend(fontsize="small")
    return ax


def plot_bursts(bursts: pd.DataFrame, ax: Axes | None = None, top: int = 15) -> Axes:
    """The ``top`` strongest bursts on a timeline: one bar per burst from its start to its
    end, labelled with its term and how many stories carried it (UTC)."""
    title = "Bursts: terms rising over their own baseline"
    ax = _axes(ax, (9, 0.9 + 0.35 * min(top, max(len(bursts), 1))))
    if bursts.empty:
        return _empty(ax, title)
    shown = bursts.head(top).sort_values("start", ascending=False).reset_index(drop=True)
    for y, row in enumerate(shown.to_dict("records")):
        ax.barh(
            y,
            row["end"] - row["start"],
            left=row["start"],
            height=0.6,
            color="#ff6600",
            alpha=0.85,
        )
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([f"{r.term} ({r.count})" for r in shown.itertuples()])
    _utc_time_axis(ax)
    ax.set(title=title, xlabel="time (UTC)")
    return ax


def plot_topics(over_time: pd.DataFrame, ax: Axes | None = None, top: int = 8) -> Axes:
    """Stories per period of the ``top`` largest topics, stacked (``topics().over_time``)."""
    title = "Topics over time"
    ax = _axes(ax)
    if over_time.empty:
        return _empty(ax, title)
    sizes = over_time.groupby("name")["count"].sum().nlargest(top)
    wide = (
        over_time[over_time["name"].isin(sizes.index)]
        .pivot_table(index="period", columns="name", values="count", aggfunc="sum", fill_value=0)
        .reindex(columns=sizes.index)
    )
    ax.stackplot(wide.index, wide.to_numpy().T, labels=list(wide.columns), alpha=0.85)
    _utc_time_axis(ax)
    ax.set(title=title, xlabel="time (UTC)", ylabel="stories")
    ax.legend(fontsize="x-small", loc="upper left", ncols=2)
    return ax


def plot_thread_growth(
    comments: pd.DataFrame, ranks: pd.DataFrame, title: str = "", axes: Any = None
) -> Any:
    """One story's thread beside its climb: visible comments so far (top panel) and its
    rank on ``top`` (bottom panel, rank 1 at the top). ``comments`` is the story's rows
    of ``load_comments``, ``ranks`` its rows of ``load_ranks``. Returns the two axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True, layout="constrained")
    count_ax, rank_ax = axes
    head = f"Thread of {title}"[:90] if title else "Thread growth"
    if comments.empty:
        _empty(count_ax, head)
        return axes
    shown = comments[~comments["dead"] & ~comments["deleted"]].sort_values("time")
    count_ax.step(shown["time"], range(1, len(shown) + 1), where="post", color="black")
    count_ax.set(title=head, ylabel="comments so far")
    top = ranks[ranks["list"] == "top"].sort_values("sampled_at")
    rank_ax.plot(top["sampled_at"], top["rank"], color=_LIST_COLOURS.get("top"), lw=1.2)
    rank_ax.invert_yaxis()
    rank_ax.set(ylabel="rank on top (1 = first)")
    _utc_time_axis(rank_ax)
    return axes


def plot_depths(comments: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """How many comments sit at each depth (1 answers the story), over ``comments``."""
    ax = _axes(ax)
    title = "Comments by depth"
    if comments.empty:
        return _empty(ax, title)
    counts = comments["depth"].value_counts().sort_index()
    ax.bar(counts.index.astype(int), counts.to_numpy(), color="#ff6600")
    ax.set(title=title, xlabel="depth (1 = a reply to the story)", ylabel="comments")
    ax.set_yscale("log")
    return ax


OUTCOME_COLOURS = {
    "ok": "#ff6600",
    "not_article": "#c9a227",
    "robots_disallowed": "#6a8caf",
    "http_error": "#b03a2e",
    "timeout": "#7d3c98",
    "too_large": "#1e8449",
    "unsupported_type": "#5d6d7e",
    "blocked_address": "#000000",
    "error": "#aab7b8",
}


def plot_content_outcomes(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Fetches per domain, stacked by outcome (``analysis.outcomes_by_domain``)."""
    ax = _axes(ax, (9, 5))
    title = "What fetching each domain's links came to"
    if table.empty:
        return _empty(ax, title)
    df = table.drop(columns="ok_share", errors="ignore").iloc[::-1]
    left = pd.Series(0.0, index=df.index)
    for outcome in df.columns:
        values = df[outcome].astype(float)
        ax.barh(
            df.index.astype(str),
            values,
            left=left,
            label=outcome,
            color=OUTCOME_COLOURS.get(str(outcome), "#999999"),
        )
        left = left + values
    ax.set(title=title, xlabel="stories", ylabel="domain")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_reading_time(contents: pd.DataFrame, axes: Any = None) -> Any:
    """Reading time of each extracted article against its story's score and comments
    (log scales), from ``analysis.load_contents``."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    ok = contents[contents["outcome"] == "ok"]
    for ax, column in zip(axes, ("score", "comments"), strict=True):
        title = f"Reading time against {column}"
        pair = ok[["reading_minutes", column]].dropna().astype("float64")
        if pair.empty:
            _empty(ax, title)
            continue
        ax.scatter(pair["reading_minutes"], pair[column] + 1, s=12, alpha=0.6, color="#ff6600")
        ax.set(title=title, xlabel="reading minutes (238 words a minute)", ylabel=f"{column} + 1")
        ax.set_xscale("log")
        ax.set_yscale("log")
    return axes
