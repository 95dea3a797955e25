"""Ranking research on the minute tracker's data: attention, upvote rates, penalties.

Every function takes the frames of ``hnlab.analysis.load_ranks`` and
``load_stories`` and returns a DataFrame; ``hnlab.analysis`` re-exports them.
Their definitions are in their docstrings; ``scripts/eval_ranking.py`` measures
them against a simulated world whose truth is known.

The data are the score increments between a story's consecutive observations.
An *interval* is a pair of observations of one story at consecutive ticks of the
data (ticks are the distinct ``sampled_at`` values), at most two tick steps apart
(one missed tick is bridged, longer gaps are not: nothing is interpolated across
them). A story that leaves a list and comes back has no interval across its
absence. An interval whose score went down (HN removed votes, e.g. a voting
ring) is left out.

One thing, hence its length: every estimator here stands on the same interval
model (``_intervals``) and the same fit (``_fit``); split, each half would reach
into the other's internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ATTENTION_LISTS = ("top", "new")


@dataclass
class _Intervals:
    """Each interval's story, hour of day, length, increment and its ranks on each list
    at both ends (0 = not on the list's tracked ranks)."""

    story: np.ndarray  # index into ``ids``
    ids: np.ndarray
    hour: np.ndarray
    minutes: np.ndarray
    upvotes: np.ndarray
    ranks: dict[str, tuple[np.ndarray, np.ndarray]]  # list -> (rank at start, rank at end)
    step: float  # the ticks' usual spacing, minutes
    ended: np.ndarray  # when each interval ends (datetime64, UTC)


def _intervals(
    ranks: pd.DataFrame, lists: Sequence[str], *, corrections: bool = False
) -> _Intervals:
    obs = ranks.loc[ranks["list"].isin(list(lists)) & ranks["score"].notna()]
    obs = obs[["sampled_at", "list", "rank", "hn_id", "score"]]
    wide = obs.pivot_table(
        index=["hn_id", "sampled_at"], columns="list", values="rank", aggfunc="min", observed=True
    )
    wide = wide.reindex(columns=list(lists)).fillna(0).astype("int64")
    score = obs.groupby(["hn_id", "sampled_at"])["score"].max()
    wide["score"] = score.reindex(wide.index).to_numpy(dtype="float64")
    ticks = np.sort(ranks["sampled_at"].unique())
    tick_no = pd.Series(np.arange(len(ticks)), index=pd.DatetimeIndex(ticks))
    diffs = np.diff(ticks).astype("timedelta64[s]").astype(float) / 60
    step = float(np.median(diffs)) if len(diffs) else 1.0
    wide = wide.reset_index()
    n = tick_no.reindex(pd.DatetimeIndex(wide["sampled_at"])).to_numpy()
    at = wide["sampled_at"]
    same = (wide["hn_id"].to_numpy()[1:] == wide["hn_id"].to_numpy()[:-1]) & (np.diff(n) == 1)
    minutes = np.diff(at.to_numpy()).astype("timedelta64[s]").astype(float) / 60
    up = np.diff(wide["score"].to_numpy())
    keep = same & (minutes <= 2 * step + 1e-9) & ((up >= 0) | corrections)
    first = np.flatnonzero(keep)
    ids, story = np.unique(wide["hn_id"].to_numpy()[first], return_inverse=True)
    hours = pd.DatetimeIndex(at.iloc[first]).hour.to_numpy()
    return _Intervals(
        story=story,
        ids=ids,
        hour=hours,
        minutes=minutes[first],
        upvotes=up[first],
        ranks={
            name: (wide[name].to_numpy()[first], wide[name].to_numpy()[first + 1]) for name in lists
        },
        step=step,
        ended=at.to_numpy()[first + 1],
    )


@dataclass
class _Fit:
    curve: dict[str, np.ndarray]  # list -> attention per rank (index 0 = rank 1)
    counts: dict[str, np.ndarray]
    voted: dict[str, np.ndarray]  # list -> upvotes attributed to each rank
    hourly: np.ndarray  # 24 factors, mean 1 over the hours seen
    quality: np.ndarray  # per story of ``data.ids``
    data: _Intervals


def _components(data: _Intervals) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Flatten each interval into (list, rank) halves: which interval, list, rank."""
    k, which, rank = [], [], []
    idx = np.arange(len(data.story))
    for li, ends in enumerate(data.ranks.values()):
        for end in ends:
            on = end > 0
            k.append(idx[on])
            which.append(np.full(on.sum(), li))
            rank.append(end[on])
    return list(data.ranks), np.concatenate(k), np.concatenate(which), np.concatenate(rank)


def _non_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-increasing fit of ``values`` (pool adjacent
    violators); entries of weight 0 take their left neighbour's value. For Poisson
    rates with their exposures as weights this is the maximum-likelihood fit under
    the order, so a rank with few observations borrows from its neighbours instead of
    running towards zero."""
    seen = np.flatnonzero(weights > 0)
    out = values.copy()
    if len(seen) == 0:
        return out
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for at in seen:
        blocks.append([values[at] * weights[at], weights[at], 1])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]):
            total, weight, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += count
    fitted = np.repeat([b[0] / b[1] for b in blocks], [int(b[2]) for b in blocks])
    out[seen] = fitted
    last = fitted[0]
    for j in range(len(out)):  # unobserved ranks: no information, keep the order
        if weights[j] > 0:
            last = out[j]
        else:
            out[j] = last
    return out


