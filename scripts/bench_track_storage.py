"""Choose the minute tracker's table layout by measurement (groundwork for #12).

Seeds the same synthetic minute ticks (default lists and depths: top 90, new 30,
best 30, ask 30, show 30, so 210 observations a minute) into a scratch database
in two layouts, and reports side by side:

* **naive**: one row per observation ``(sampled_at, list, rank, hn_id, score,
  comment_count)``, a btree on ``(hn_id, sampled_at)`` and one on
  ``(sampled_at, list)``;
* **arrays**: one row per (minute, list) with ``hn_ids``, ``scores`` and
  ``comments`` arrays in rank order, primary key ``(sampled_at, list)``;
* **minutes**: one row per minute with every list's arrays end to end and their
  lengths (``lens``); at 210 elements the arrays pass TOAST's threshold and are
  compressed.

Both array layouts share ``spans``: one row per (story, list) with its first and
last sighting, which turns one story's path into a primary-key range scan.

For each: bytes per observation on disk (tables plus indexes), one story's whole
path on every list (p50/p95 over 100 random stories), every list at one given
minute (p50/p95 over 100 random minutes), and ``--load-days`` of ranks 1..30 of
``top`` read into pandas, by ``read_sql`` and, from hnlab's own ``rank_minutes``
filled with the same minutes, by ``analysis.load_ranks``. Bytes per observation
do not depend on the span, so a week measures what a year will cost; the query
times do, and are stated with the size they were measured at.

    python scripts/bench_track_storage.py --days 30

Measured 2026-11-29 on the 2-core machine, 30 days (9.05 M observations, embedded
PostgreSQL 18): bytes per observation naive 89.1, arrays 16.9, minutes 12.8 (6.96x
smaller than naive); a story's path p50/p95 0.34/5.90 ms naive, 0.25/2.51 arrays,
0.34/5.27 minutes; a minute's lists p95 0.21, 0.17, 0.16 ms; 30 days of top 1..30
into pandas (1.3 M rows): read_sql 4.99 s naive, 4.66 s arrays; hnlab's
``load_ranks`` on its own rank_minutes (COPY and pyarrow) 1.31 s.

A year with ``--days 365 --hnlab-only`` (2026-11-29, TCP PostgreSQL 15): 110.4 M
observations, 12.78 bytes each (1.41 GB); a story's path through ``load_ranks``
p50/p95 11.5/59.8 ms; a minute's lists p50/p95 0.28/0.69 ms; the last 30 days of
top 1..30 into pandas 2.16 s. Generating the year took 33 min, COPY 46 s.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa
from scratch_db import scratch_database

from hnlab import analysis
from hnlab.config import Settings
from hnlab.store import db

LISTS = {"top": 90, "new": 30, "best": 30, "ask": 30, "show": 30}
LIST_CODE = {name: i for i, name in enumerate(LISTS)}
START = datetime(2026, 1, 1, tzinfo=UTC)

SCHEMA = """
CREATE TABLE naive (
    sampled_at timestamptz NOT NULL, list smallint NOT NULL, rank smallint NOT NULL,
    hn_id integer NOT NULL, score integer, comment_count integer);
CREATE TABLE ticks (
    sampled_at timestamptz NOT NULL, list smallint NOT NULL,
    hn_ids integer[] NOT NULL, scores integer[] NOT NULL, comments integer[] NOT NULL,
    PRIMARY KEY (sampled_at, list));
CREATE TABLE spans (
    hn_id integer NOT NULL, list smallint NOT NULL,
    first_at timestamptz NOT NULL, last_at timestamptz NOT NULL,
    PRIMARY KEY (hn_id, list));
CREATE TABLE minutes (
    sampled_at timestamptz PRIMARY KEY, lens smallint[] NOT NULL,
    hn_ids integer[] NOT NULL, scores integer[] NOT NULL, comments integer[] NOT NULL);
