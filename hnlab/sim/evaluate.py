"""The ranking estimators measured against a simulated world whose truth is known.

``track_world`` runs the real pipeline: the simulator (in-process), the minute
tracker through ``HNClient``, PostgreSQL, then ``load_ranks``/``load_stories``.
``score`` compares each estimator of ``hnlab.analysis.ranking`` with ``/v0/_sim/truth``.
Coarser sampling is the same data thinned to every 5th or 60th tick: watching a
world does not change it, so each cadence sees the same stories.
``scripts/eval_ranking.py`` prints the table; ``tests/test_ranking.py`` asserts a
small version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from hnlab import analysis
from hnlab.analysis import ranking
from hnlab.config import Settings
from hnlab.run.factory import open_parts
from hnlab.sim.server import SimulatedHN


@dataclass
class Tracked:
    """What the tracker recorded, and what the world really was."""

    ranks: pd.DataFrame
    stories: pd.DataFrame
    truth: dict[str, Any]
    start: datetime
    end: datetime


async def track_world(
    settings: Settings, *, seed: int, start: datetime, days: float, progress: bool = False
) -> Tracked:
    """Track ``top`` and ``new`` every simulated minute for ``days`` into the settings'
    database, then read it back with the loaders."""
    from tqdm import tqdm

    sim = SimulatedHN(seed=seed, start=start)
    settings = settings.with_values(
        hn_api_url="http://simulated-hn.invalid/v0",
        track_every=1,
        track_lists="top,new",
        track_depth="top=90,new=30",
    )
    minutes = int(days * 24 * 60)
    async with open_parts(settings, clock=sim.clock, transport=sim.transport()) as parts:
        tracker = parts.tracker(clock=sim.clock)
        for minute in tqdm(range(minutes + 1), unit="min", disable=not progress):
            if minute:
                sim.advance(minutes=1)
            result = await tracker.tick()
            if result.status != "succeeded":
                raise RuntimeError(f"tick {result.slot} {result.status}: {result.error}")
        database = parts.database
    sync = database.engine()
    try:
        end = sim.now + timedelta(minutes=1)
        ranks = analysis.load_ranks(start, end, sync)
        stories = analysis.load_stories(engine=sync)
    finally:
        sync.dispose()
    return Tracked(ranks, stories, sim.truth(), start, end)


def thin(ranks: pd.DataFrame, every: int) -> pd.DataFrame:
    """Only the ticks on minutes divisible by ``every`` (what tracking every ``every``
    minutes would have recorded)."""
    minute = ranks["sampled_at"].dt.hour * 60 + ranks["sampled_at"].dt.minute
    thinned: pd.DataFrame = ranks.loc[minute % every == 0].reset_index(drop=True)
    return thinned


def _spearman(a: pd.Series, b: pd.Series) -> float:
    if len(a) < 3:
        return float("nan")
    return float(a.rank().corr(b.rank()))


def score(tracked: Tracked, every: int) -> dict[str, Any]:
    """Every estimator against the truth, on the data thinned to ``every`` minutes."""
    ranks = thin(tracked.ranks, every)
    truth = tracked.truth
    stories = tracked.stories
    out: dict[str, Any] = {"every": every, "ticks": int(ranks["sampled_at"].nunique())}

    true_share = np.asarray(truth["attention"]["top"][:30])
    for name, frame in (
        ("attention", ranking.attention_by_rank(ranks, "top")),
        ("naive attention", ranking.naive_attention_by_rank(ranks, "top")),
    ):
        est = frame.set_index("rank")["share"].reindex(range(1, 31)).to_numpy()
        out[f"{name} error"] = float(np.nanmean(np.abs(est / true_share - 1)))

    world = pd.DataFrame(truth["stories"]).set_index("hn_id")
    rates = ranking.upvote_rate(ranks, stories)
    rates["quality"] = rates["hn_id"].map(world["quality"])
    rates = rates.dropna(subset=["quality"])
    new_only = set(ranks.loc[ranks["list"] == "new", "hn_id"]) - set(
        ranks.loc[ranks["list"] == "top", "hn_id"]
    )
    for label, chosen in (
        ("upvotes >= 10", rates["upvotes"] >= 10),
        ("minutes >= 60", rates["minutes_observed"] >= 60),
        ("only on new", rates["hn_id"].isin(new_only)),
    ):
        picked = rates[chosen]
        out[f"spearman, {label}"] = _spearman(picked["upvote_rate"], picked["quality"])
        out[f"stories, {label}"] = len(picked)

    penalized, visible = _penalized(tracked)
    events = ranking.rank_penalties(ranks, stories)
    flagged = set(events["hn_id"])
    hits = flagged & penalized
    out["penalty precision"] = len(hits) / len(flagged) if flagged else float("nan")
    out["penalty recall"] = len(flagged & visible) / len(visible) if visible else float("nan")
    out["penalized stories"] = len(visible)

    found = ranking.time_to_front_page(ranks, top_n=30)
    found = found[found["reached"]].set_index("hn_id")
    arrived = pd.to_datetime(world["arrived"], utc=True)
    reached = pd.to_datetime(world["front_page_at"], utc=True)
    true_minutes = ((reached - arrived).dt.total_seconds() / 60).dropna()
    both = found.index.intersection(true_minutes.index)
    errors = (found.loc[both, "minutes"].astype(float) - true_minutes[both]).abs()
    out["front page median error, min"] = float(errors.median()) if len(errors) else float("nan")
    out["front page stories"] = len(both)
    return out


def _penalized(tracked: Tracked) -> tuple[set[int], set[int]]:
    """Stories penalized at all, and those the tracked data could see: on ``top``'s
    tracked ranks within the 10 minutes before the penalty (every-minute data)."""
    top = tracked.ranks.loc[tracked.ranks["list"] == "top", ["hn_id", "sampled_at"]]
    top = top.assign(sampled_at=top["sampled_at"].dt.tz_convert(None))
    seen = top.groupby("hn_id")["sampled_at"].apply(lambda s: s.to_numpy())
    penalized, visible = set(), set()
    end = pd.Timestamp(tracked.end).tz_convert(None)
    for story in tracked.truth["stories"]:
        for penalty in story["penalties"]:
            at = pd.Timestamp(penalty["at"]).tz_convert(None)
            if at >= end:
                continue
            penalized.add(story["hn_id"])
            times = seen.get(story["hn_id"])
            window = (at - pd.Timedelta(minutes=10)).to_datetime64(), at.to_datetime64()
            if times is not None and ((times >= window[0]) & (times <= window[1])).any():
                visible.add(story["hn_id"])
    return penalized, visible


GOALS = {
    "attention error": ("<=", 0.10),
    "spearman, upvotes >= 10": (">=", 0.8),
    "penalty precision": (">=", 0.8),
    "penalty recall": (">=", 0.7),
    "front page median error, min": ("<=", "2 ticks"),
}


def table(scores: list[dict[str, Any]]) -> str:
    """The scores side by side, one column per cadence, with the goals."""
    keys = [k for k in scores[0] if k != "every"]
    cadences = [f"every {s['every']} min" for s in scores]
    head = f"{'':34}" + "".join(f"{c:>16}" for c in cadences) + "  goal"
    lines = [head]
    for key in keys:
        cells = "".join(
            f"{s[key]:>16.3f}" if isinstance(s[key], float) else f"{s[key]:>16}" for s in scores
        )
        goal = GOALS.get(key)
        lines.append(f"{key:34}{cells}  {'' if goal is None else f'{goal[0]} {goal[1]}'}")
    return "\n".join(lines)