def _fit(data: _Intervals, iterations: int = 200, tol: float = 1e-7) -> _Fit:
    """Poisson maximum likelihood of upvotes = quality x hour x attention(rank), by EM."""
    names, k, li, r = _components(data)
    max_rank = int(r.max()) if len(r) else 1
    cell = li * (max_rank + 1) + r  # one attention parameter per (list, rank)
    n_cells = len(names) * (max_rank + 1)
    weight = data.minutes[k] / 2  # each end of an interval stands for half of it
    s = data.story[k]
    h = data.hour[k]
    att = np.ones(n_cells)
    q = np.ones(len(data.ids))
    hourly = np.ones(24)
    y = data.upvotes
    for _ in range(iterations):
        lam = q[s] * hourly[h] * att[cell] * weight
        total = np.bincount(k, weights=lam, minlength=len(y))
        share = np.divide(lam, total[k], out=np.zeros_like(lam), where=total[k] > 0)
        yc = y[k] * share  # each interval's upvotes, split over its halves
        base = hourly[h] * weight
        exposed = np.bincount(cell, weights=q[s] * base, minlength=n_cells)
        new_att = np.bincount(cell, weights=yc, minlength=n_cells) / np.maximum(exposed, 1e-12)
        for i in range(len(names)):  # attention never rises with rank: the constrained MLE
            ranks = slice(i * (max_rank + 1) + 1, (i + 1) * (max_rank + 1))
            new_att[ranks] = _non_increasing(new_att[ranks], exposed[ranks])
        exposure = np.bincount(s, weights=new_att[cell] * base, minlength=len(q))
        q = np.bincount(s, weights=yc, minlength=len(q)) / np.maximum(exposure, 1e-12)
        seen_h = np.bincount(h, weights=q[s] * new_att[cell] * weight, minlength=24)
        hourly = np.where(
            seen_h > 0, np.bincount(h, weights=yc, minlength=24) / np.maximum(seen_h, 1e-12), 0
        )
        scale = hourly[seen_h > 0].mean() if (seen_h > 0).any() else 1.0
        hourly /= scale
        new_att *= scale
        mean_q = q.mean() if len(q) else 1.0
        q /= mean_q
        new_att *= mean_q
        change = np.max(np.abs(new_att - att)) / max(new_att.max(), 1e-12)
        att = new_att
        if change < tol:
            break
    counts = np.bincount(cell, minlength=n_cells)
    voted = np.bincount(cell, weights=y[k] * share, minlength=n_cells)

    def per_list(values: np.ndarray) -> dict[str, np.ndarray]:
        return {
            n: values[i * (max_rank + 1) + 1 : (i + 1) * (max_rank + 1)]
            for i, n in enumerate(names)
        }

    return _Fit(per_list(att), per_list(counts), per_list(voted), hourly, q, data)