"""
INDEXES = """
CREATE INDEX naive_story ON naive (hn_id, sampled_at);
CREATE INDEX naive_minute ON naive (sampled_at, list);
"""


def world(days: int, seed: int) -> Iterator[tuple[datetime, dict[str, list[tuple[int, int, int]]]]]:
    """Minute by minute, each list as (hn_id, score, comments) in rank order.

    About 0.9 stories a minute arrive (HN's ~1,300 a day), one in ten an Ask HN and one
    in twelve a Show HN; votes follow a lognormal quality over a saturating age curve;
    top, ask and show rank by HN's gravity, best by score, new by age.
    """
    rng = random.Random(seed)
    stories: list[tuple[int, int, float, str]] = []  # hn_id, born (minute), quality, kind
    next_id = 46_000_000
    for minute in range(days * 24 * 60):
        if rng.random() < 0.9:
            roll = rng.random()
            kind = "ask" if roll < 0.10 else "show" if roll < 0.18 else "story"
            stories.append((next_id, minute, rng.lognormvariate(0, 1.2), kind))
            next_id += rng.randint(5, 40)  # comments and other items take ids too
        live = [s for s in stories[-3000:] if minute - s[1] < 3 * 24 * 60]
        scored = []
        for hn_id, born, quality, kind in live:
            age_h = (minute - born) / 60
            score = 1 + int(quality * 40 * (1 - math.exp(-age_h / 4)))
            comments = int(score * 0.5 * (0.3 + (hn_id % 13) / 10))
            gravity = (score - 1) / (age_h + 2) ** 1.8
            scored.append((gravity, score, born, hn_id, comments, kind))
        by_gravity = sorted(scored, reverse=True)
        lists = {
            "top": [(s[3], s[1], s[4]) for s in by_gravity[:90]],
            "new": [(s[3], s[1], s[4]) for s in sorted(scored, key=lambda s: -s[2])[:30]],
            "best": [(s[3], s[1], s[4]) for s in sorted(scored, key=lambda s: -s[1])[:30]],
            "ask": [(s[3], s[1], s[4]) for s in by_gravity if s[5] == "ask"][:30],
            "show": [(s[3], s[1], s[4]) for s in by_gravity if s[5] == "show"][:30],
        }
        yield START + timedelta(minutes=minute), lists


def hnlab_row(at: datetime, lists: dict[str, list[tuple[int, int, int]]]) -> str:
    """One minute as a COPY line of hnlab's ``rank_minutes``: every list end to end."""
    every = [r for name in LISTS for r in lists[name]]
    return (
        f"{at.isoformat()}\t{{{','.join(str(LIST_CODE[name]) for name in LISTS)}}}\t"
        f"{{{','.join(str(len(lists[name])) for name in LISTS)}}}\t"
        f"{{{','.join(str(r[0]) for r in every)}}}\t"
        f"{{{','.join(str(r[1]) for r in every)}}}\t"
        f"{{{','.join(str(r[2]) for r in every)}}}\n"
    )


def seed(conn: psycopg.Connection[Any], days: int, rng_seed: int) -> dict[str, float]:
    """Write the world into both layouts with COPY; return the seconds each took."""
    naive, ticks = io.StringIO(), io.StringIO()
    spans: dict[tuple[int, int], list[datetime]] = {}  # first and last sighting per (story, list)
    minutes = io.StringIO()
    hnlab_rows = io.StringIO()  # hnlab's own rank_minutes: the same, with the list codes
    observations = 0
    t0 = time.perf_counter()
    for at, lists in world(days, rng_seed):
        stamp = at.isoformat()
        for name, rows in lists.items():
            code = LIST_CODE[name]
            ids = [r[0] for r in rows]
            for rank, (hn_id, score, comments) in enumerate(rows, start=1):
                naive.write(f"{stamp}\t{code}\t{rank}\t{hn_id}\t{score}\t{comments}\n")
                span = spans.setdefault((hn_id, code), [at, at])
                span[1] = at
            ticks.write(
                f"{stamp}\t{code}\t{{{','.join(map(str, ids))}}}\t"
                f"{{{','.join(str(r[1]) for r in rows)}}}\t"
                f"{{{','.join(str(r[2]) for r in rows)}}}\n"
            )
            observations += len(rows)
        every = [r for name in LISTS for r in lists[name]]
        hnlab_rows.write(hnlab_row(at, lists))
        minutes.write(
            f"{stamp}\t{{{','.join(str(len(lists[name])) for name in LISTS)}}}\t"
            f"{{{','.join(str(r[0]) for r in every)}}}\t"
            f"{{{','.join(str(r[1]) for r in every)}}}\t"
            f"{{{','.join(str(r[2]) for r in every)}}}\n"
        )
    closed = [(hn_id, code, first, last) for (hn_id, code), (first, last) in spans.items()]
    generated = time.perf_counter() - t0
    timings = {"generate_s": generated, "observations": observations}
    for table, buffer in (
        ("naive", naive),
        ("ticks", ticks),
        ("minutes", minutes),
        ("rank_minutes", hnlab_rows),
    ):
        t0 = time.perf_counter()
        with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        timings[f"copy_{table}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with conn.cursor().copy("COPY spans FROM STDIN") as copy:
        for row in closed:
            copy.write_row(row)
    timings["copy_spans_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute(INDEXES)
    timings["index_naive_s"] = time.perf_counter() - t0
    conn.execute("VACUUM ANALYZE")
    return timings


def seed_hnlab(conn: psycopg.Connection[Any], days: int, rng_seed: int) -> dict[str, float]:
    """Stream the world into hnlab's own ``rank_minutes`` and ``rank_spans`` only, a day at
    a time (a year does not fit in memory as text); return the seconds each step took."""
    spans: dict[tuple[int, int], list[datetime]] = {}
    observations = 0
    generate = copy_s = 0.0
    day = io.StringIO()
    t0 = time.perf_counter()

    def flush() -> float:
        t = time.perf_counter()
        with conn.cursor().copy("COPY rank_minutes FROM STDIN") as copy:
            copy.write(day.getvalue())
        day.seek(0)
        day.truncate()
        return time.perf_counter() - t

    for n, (at, lists) in enumerate(world(days, rng_seed), start=1):
        for name in LISTS:
            code = LIST_CODE[name]
            for hn_id, _, _ in lists[name]:
                span = spans.setdefault((hn_id, code), [at, at])
                span[1] = at
        day.write(hnlab_row(at, lists))
        observations += sum(len(rows) for rows in lists.values())
        if n % 1440 == 0:
            copy_s += flush()
    copy_s += flush()
    generate = time.perf_counter() - t0 - copy_s
    t0 = time.perf_counter()
    with conn.cursor().copy("COPY rank_spans (hn_id, list, first_at, last_at) FROM STDIN") as copy:
        for (hn_id, code), (first, last) in spans.items():
            copy.write_row((hn_id, code, first, last))
    spans_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    conn.execute("VACUUM ANALYZE rank_minutes")
    conn.execute("VACUUM ANALYZE rank_spans")
    return {
        "generate_s": generate,
        "copy_rank_minutes_s": copy_s,
        "copy_rank_spans_s": spans_s,
        "vacuum_analyze_s": time.perf_counter() - t0,
        "observations": observations,
    }


def hnlab_only(
    url: str, conn: psycopg.Connection[Any], days: int, seed: int, load_days: int
) -> dict[str, Any]:
    """Seed and measure hnlab's own tables alone, through its own loaders."""
    timings = seed_hnlab(conn, days, seed)
    n = int(timings["observations"])
    rng = random.Random(seed)
    stories = [r[0] for r in conn.execute("SELECT DISTINCT hn_id FROM rank_spans").fetchall()]
    picked = rng.sample(stories, 100)
    minutes = [START + timedelta(minutes=rng.randrange(days * 1440)) for _ in range(100)]
    on_disk = size(conn, "rank_minutes", "rank_spans")
    partitions = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'rank_minutes'::regclass"
        ).fetchall()
    ]
    on_disk = size(conn, "rank_spans", *partitions)
    eng = sa.create_engine(url)
    try:
        story_ms, minute_ms = [], []
        for hn_id in picked:
            t0 = time.perf_counter()
            path = analysis.load_ranks(None, None, eng, hn_ids=[hn_id])
            story_ms.append((time.perf_counter() - t0) * 1000)
            assert len(path) and set(path["hn_id"]) == {hn_id}
        for at in minutes:
            t0 = time.perf_counter()
            conn.execute(MINUTE_HNLAB, (at,)).fetchall()
            minute_ms.append((time.perf_counter() - t0) * 1000)
        since = START + timedelta(days=max(0, days - load_days))
        t0 = time.perf_counter()
        frame = analysis.load_ranks(
            since, since + timedelta(days=load_days), eng, lists=["top"], max_rank=30
        )
        load_s = time.perf_counter() - t0
    finally:
        eng.dispose()

    def p(values: list[float], q: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(len(values) * q))], 2)

    return {
        "days": days,
        "observations": n,
        "seed_s": {k: round(v, 1) for k, v in timings.items() if k.endswith("_s")},
        "hnlab_bytes_per_observation": round(on_disk / n, 2),
        "hnlab_bytes_total": on_disk,
        "story_path_load_ranks_ms": {"p50": p(story_ms, 0.5), "p95": p(story_ms, 0.95)},
        "minute_lists_ms": {"p50": p(minute_ms, 0.5), "p95": p(minute_ms, 0.95)},
        f"load_ranks_top30_last_{load_days}d_s": round(load_s, 2),
        f"load_ranks_top30_last_{load_days}d_rows": len(frame),
    }


