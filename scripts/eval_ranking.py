"""The ranking estimators against a simulated world's truth, at 1, 5 and 60 minutes (#13).

Tracks ``top`` (ranks 1-90) and ``new`` (1-30) every simulated minute for
``--days`` with the real pipeline (simulator in-process, ``HNClient``, the
tracker, PostgreSQL in a scratch database, the loaders), then scores every
estimator of ``hnlab.ranking`` against ``/v0/_sim/truth`` on that data and on
the same data thinned to every 5th and every 60th minute. See ``hnlab.evaluate``
for each measure, and ``hnlab.simworld`` for the world's rules.

    python scripts/eval_ranking.py --days 3 --seed 7

PostgreSQL: a scratch database, dropped at the end, on HNLAB_DATABASE_URL's
server if set, else on the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

from scratch_db import scratch_database

from hnlab.config import Settings
from hnlab.sim import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-03-02T00:00", help="UTC, YYYY-MM-DDTHH:MM")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON too")
    args = parser.parse_args()
    start = datetime.strptime(args.start, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    base = Settings.from_env()
    t0 = time.perf_counter()
    with scratch_database(base, "hnlab_eval") as url:
        tracked = asyncio.run(
            evaluate.track_world(
                base.with_values(database_url=url),
                seed=args.seed,
                start=start,
                days=args.days,
                progress=True,
            )
        )
    tracked_s = time.perf_counter() - t0
    scores = [evaluate.score(tracked, every) for every in (1, 5, 60)]
    print(
        f"seed {args.seed}, {args.days:g} simulated days from {start:%Y-%m-%d %H:%M}Z: "
        f"{len(tracked.ranks)} observations, tracked and read back in {tracked_s:.0f} s"
    )
    print(evaluate.table(scores))
    if args.json:
        print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