def _curve_frame(fit: _Fit, name: str) -> pd.DataFrame:
    per_min, n = fit.curve[name], fit.counts[name]
    # The deepest ranks that together drew less than one upvote only bound the attention
    # (its estimate runs towards zero): they are left out, not reported as ~0.
    tail = np.cumsum(fit.voted[name][::-1])[::-1]
    enough = np.flatnonzero(tail >= 1)
    last = enough[-1] if len(enough) else -1
    seen = np.flatnonzero((n > 0) & (np.arange(len(n)) <= last))
    front = per_min[: min(30, len(per_min))].sum()
    out = pd.DataFrame(
        {
            "rank": (seen + 1).astype("int64"),
            "upvotes_per_min": per_min[seen],
            "share": per_min[seen] / front if front > 0 else np.nan,
            "n": n[seen].astype("int64"),
        }
    )
    out.attrs["list"] = name
    out.attrs["hourly"] = fit.hourly.tolist()
    return out


def attention_by_rank(
    ranks: pd.DataFrame, list: str = "top", *, lists: Sequence[str] = ATTENTION_LISTS
) -> pd.DataFrame:
    """For each rank of ``list``: the upvotes per minute an average story receives there.

    Columns: ``rank``, ``upvotes_per_min`` (an average story, at an average hour of the
    day), ``share`` (of ranks 1-30 together, so page one sums to 1) and ``n`` (interval
    halves observed at that rank).

    How rank is told apart from quality: averaging the increments per rank is biased,
    because better stories hold the top ranks. Instead the upvotes of each interval are
    modelled as Poisson with mean ``quality[story] x hourly[hour of day] x sum over lists of
    attention[list, rank]`` times its length, where each end of the interval stands for half
    of it at the rank held then. The maximum-likelihood fit (EM, which splits each
    interval's upvotes over its halves) follows each story through the ranks it held, so a
    story's own quality cancels out of the attention curve. The curve is constrained not to
    rise with rank (each M-step is a weighted isotonic fit), so on a short window a deep
    rank seen a few times borrows from its neighbours instead of running towards zero. The
    deepest ranks that together drew less than one upvote are left out: the data bound
    their attention but cannot estimate it. ``hourly`` is the time-of-day adjustment (24
    factors, mean 1). Pages that are modelled
    together are ``lists`` (default top and new, the two pages that bring HN's votes); a
    story beyond a list's tracked depth counts as getting none of that list's attention.
    Quality is scaled to mean 1 over the stories seen, so ``upvotes_per_min`` is for an
    average story. The fitted ``hourly`` factors are in ``.attrs["hourly"]``.
    """
    modelled = tuple(dict.fromkeys([*lists, list]))
    fit = _fit(_intervals(ranks, modelled))
    return _curve_frame(fit, list)


def naive_attention_by_rank(ranks: pd.DataFrame, list: str = "top") -> pd.DataFrame:
    """The biased baseline: mean upvotes per minute per rank, quality ignored (same columns)."""
    data = _intervals(ranks, (list,))
    start = data.ranks[list][0]
    on = start > 0
    rate = data.upvotes[on] / data.minutes[on]
    frame = pd.DataFrame({"rank": start[on], "rate": rate})
    out = frame.groupby("rank")["rate"].agg(["mean", "size"]).reset_index()
    out.columns = ["rank", "upvotes_per_min", "n"]
    front = out.loc[out["rank"] <= 30, "upvotes_per_min"].sum()
    out["share"] = out["upvotes_per_min"] / front
    return out[["rank", "upvotes_per_min", "share", "n"]]


