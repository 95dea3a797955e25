"""Score ``analysis.bursts`` against the bursts the simulator planted in its titles.

The simulated world (``hnlab/sim/topics.py``) draws each title from a topic's
vocabulary, and plants bursts of known terms at known times and strengths; some
topics are steadily large and never burst. This script reads every story title
the simulator serves over ``--days`` simulated days, runs ``bursts`` on the titles
with hourly periods, and scores the detections against ``/v0/_sim/truth``:

- a detection is right if its term is a planted burst's term (or a phrase that
  contains it) and its start falls within that burst (the period holding the onset
  counts);
- precision is right detections over all detections, recall is planted bursts
  found over planted bursts, and the delay is the periods from the one holding the
  onset to the first detected one (median over the bursts found).

    python scripts/eval_trends.py --days 3 --seed 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from hnlab import analysis
from hnlab.sim import topics as planted_topics
from hnlab.sim.server import SimulatedHN

GOALS = {"precision": (">=", 0.8), "recall": (">=", 0.8), "median delay": ("<=", 2)}


def titles(sim: SimulatedHN, since: datetime) -> pd.DataFrame:
    """Every story title the simulator serves, created at or after ``since``."""
    rows = []
    for hn_id in (story["hn_id"] for story in sim.truth()["stories"]):
        item = sim.item(hn_id)
        if not item or "title" not in item:
            continue
        created = datetime.fromtimestamp(item["time"], UTC)
        if created >= since:
            rows.append({"id": hn_id, "time": created, "text": item["title"]})
    return pd.DataFrame(rows)


def score(found: pd.DataFrame, truth: list[dict[str, Any]], freq: str) -> dict[str, Any]:
    step = pd.Timedelta(freq)
    planted = [
        {**b, "start": pd.Timestamp(b["start"]), "end": pd.Timestamp(b["end"])} for b in truth
    ]
    right, delays, hit = 0, [], set()
    for det in found.itertuples():
        words = str(det.term).split(" ")
        for i, b in enumerate(planted):
            term = b["term"].lower()
            onset = b["start"].floor(freq)
            if term in words and onset <= det.start < b["end"]:
                right += 1
                if i not in hit:
                    hit.add(i)
                    delays.append((det.detected - onset) / step - 1)
                break
    steady = {w.lower() for t in ("ai", "rust") for w in planted_topics.TOPICS[t]}
    return {
        "planted": len(planted),
        "detected": len(found),
        "precision": right / len(found) if len(found) else float("nan"),
        "recall": len(hit) / len(planted) if planted else float("nan"),
        "median delay": statistics.median(delays) if delays else float("nan"),
        "steady-topic bursts": int(
            sum(any(w in steady for w in str(t).split(" ")) for t in found["term"])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-03-02T00:00")
    parser.add_argument("--freq", default="1h")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    t0 = time.perf_counter()
    sim = SimulatedHN(seed=args.seed, start=start)
    sim.advance(hours=24 * args.days)
    docs = titles(sim, start)
    until = start + timedelta(days=args.days)
    truth = [
        b
        for b in sim.truth()["bursts"]
        if datetime.fromisoformat(b["start"]) <= until - timedelta(hours=2)
    ]
    t1 = time.perf_counter()
    found = analysis.bursts(docs, freq=args.freq)
    t2 = time.perf_counter()
    result = score(found, truth, args.freq)
    result.update(stories=len(docs), read_s=round(t1 - t0, 1), detect_s=round(t2 - t1, 2))
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(
        f"seed {args.seed}, {args.days:g} simulated days from {start:%Y-%m-%d %H:%M}Z: "
        f"{len(docs)} titles read in {t1 - t0:.1f} s, bursts found in {t2 - t1:.2f} s"
    )
    for key, value in result.items():
        if key in ("stories", "read_s", "detect_s"):
            continue
        goal = GOALS.get(key)
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<22} {shown:>8}  {'goal ' + goal[0] + ' ' + str(goal[1]) if goal else ''}")
    print("\ndetections:")
    for det in found.head(40).itertuples():
        print(
            f"  {det.term:<24} {det.start:%m-%d %H:%M} to {det.end:%H:%M}  "
            f"count {det.count:>3}  peak {det.peak_share:.2f}  base {det.baseline_share:.3f}"
        )
    print("planted:")
    for b in truth:
        print(f"  {b['term']:<24} {b['start'][5:16]} to {b['end'][11:16]}  {b['strength']}")


if __name__ == "__main__":
    main()