MINUTE_HNLAB = (
    "SELECT lists, lens, hn_ids, scores, comments FROM rank_minutes WHERE sampled_at = %s"
)


def size(conn: psycopg.Connection[Any], *tables: str) -> int:
    return sum(
        int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0])  # type: ignore[index]
        for t in tables
    )


def timed(conn: psycopg.Connection[Any], sql: str, args: list[tuple[Any, ...]]) -> dict[str, float]:
    took = []
    for params in args:
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        took.append((time.perf_counter() - t0) * 1000)
    took.sort()
    return {
        "p50_ms": round(statistics.median(took), 2),
        "p95_ms": round(took[int(len(took) * 0.95)], 2),
    }


STORY_NAIVE = """
SELECT sampled_at, list, rank, score, comment_count FROM naive
 WHERE hn_id = %s ORDER BY sampled_at, list"""
STORY_ARRAYS = """
SELECT t.sampled_at, t.list, array_position(t.hn_ids, s.hn_id) AS rank,
       t.scores[array_position(t.hn_ids, s.hn_id)], t.comments[array_position(t.hn_ids, s.hn_id)]
  FROM spans s JOIN ticks t
    ON t.list = s.list AND t.sampled_at BETWEEN s.first_at AND s.last_at
 WHERE s.hn_id = %s AND s.hn_id = ANY (t.hn_ids)
 ORDER BY t.sampled_at, t.list"""