def _expected(data: _Intervals, curves: Mapping[str, np.ndarray], hourly: np.ndarray) -> np.ndarray:
    """Each interval's upvotes for an average story at the ranks it held."""
    expected = np.zeros(len(data.story))
    for name, (start, end) in data.ranks.items():
        curve = np.concatenate([[0.0], curves[name]])
        for at in (start, end):
            expected += curve[np.minimum(at, len(curve) - 1)] * data.minutes / 2
    out: np.ndarray = expected * hourly[data.hour]
    return out


def _curves(
    ranks: pd.DataFrame, attention: Mapping[str, pd.DataFrame] | pd.DataFrame | None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Attention per rank for each list, and the hour-of-day factors: from ``attention``
    (frames of ``attention_by_rank`` by list, or one such frame: the ``top`` curve) or
    fitted on ``ranks`` for top and new."""
    if attention is None:
        fit = _fit(_intervals(ranks, ATTENTION_LISTS))
        return fit.curve, fit.hourly
    if isinstance(attention, pd.DataFrame):
        attention = {"top": attention}
    if not isinstance(attention, Mapping) or not all(
        isinstance(f, pd.DataFrame) and {"rank", "upvotes_per_min"} <= set(f.columns)
        for f in attention.values()
    ):
        raise TypeError(
            "attention must be a frame of attention_by_rank(ranks, 'top'), or a dict of "
            f"such frames by list name (attention_curves(ranks)); got {type(attention).__name__}"
        )
    curves = {}
    for name, frame in attention.items():
        curve = np.zeros(int(frame["rank"].max()))
        curve[frame["rank"].to_numpy() - 1] = frame["upvotes_per_min"].to_numpy()
        curves[name] = curve
    first = next(iter(attention.values()))
    return curves, np.asarray(first.attrs.get("hourly", np.ones(24)))


def attention_curves(ranks: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``attention_by_rank`` for top and new from one fit: the ``attention`` argument of
    ``upvote_rate`` and ``story_path``."""
    fit = _fit(_intervals(ranks, ATTENTION_LISTS))
    return {name: _curve_frame(fit, name) for name in ATTENTION_LISTS}


def story_path(
    ranks: pd.DataFrame, hn_id: int, attention: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """One story, tick by tick: its rank on every list (``rank_<list>``, <NA> when off
    it), ``score``, and ``expected_score``: its first score plus the upvotes an average
    story would have gained at the same ranks and times (see ``upvote_rate``)."""
    curves, hourly = _curves(ranks, attention)
    one = ranks.loc[ranks["hn_id"] == hn_id]
    wide = one.pivot_table(
        index="sampled_at", columns="list", values="rank", aggfunc="min", observed=True
    )
    wide.columns = [f"rank_{c}" for c in wide.columns]
    wide = wide.astype("Int64")
    wide["score"] = one.groupby("sampled_at")["score"].max().astype("Int64")
    data = _intervals(one, tuple(curves), corrections=True)
    gained = pd.Series(_expected(data, curves, hourly), index=pd.DatetimeIndex(data.ended))
    path = wide.reset_index()
    first = path["score"].dropna()
    start = float(first.iloc[0]) if len(first) else 0.0
    cumulative = gained.cumsum().reindex(pd.DatetimeIndex(path["sampled_at"])).ffill()
    path["expected_score"] = (start + cumulative.fillna(0)).to_numpy()
    return path


def upvote_rate(
    ranks: pd.DataFrame,
    stories: pd.DataFrame,
    attention: Mapping[str, pd.DataFrame] | pd.DataFrame | None = None,
    prior: float | str = "auto",
) -> pd.DataFrame:
    """Per story: its upvotes over those an average story would have had at its ranks.

    ``upvotes`` is the story's net gain over its intervals: votes HN took back (a score that
    went down) are taken back here too. ``expected_upvotes`` sums, over the same intervals,
    the attention curves of the lists the story was on (``attention``: list name to a frame
    of ``attention_by_rank``, or one such frame, taken as the ``top`` curve; default: fitted
    on ``ranks`` for top and new) times the hour-of-day factor and the interval's length.
    ``upvote_rate`` is shrunk towards 1 by a Gamma prior with mean 1 and shape ``prior``:
    ``(upvotes + prior) / (expected_upvotes + prior)``, as if every story had first earned
    ``prior`` upvotes where an average story would earn ``prior``. A story seen for a few
    minutes stays near 1; one seen for hours moves to its own rate. ``prior="auto"``
    (empirical Bayes) takes the shape from the data: ``1 / Var(rate)``, where the true
    rates' variance is the variance of ``upvotes / expected_upvotes`` over stories expected
    to earn at least 5, less the part Poisson noise explains (``mean(1 /
    expected_upvotes)``). Jobs take no votes and are left out.

    Columns: ``hn_id, upvotes, expected_upvotes, upvote_rate, minutes_observed``, and
    ``title`` where ``stories`` has it. Highest rate first. The prior used is in
    ``.attrs["prior"]``.
    """
    curves, hourly = _curves(ranks, attention)
    data = _intervals(ranks, tuple(curves), corrections=True)
    expected = _expected(data, curves, hourly)
    n = len(data.ids)
    out = pd.DataFrame(
        {
            "hn_id": data.ids.astype("int64"),
            "upvotes": np.bincount(data.story, weights=data.upvotes, minlength=n).astype("int64"),
            "expected_upvotes": np.bincount(data.story, weights=expected, minlength=n),
            "minutes_observed": np.bincount(data.story, weights=data.minutes, minlength=n),
        }
    )
    info = stories.set_index("hn_id")
    if "type" in info:
        jobs = info.index[info["type"].astype("string") == "job"]
        out = out[~out["hn_id"].isin(jobs)]
    shape = _prior_shape(out) if prior == "auto" else float(prior)
    if not shape >= 0:
        raise ValueError(f"prior must be a number >= 0 or 'auto', got {prior!r}")
    out["upvote_rate"] = (out["upvotes"] + shape) / (out["expected_upvotes"] + shape)
    columns = ["hn_id", "upvotes", "expected_upvotes", "upvote_rate", "minutes_observed"]
    if "title" in info:
        out["title"] = out["hn_id"].map(info["title"]).astype("string")
        columns.append("title")
    out = out[columns].sort_values("upvote_rate", ascending=False, ignore_index=True)
    out.attrs["prior"] = shape
    return out


def _prior_shape(rates: pd.DataFrame) -> float:
    """The Gamma prior's shape by the method of moments (see ``upvote_rate``)."""
    seen = rates[rates["expected_upvotes"] >= 5]
    if len(seen) < 10:
        return 1.0
    raw = seen["upvotes"] / seen["expected_upvotes"]
    spread = float(raw.var() - (raw.mean() / seen["expected_upvotes"]).mean())
    return 1 / spread if spread > 0.01 else 100.0


def rank_penalties(
    ranks: pd.DataFrame,
    stories: pd.DataFrame,
    gravity: float = 1.8,
    *,
    list: str = "top",
    min_drop: int = 5,
    min_severity: float = 2.0,
) -> pd.DataFrame:
    """Minutes in which a story ranks clearly below what the public formula predicts.

    At each minute, the stories on ``list`` with a score and a submission time are
    ordered by HN's public formula ``(score - 1)^0.8 / (age_hours + 2)^gravity``;
    ``expected_rank`` is the rank the story would hold in that order (among the same
    stories, in the list's own rank numbers, so jobs and unreadable items keep their
    places). ``severity`` is the story's formula value over the value of the story
    whose place it actually holds: a severity of 4 means it sits where a story with a
    quarter of its formula value belongs. An event is a minute with ``rank -
    expected_rank >= min_drop`` and ``severity >= min_severity``. Jobs are placed by
    HN, not by votes, and are left out.

    Caveats: the data cannot tell a flag from the flamewar rule or a moderator's
    action, only that the story sits lower than its votes and age explain. HN's
    real formula has more terms than the public one, so mild penalties (a factor
    near 1) are indistinguishable from noise.

    A story that is on the list at one tick and gone from its tracked ranks at the
    next has fallen below all of them: it is judged at that next tick with the last
    score seen (a lower bound, as scores seldom fall) and ``rank`` missing (<NA>),
    its place counted as just below the last tracked rank. A story that HN killed
    looks the same.

    Columns: ``hn_id, sampled_at, expected_rank, rank, severity``, by time.
    """
    columns = ["hn_id", "sampled_at", "expected_rank", "rank", "severity"]
    info = stories.set_index("hn_id")
    obs = ranks.loc[(ranks["list"] == list) & ranks["score"].notna()]
    obs = obs[["sampled_at", "rank", "hn_id", "score"]].copy()
    obs["submitted_at"] = obs["hn_id"].map(info["submitted_at"])
    if "type" in info:
        obs = obs[obs["hn_id"].map(info["type"].astype("string")) != "job"]
    obs = obs.dropna(subset=["submitted_at"])
    if obs.empty:
        return pd.DataFrame(columns=columns)
    obs["rank"] = obs["rank"].astype("float64")
    obs = pd.concat([obs, _vanished(ranks, obs, list)], ignore_index=True)
    age_h = (obs["sampled_at"] - obs["submitted_at"]).dt.total_seconds().clip(lower=0) / 3600
    points = (obs["score"].astype("float64") - 1).clip(lower=0)
    obs["key"] = points**0.8 / (age_h + 2) ** gravity
    # within a minute: by rank, the vanished last (below every tracked rank)
    obs = obs.sort_values(["sampled_at", "rank"], na_position="last", ignore_index=True)
    group = obs.groupby("sampled_at", sort=False)
    position = group.cumcount().to_numpy()  # where it is, 0 = first
    ordered = obs.sort_values(["sampled_at", "key"], ascending=[True, False], kind="stable")
    expected_position = np.empty(len(obs), dtype=int)
    expected_position[ordered.index.to_numpy()] = ordered.groupby("sampled_at").cumcount()
    sizes = group.size().to_numpy()
    starts = np.r_[0, np.cumsum(sizes)][group.ngroup().to_numpy()]
    tracked = group["rank"].transform("count").to_numpy()  # tracked stories that minute
    rank_at = obs["rank"].to_numpy()
    key_sorted = ordered["key"].to_numpy()  # per minute, highest first, same offsets
    gone = np.isnan(rank_at)
    # the place it holds: its own, or (vanished; they sort last) below every tracked story
    expected_place = np.minimum(expected_position, tracked - 1)
    expected_rank = rank_at[starts + expected_place]
    holder = key_sorted[starts + position]
    key = obs["key"].to_numpy()
    severity = np.divide(key, holder, out=np.full(len(key), np.inf), where=holder > 0)
    last_rank = rank_at[starts + tracked - 1]
    drop = np.where(gone, last_rank + 1, rank_at) - expected_rank
    event = (drop >= min_drop) & (severity >= min_severity) & (key > 0)
    out = obs.loc[event, ["hn_id", "sampled_at"]].copy()
    out["expected_rank"] = expected_rank[event].astype("int64")
    out["rank"] = pd.array(rank_at[event], dtype="Float64").astype("Int64")
    out["severity"] = severity[event]
    events: pd.DataFrame = out[columns].reset_index(drop=True)
    return events


def _vanished(ranks: pd.DataFrame, obs: pd.DataFrame, list: str) -> pd.DataFrame:
    """Stories on the list at one tick and gone from it at the next: at that next tick,
    with their last score seen (a lower bound: scores seldom fall) and no rank."""
    ticks = np.sort(ranks["sampled_at"].unique())
    if len(ticks) < 2:
        return obs.iloc[0:0]
    following = pd.Series(ticks[1:], index=pd.DatetimeIndex(ticks[:-1]))
    step = pd.Series(np.diff(ticks)).median()
    nxt = following.reindex(pd.DatetimeIndex(obs["sampled_at"])).to_numpy()
    cand = obs.assign(sampled_at=nxt).dropna(subset=["sampled_at"])
    cand = cand[(cand["sampled_at"] - obs.loc[cand.index, "sampled_at"]) <= 2 * step]
    there = pd.MultiIndex.from_frame(obs[["hn_id", "sampled_at"]])
    gone = ~pd.MultiIndex.from_frame(cand[["hn_id", "sampled_at"]]).isin(there)
    cand = cand[gone]
    cand["sampled_at"] = pd.DatetimeIndex(cand["sampled_at"]).tz_localize(None).tz_localize("UTC")
    gone_rows: pd.DataFrame = cand.assign(rank=np.nan)
    return gone_rows


def time_to_front_page(ranks: pd.DataFrame, top_n: int = 30) -> pd.DataFrame:
    """Per story first seen on ``new``: minutes from then to its first rank <= ``top_n``
    on ``top``.

    Stories already on ``new`` at the data's first tick arrived before it and are
    left out (their start is unknown). Stories that never arrive are kept, with
    ``reached`` false, ``minutes`` missing and ``minutes_watched`` the time from their
    first sighting on ``new`` to their last sighting on any list.

    Columns: ``hn_id, first_new, first_front, minutes, reached, minutes_watched``.
    """
    first_tick = ranks["sampled_at"].min()
    new = ranks.loc[ranks["list"] == "new"].groupby("hn_id")["sampled_at"].min()
    new = new[new > first_tick]
    front = (
        ranks.loc[(ranks["list"] == "top") & (ranks["rank"] <= top_n)]
        .groupby("hn_id")["sampled_at"]
        .min()
    )
    last = ranks.groupby("hn_id")["sampled_at"].max()
    out = pd.DataFrame({"first_new": new})
    out["first_front"] = front.reindex(out.index)
    out.loc[out["first_front"] < out["first_new"], "first_front"] = out["first_new"]
    out["minutes"] = ((out["first_front"] - out["first_new"]).dt.total_seconds() / 60).astype(
        "Float64"
    )
    out["reached"] = out["first_front"].notna()
    watched = (last.reindex(out.index) - out["first_new"]).dt.total_seconds() / 60
    out["minutes_watched"] = watched.astype("Float64")
    out.index.name = "hn_id"
    return out.reset_index().sort_values("first_new", ignore_index=True)


def top_gainers(ranks: pd.DataFrame, list: str = "top", n: int = 10) -> pd.DataFrame:
    """The ``n`` stories that gained the most points while on ``list`` in the data: the
    window's top stories. Columns: ``hn_id, gained, best_rank, minutes_seen``."""
    on = ranks.loc[(ranks["list"] == list) & ranks["score"].notna()]
    grouped = on.groupby("hn_id")
    out = pd.DataFrame(
        {
            "gained": (grouped["score"].max() - grouped["score"].min()).astype("int64"),
            "best_rank": grouped["rank"].min().astype("int64"),
            "minutes_seen": (
                (grouped["sampled_at"].max() - grouped["sampled_at"].min()).dt.total_seconds() / 60
            ),
        }
    )
    out = out.sort_values(["gained", "best_rank"], ascending=[False, True]).head(n)
    return out.reset_index()


def as_snapshots(ranks: pd.DataFrame, list: str = "top") -> pd.DataFrame:
    """The minute data of ``list`` shaped like ``load_snapshots`` (one 'run' per tick), so
    ``front_page_churn`` and ``front_page_lifetimes`` work on minutes (``freq="1min"``)."""
    obs = ranks.loc[ranks["list"] == list, ["sampled_at", "hn_id", "rank", "score"]]
    out = obs.rename(columns={"sampled_at": "observed_at"}).copy()
    out["run_id"] = out["observed_at"].rank(method="dense").astype("int64")
    return out.reset_index(drop=True)
