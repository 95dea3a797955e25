"""Ranking research (#13): each estimator on hand-worked data, then all of them against a
simulated day whose truth is known."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from hnlab import analysis
from hnlab.config import Settings
from hnlab.sim import evaluate

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def frame(rows: list[tuple[int, str, int, int, int | None]]) -> pd.DataFrame:
    """(minute, list, rank, hn_id, score) rows as ``load_ranks`` returns them."""
    df = pd.DataFrame(rows, columns=["minute", "list", "rank", "hn_id", "score"])
    df["sampled_at"] = pd.to_datetime(
        [T0 + timedelta(minutes=int(m)) for m in df["minute"]], utc=True
    )
    df["list"] = pd.Categorical(df["list"], categories=["top", "new", "best", "ask", "show"])
    df["score"] = df["score"].astype("Int64")
    df["comment_count"] = pd.array([0] * len(df), dtype="Int64")
    cols = ["sampled_at", "list", "rank", "hn_id", "score", "comment_count"]
    return df[cols]


def two_stories(swap_after: int = 15, minutes: int = 20) -> pd.DataFrame:
    """Story 1 earns twice what story 2 does at any rank; rank 1 brings 6 upvotes a minute
    to an average story and rank 2 brings 3. Story 1 holds rank 1 for ``swap_after``
    minutes, then they swap. Scores are exact (no noise); the swap minute's increment is
    the mean of the two ranks', as the estimator's half-and-half model says."""
    rate = {(1, 1): 8.0, (1, 2): 4.0, (2, 1): 4.0, (2, 2): 2.0}  # (story, rank) -> per min
    rows = []
    score = {1: 10.0, 2: 10.0}
    for m in range(minutes + 1):
        rank_of = {1: 1, 2: 2} if m < swap_after else {1: 2, 2: 1}
        for story, rank in rank_of.items():
            rows.append((m, "top", rank, story, round(score[story])))
        nxt = {1: 1, 2: 2} if m + 1 < swap_after else {1: 2, 2: 1}
        for story in (1, 2):
            score[story] += (rate[story, rank_of[story]] + rate[story, nxt[story]]) / 2
    return frame(rows)


def test_attention_separates_rank_from_quality_where_the_naive_average_cannot() -> None:
    ranks = two_stories()
    est = analysis.attention_by_rank(ranks, "top", lists=("top",))
    assert est["rank"].tolist() == [1, 2]
    assert est["share"].tolist() == pytest.approx([2 / 3, 1 / 3], rel=1e-4)
    # an average story (quality 1 of the two, mean of 2x and 1x) at rank 1: 6 x 1 / 1
    ratio = est["upvotes_per_min"].iloc[0] / est["upvotes_per_min"].iloc[1]
    assert ratio == pytest.approx(2.0, rel=1e-4)
    naive = analysis.naive_attention_by_rank(ranks, "top")
    # rank 1 averages 15 minutes of story 1 (8/min) and 5 of story 2 (4/min): 7 vs 2.5
    assert naive["upvotes_per_min"].iloc[0] / naive["upvotes_per_min"].iloc[1] > 2.5
    assert list(est.columns) == ["rank", "upvotes_per_min", "share", "n"]


def test_upvote_rate_recovers_the_quality_ratio_and_shrinks_short_stories() -> None:
    ranks = two_stories()
    stories = pd.DataFrame({"hn_id": [1, 2], "type": ["story", "story"], "title": ["a", "b"]})
    raw = analysis.upvote_rate(ranks, stories, prior=0).set_index("hn_id")
    assert raw.loc[1, "upvote_rate"] / raw.loc[2, "upvote_rate"] == pytest.approx(2.0, rel=1e-3)
    assert raw.loc[1, "minutes_observed"] == 20
    assert raw.loc[1, "upvotes"] == 138  # 14 x 8, then (8 + 4) / 2, then 5 x 4
    shrunk = analysis.upvote_rate(ranks, stories, prior=1000).set_index("hn_id")
    assert abs(shrunk.loc[1, "upvote_rate"] - 1) < abs(raw.loc[1, "upvote_rate"] - 1) / 5
    with pytest.raises(ValueError, match="prior must be a number >= 0 or 'auto', got -1"):
        analysis.upvote_rate(ranks, stories, prior=-1)


def test_gaps_longer_than_two_ticks_and_score_corrections_are_not_upvotes() -> None:
    base = two_stories()
    # four ticks lost (a gap of 5 minutes), across which story 1 gained 500: not bridged
    gap = base[~base["sampled_at"].isin(base["sampled_at"].unique()[5:9])].copy()
    late = gap["sampled_at"] >= T0 + timedelta(minutes=9)
    gap.loc[late & (gap["hn_id"] == 1), "score"] += 500
    same = analysis.attention_by_rank(gap, "top", lists=("top",))
    assert same["share"].tolist() == pytest.approx([2 / 3, 1 / 3], rel=1e-3)
    # HN takes 30 votes back from story 2 at minute 3: left out of attention, taken off
    # the story's net upvotes
    fixed = base.copy()
    later = (fixed["hn_id"] == 2) & (fixed["sampled_at"] >= T0 + timedelta(minutes=3))
    fixed.loc[later, "score"] -= 30
    est = analysis.attention_by_rank(fixed, "top", lists=("top",))
    assert est["share"].tolist() == pytest.approx([2 / 3, 1 / 3], rel=0.05)
    stories = pd.DataFrame({"hn_id": [1, 2]})
    net = analysis.upvote_rate(fixed, stories, prior=0).set_index("hn_id")
    plain = analysis.upvote_rate(base, stories, prior=0).set_index("hn_id")
    assert net.loc[2, "upvotes"] == plain.loc[2, "upvotes"] - 30


def test_a_story_ranked_below_its_score_and_age_is_a_penalty_event() -> None:
    # one minute of top: ages 1, 1, 1 h; scores 101, 51, 11. Story 1 sits at rank 3.
    ranks = frame([(0, "top", 1, 2, 51), (0, "top", 2, 3, 11), (0, "top", 3, 1, 101)])
    submitted = pd.Timestamp(T0 - timedelta(hours=1))
    stories = pd.DataFrame(
        {"hn_id": [1, 2, 3], "type": ["story"] * 3, "submitted_at": [submitted] * 3}
    )
    events = analysis.rank_penalties(ranks, stories, min_drop=1, min_severity=2.0)
    assert events["hn_id"].tolist() == [1]
    row = events.iloc[0]
    assert (row["expected_rank"], row["rank"]) == (1, 3)
    # its value over the value of the story that belongs at rank 3 (score 11)
    assert row["severity"] == pytest.approx((100 / 10) ** 0.8, rel=1e-9)
    assert list(events.columns) == ["hn_id", "sampled_at", "expected_rank", "rank", "severity"]
    # a story that drops off the tracked ranks with a winning score is an event, rank <NA>
    before = [(0, "top", 1, 1, 101), (0, "top", 2, 2, 51), (0, "top", 3, 3, 11)]
    gone = frame([*before, (1, "top", 1, 2, 51), (1, "top", 2, 3, 11)])
    vanished = analysis.rank_penalties(gone, stories, min_drop=1)
    assert vanished["hn_id"].tolist() == [1]
    assert pd.isna(vanished["rank"].iloc[0]) and vanished["expected_rank"].iloc[0] == 1
    # a job is placed by HN, not by votes: never an event
    jobs = stories.assign(type=["job", "story", "story"])
    assert analysis.rank_penalties(ranks, jobs, min_drop=1).empty


def test_time_to_the_front_page_keeps_the_stories_that_never_arrive() -> None:
    rows: list[tuple[int, str, int, int, int | None]] = [(0, "new", 1, 9, 1)]  # there at start
    rows += [(m, "new", 1, 5, 1) for m in range(2, 6)]
    rows += [(m, "top", 40 - m, 5, 3) for m in range(2, 12)]  # rank <= 30 from minute 10
    rows += [(m, "new", 2, 6, 1) for m in range(3, 8)]  # watched 4 minutes, never front page
    times = analysis.time_to_front_page(frame(rows), top_n=30).set_index("hn_id")
    assert sorted(times.index) == [5, 6]
    assert times.loc[5, "minutes"] == 8 and bool(times.loc[5, "reached"])
    assert pd.isna(times.loc[6, "minutes"]) and not times.loc[6, "reached"]
    assert times.loc[6, "minutes_watched"] == 4


def test_top_gainers_are_the_stories_that_gained_most_on_the_list() -> None:
    rows = [(m, "top", 2, 7, 10 + m) for m in range(5)] + [(m, "top", 1, 8, 50) for m in range(5)]
    rows += [(0, "new", 1, 9, 1), (4, "new", 1, 9, 90)]  # gained on new, not on top
    top = analysis.top_gainers(frame(rows), "top", n=5)
    assert top.to_dict("records") == [
        {"hn_id": 7, "gained": 4, "best_rank": 2, "minutes_seen": 4.0},
        {"hn_id": 8, "gained": 0, "best_rank": 1, "minutes_seen": 4.0},
    ]


def test_minute_data_gives_lifetimes_in_minutes() -> None:
    rows = [(m, "top", 1, 7, 10) for m in range(0, 25)] + [(m, "top", 2, 8, 5) for m in (0, 1)]
    snaps = analysis.as_snapshots(frame(rows))
    life = analysis.front_page_lifetimes(snaps, top_n=30, freq="1min")
    assert life.loc[7, "hours_on_top"] == pytest.approx(25 / 60)
    assert life.loc[8, "hours_on_top"] == pytest.approx(2 / 60)


@pytest.fixture(scope="module")
def tracked_day(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> evaluate.Tracked:
    """One simulated day, seed 7, tracked every minute through the real pipeline."""
    settings = Settings.from_env(
        environ={},
        overrides={"data_dir": tmp_path_factory.mktemp("eval"), "database_url": database_url},
    )
    return asyncio.run(
        evaluate.track_world(
            settings, seed=7, start=datetime(2026, 3, 2, tzinfo=UTC), days=1, progress=False
        )
    )


@pytest.mark.slow
def test_the_estimators_meet_their_goals_on_a_simulated_day(
    tracked_day: evaluate.Tracked,
) -> None:
    every_minute = evaluate.score(tracked_day, 1)
    hourly = evaluate.score(tracked_day, 60)
    assert every_minute["ticks"] == 1441 and hourly["ticks"] == 25
    # measured 0.045 (naive 0.229): the goal is 0.10
    assert every_minute["attention error"] <= 0.10
    assert every_minute["naive attention error"] > 3 * every_minute["attention error"]
    # measured 0.87 over 144 stories
    assert every_minute["spearman, upvotes >= 10"] >= 0.8
    assert every_minute["stories, upvotes >= 10"] >= 100
    # measured 1.0 of 14 penalized stories; hourly sampling loses most of them (0.43)
    assert every_minute["penalty recall"] >= 0.7
    assert hourly["penalty recall"] < every_minute["penalty recall"] - 0.2
    # measured 0.5 minutes over 102 stories: the goal is 2 ticks
    assert every_minute["front page median error, min"] <= 2
    assert every_minute["front page stories"] >= 80


def test_the_truth_is_what_the_world_did(tracked_day: evaluate.Tracked) -> None:
    truth = tracked_day.truth
    assert truth["seed"] == 7 and truth["now"] == "2026-03-03T00:00:00+00:00"
    assert sum(truth["attention"]["top"][:30]) == pytest.approx(1.0, abs=1e-4)
    stories = pd.DataFrame(truth["stories"])
    day = stories[~stories["warmup"]]
    assert 600 < len(day) < 1400  # about 40 an hour
    assert day["quality"].mean() == pytest.approx(1.0, abs=0.1)
    reasons: dict[str, Any] = {p["reason"] for ps in stories["penalties"] for p in ps}
    assert reasons == {"flags", "flamewar"}
    tracked_ids = set(tracked_day.ranks["hn_id"])
    assert set(day["hn_id"]) - tracked_ids <= set(day.loc[day["kind"] == "dead", "hn_id"])


def test_upvote_rate_takes_the_documented_attention_frame_as_the_top_curve() -> None:
    ranks = two_stories()
    stories = pd.DataFrame({"hn_id": [1, 2], "type": ["story", "story"], "title": ["a", "b"]})
    top = analysis.attention_by_rank(ranks, "top")
    single = analysis.upvote_rate(ranks, stories, attention=top, prior=0)
    by_list = analysis.upvote_rate(ranks, stories, attention={"top": top}, prior=0)
    pd.testing.assert_frame_equal(single, by_list)
    assert single.set_index("hn_id").loc[1, "upvotes"] == 138
    with pytest.raises(TypeError, match=r"attention must be a frame of attention_by_rank"):
        analysis.upvote_rate(ranks, stories, attention={"top": ranks}, prior=0)