MINUTE_NAIVE = "SELECT list, rank, hn_id, score, comment_count FROM naive WHERE sampled_at = %s"
MINUTE_ARRAYS = "SELECT list, hn_ids, scores, comments FROM ticks WHERE sampled_at = %s"
MINUTE_MINUTES = "SELECT lens, hn_ids, scores, comments FROM minutes WHERE sampled_at = %s"
STORY_MINUTES = """
SELECT m.sampled_at, array_position(m.hn_ids, s.hn_id) AS position,
       m.scores[array_position(m.hn_ids, s.hn_id)]
  FROM (SELECT hn_id, min(first_at) AS first_at, max(last_at) AS last_at
          FROM spans WHERE hn_id = %s GROUP BY hn_id) s
  JOIN minutes m ON m.sampled_at BETWEEN s.first_at AND s.last_at
 WHERE s.hn_id = ANY (m.hn_ids)
 ORDER BY m.sampled_at"""
LOAD_NAIVE = """
SELECT sampled_at, rank, hn_id, score, comment_count FROM naive
 WHERE list = 0 AND rank <= 30 AND sampled_at >= %(since)s AND sampled_at < %(until)s"""
LOAD_ARRAYS = """
SELECT t.sampled_at, r.rank, r.hn_id, r.score, r.comment_count
  FROM ticks t, unnest(t.hn_ids[1:30], t.scores[1:30], t.comments[1:30])
       WITH ORDINALITY AS r(hn_id, score, comment_count, rank)
 WHERE t.list = 0 AND t.sampled_at >= %(since)s AND t.sampled_at < %(until)s"""


