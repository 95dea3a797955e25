"""The HN stand-in's world: comments are their own noisy process, the same for a seed."""

import math
import statistics
from datetime import timedelta

from hnlab.simulator import SimulatedHN

from .conftest import START


def stories(seed: int) -> list[tuple[int, int, str]]:
    """(score, comments, type) of every live story after two simulated days."""
    sim = SimulatedHN(seed=seed, start=START)
    sim.advance(hours=48)
    seen = []
    for hn_id in sim.story_ids("new") + sim.story_ids("top"):
        item = sim.item(hn_id)
        if item and item.get("type") in ("story", "poll") and "descendants" in item:
            seen.append((item["score"], item["descendants"], item["title"]))
    return sorted(set(seen))


def test_comments_follow_score_with_a_real_spread_and_a_seed_repeats_the_world() -> None:
    world = stories(seed=3)
    assert world == stories(seed=3)
    assert world != stories(seed=4)
    talked = [(s, c) for s, c, _ in world if s >= 20 and c > 0]
    assert len(talked) >= 60
    logs, logc = [math.log(s) for s, _ in talked], [math.log(c) for _, c in talked]
    r = statistics.correlation(logs, logc)
    assert 0.5 < r < 0.95, r  # more votes, more comments, but far from a fixed ratio
    ratios = sorted(c / s for s, c in talked)
    decile = len(ratios) // 10
    assert ratios[-decile] / ratios[decile] > 4  # the 90th percentile talks 4x the 10th


def test_ask_hn_draws_more_discussion_than_show_hn() -> None:
    world = stories(seed=1) + stories(seed=2)

    def median_ratio(prefix: str) -> float:
        return statistics.median(c / s for s, c, t in world if t.startswith(prefix) and s >= 10)

    assert median_ratio("Ask HN:") > 2 * median_ratio("Show HN:")


def test_comments_never_go_down_as_the_clock_moves() -> None:
    sim = SimulatedHN(seed=1, start=START)
    ids = sim.story_ids("new")[:40]
    before = {i: (sim.item(i) or {}).get("descendants", 0) for i in ids}
    sim.advance(hours=3)
    after = {i: (sim.item(i) or {}).get("descendants", 0) for i in ids}
    assert all(after[i] >= before[i] for i in ids)
    assert sum(after.values()) > sum(before.values())
    assert sim.now == START + timedelta(hours=3)


def test_the_clock_moves_by_minutes_over_http() -> None:
    import httpx

    with SimulatedHN(seed=1, start=START) as sim:
        base = sim.base_url
        moved = httpx.post(f"{base}/_sim/advance", params={"minutes": 7}).json()
        assert moved == {"now": (START + timedelta(minutes=7)).isoformat()}
        moved = httpx.post(f"{base}/_sim/advance").json()  # an hour by default
        assert moved == {"now": (START + timedelta(hours=1, minutes=7)).isoformat()}
        bad = httpx.post(f"{base}/_sim/advance", params={"minutes": "soon"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "hours and minutes must be numbers, got {'minutes': 'soon'}"}
        assert sim.now == START + timedelta(hours=1, minutes=7)
