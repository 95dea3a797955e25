"""Benchmark the analysts' path on a year of hourly snapshots.

Seeds 500 stories x 8,760 hours (4.38 M post_snapshots rows, 8,760 runs) inside
PostgreSQL with generate_series, then times, as medians of several repetitions:
  load   analysis.load_snapshots(top_n=30): the year's front page, filtered in PostgreSQL
  churn  analysis.front_page_churn on it (pandas)
and, once, a full load of all 4.38 M rows for comparison.

    python scripts/bench_analysis.py [--hours 8760] [--stories 500] [--repeat 3] [--full]

PostgreSQL: HNLAB_DATABASE_URL if set (a fresh database is created on that server),
else an embedded server in a temporary directory. Target: load + churn under 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from scratch_db import scratch_database

from hnlab import analysis
from hnlab.config import Settings
from hnlab.store import db

SEED_SQL = """
INSERT INTO collection_runs (id, trigger, status, started_at, finished_at, slot)
SELECT h + 1, 'scheduled', 'succeeded', t, t + interval '2 seconds', t
  FROM generate_series(0, :hours - 1) AS h,
       LATERAL (SELECT timestamptz '2025-01-01 00:00+00' + h * interval '1 hour' AS t) AS x;

-- A story seen at rank r in hour h sits about 17 ranks lower an hour later, so the
-- front page turns over the way HN's does (~30 new stories an hour).
INSERT INTO post_snapshots (run_id, hn_id, list, rank, score, comment_count, observed_at)
SELECT h + 1,
       1000000 + (h - (r - 1) / 17) * 30 + (r - 1) % 17,
       'top', r, 1 + (1000 / r) + h % 7, r % 50,
       timestamptz '2025-01-01 00:00+00' + h * interval '1 hour' + interval '30 seconds'
  FROM generate_series(0, :hours - 1) AS h, generate_series(1, :stories) AS r;
ANALYZE post_snapshots;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=8760)
    parser.add_argument("--stories", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time loading every row")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hnlab-bench-analysis-"))
    root.chmod(0o755)
    settings = Settings.from_env(overrides={"data_dir": root})
    with scratch_database(settings, "hnlab_bench_analysis") as url:
        run(url, args)


def run(url: str, args: argparse.Namespace) -> None:
    eng = db.make_engine(url)
    try:
        db.upgrade(eng)
        t0 = time.perf_counter()
        with eng.begin() as conn:
            for statement in SEED_SQL.split(";"):
                if statement.strip():
                    conn.execute(sa.text(statement), {"hours": args.hours, "stories": args.stories})
        seed_s = time.perf_counter() - t0
        with eng.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM post_snapshots")).scalar_one()

        loads, churns = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            front = analysis.load_snapshots(engine=eng, top_n=30)
            t1 = time.perf_counter()
            churn = analysis.front_page_churn(front, top_n=30)
            t2 = time.perf_counter()
            loads.append(t1 - t0)
            churns.append(t2 - t1)
        full_s = None
        if args.full:
            t0 = time.perf_counter()
            everything = analysis.load_snapshots(engine=eng)
            full_s = time.perf_counter() - t0
            assert len(everything) == rows
        load, churn_s = statistics.median(loads), statistics.median(churns)
        print(f"{rows:,} snapshot rows over {args.hours} hours (seeded in {seed_s:.1f} s)")
        print(f"  load top-30 rows ({len(front):,})  {load:7.3f} s")
        print(f"  front_page_churn ({len(churn):,} hours) {churn_s:7.3f} s")
        print(f"  load + churn                 {load + churn_s:7.3f} s  (target < 5 s)")
        if full_s is not None:
            print(f"  full load of every row       {full_s:7.3f} s")
        print(
            json.dumps(
                {
                    "rows": rows,
                    "front_rows": len(front),
                    "load_s": round(load, 3),
                    "churn_s": round(churn_s, 3),
                    "total_s": round(load + churn_s, 3),
                    "full_load_s": None if full_s is None else round(full_s, 3),
                    "mean_churn_rate": round(float(churn["churn_rate"].mean()), 3),
                }
            )
        )
    finally:
        eng.dispose()


if __name__ == "__main__":
    main()