def load_seconds(url: str, sql: str, since: datetime, until: datetime) -> tuple[float, int]:
    eng = sa.create_engine(url)
    try:
        t0 = time.perf_counter()
        with eng.connect() as conn:
            df = pd.read_sql(
                sa.text(sql.replace("%(since)s", ":since").replace("%(until)s", ":until")),
                conn,
                params={"since": since, "until": until},
            )
        return time.perf_counter() - t0, len(df)
    finally:
        eng.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of minute ticks to seed")
    parser.add_argument("--load-days", type=int, default=None, help="span read into pandas")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--hnlab-only",
        action="store_true",
        help="seed only hnlab's rank_minutes and rank_spans, streamed a day at a time (for a "
        "year: the other layouts' bytes per observation do not depend on the span)",
    )
    args = parser.parse_args()
    load_days = min(args.load_days or 30, args.days)
    settings = Settings.from_env()
    with scratch_database(settings, "hnlab_bench_track") as url:
        libpq = sa.make_url(url)
        dsn = sa.engine.URL.create(
            "postgresql",
            libpq.username,
            libpq.password,
            libpq.host,
            libpq.port,
            libpq.database,
            libpq.query,
        ).render_as_string(hide_password=False)
        migrate = sa.create_engine(url)
        db.upgrade(migrate)  # hnlab's own tables, to time its loader on rank_minutes
        migrate.dispose()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
            first = START.date().replace(day=1)
            for month in range(2 + args.days // 28):
                start = (first + timedelta(days=32 * month)).replace(day=1)
                end = (start + timedelta(days=32)).replace(day=1)
                conn.execute(
                    f"CREATE TABLE rank_minutes_{start:%Y_%m} PARTITION OF rank_minutes FOR "
                    f"VALUES FROM ('{start:%Y-%m-%d} 00:00+00') TO ('{end:%Y-%m-%d} 00:00+00')"
                )
            if args.hnlab_only:
                result = hnlab_only(url, conn, args.days, args.seed, load_days)
                print(json.dumps(result, indent=2))
                return
            timings = seed(conn, args.days, args.seed)
            n = int(timings["observations"])
            rng = random.Random(args.seed)
            stories = [r[0] for r in conn.execute("SELECT DISTINCT hn_id FROM spans").fetchall()]
            picked = [(s,) for s in rng.sample(stories, 100)]
            minutes = [
                (START + timedelta(minutes=rng.randrange(args.days * 1440)),) for _ in range(100)
            ]
            naive_bytes = size(conn, "naive")
            arrays_bytes = size(conn, "ticks", "spans")
            minutes_bytes = size(conn, "minutes", "spans")
            parts = {
                name: int(conn.execute(f"SELECT pg_relation_size('{name}')").fetchone()[0])  # type: ignore[index]
                for name in (
                    "naive",
                    "naive_story",
                    "naive_minute",
                    "ticks",
                    "ticks_pkey",
                    "minutes",
                    "minutes_pkey",
                    "spans",
                    "spans_pkey",
                )
            }
            parts["minutes_toast"] = (
                size(conn, "minutes") - parts["minutes"] - parts["minutes_pkey"]
            )
            result = {
                "days": args.days,
                "observations": n,
                "seed_s": {k: round(v, 1) for k, v in timings.items() if k.endswith("_s")},
                "naive_bytes_per_observation": round(naive_bytes / n, 1),
                "arrays_bytes_per_observation": round(arrays_bytes / n, 1),
                "ratio_naive_over_arrays": round(naive_bytes / arrays_bytes, 2),
                "minutes_bytes_per_observation": round(minutes_bytes / n, 1),
                "ratio_naive_over_minutes": round(naive_bytes / minutes_bytes, 2),
                "bytes_per_observation_by_relation": {k: round(v / n, 2) for k, v in parts.items()},
                "story_path_naive": timed(conn, STORY_NAIVE, picked),
                "story_path_arrays": timed(conn, STORY_ARRAYS, picked),
                "minute_naive": timed(conn, MINUTE_NAIVE, minutes),
                "minute_arrays": timed(conn, MINUTE_ARRAYS, minutes),
                "minute_minutes": timed(conn, MINUTE_MINUTES, minutes),
                "story_path_minutes": timed(conn, STORY_MINUTES, picked),
            }
        since = START
        until = START + timedelta(days=load_days)
        for name, sql in (("naive", LOAD_NAIVE), ("arrays", LOAD_ARRAYS)):
            seconds, rows = load_seconds(url, sql, since, until)
            result[f"load_top30_{load_days}d_{name}_s"] = round(seconds, 2)
            result[f"load_top30_{load_days}d_rows"] = rows
        t0 = time.perf_counter()
        frame = analysis.load_ranks(since, until, url, lists=["top"], max_rank=30)
        result[f"load_top30_{load_days}d_hnlab_load_ranks_s"] = round(time.perf_counter() - t0, 2)
        assert len(frame) == rows, (len(frame), rows)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
