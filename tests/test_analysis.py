"""Metrics on small hand-made frames, with expected values worked out by hand."""

import subprocess
import sys

import pandas as pd
import pytest

from hnlab import analysis

H = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def snaps(rows: list[tuple[int, int, int, int, float]]) -> pd.DataFrame:
    """(run_id, hn_id, rank, score, hours after H) rows as a snapshots frame."""
    df = pd.DataFrame(rows, columns=["run_id", "hn_id", "rank", "score", "hours"])
    df["observed_at"] = H + pd.to_timedelta(df.pop("hours"), unit="h")
    df["list"] = "top"
    df["comment_count"] = 0
    return df.astype({"run_id": "Int64", "hn_id": "Int64", "rank": "Int64", "score": "Int64"})


# hour 0: stories 1, 2, 3 on a top-3; hour 1: 1, 3, 4 (2 left, 4 came);
# hour 2 has no run (a gap); hour 3: 4, 5, 6 and a rank-4 story 7 that is not "top 3".
PAGE = snaps(
    [
        (1, 1, 1, 10, 0.0),
        (1, 2, 2, 8, 0.0),
        (1, 3, 3, 5, 0.0),
        (2, 3, 1, 30, 1.0),
        (2, 1, 2, 20, 1.0),
        (2, 4, 3, 9, 1.0),
        (3, 4, 1, 50, 3.0),
        (3, 5, 2, 40, 3.0),
        (3, 6, 3, 30, 3.0),
        (3, 7, 4, 5, 3.0),
    ]
)


def test_front_page_churn_by_hand() -> None:
    churn = analysis.front_page_churn(PAGE, top_n=3)
    assert list(churn.index) == [H, H + pd.Timedelta("1h"), H + pd.Timedelta("3h")]
    assert churn["stories"].tolist() == [3, 3, 3]
    assert churn["entered"].tolist() == [pd.NA, 1, pd.NA]  # hour 3 follows a gap
    assert churn["exited"].tolist() == [pd.NA, 1, pd.NA]
    assert churn["retained"].tolist() == [pd.NA, 2, pd.NA]
    assert churn["churn_rate"].iloc[1] == pytest.approx(1 / 3)
    assert str(churn["entered"].dtype) == "Int64" and str(churn.index.tz) == "UTC"


def test_churn_uses_the_last_run_of_a_bucket() -> None:
    twice = snaps(
        [
            (1, 1, 1, 1, 0.0),
            (1, 2, 2, 1, 0.0),
            (2, 1, 1, 1, 0.5),
            (2, 9, 2, 1, 0.5),  # a later run in hour 0 replaces story 2 by 9
            (3, 1, 1, 1, 1.0),
            (3, 2, 2, 1, 1.0),
        ]
    )
    churn = analysis.front_page_churn(twice, top_n=2)
    assert churn["entered"].tolist() == [pd.NA, 1]  # story 2 came back, compared with {1, 9}
    assert churn["exited"].tolist() == [pd.NA, 1]


def test_churn_of_nothing_is_an_empty_frame() -> None:
    empty = analysis.front_page_churn(PAGE.iloc[0:0], top_n=3)
    assert empty.empty and list(empty.columns) == [
        "stories",
        "entered",
        "exited",
        "retained",
        "churn_rate",
    ]


def test_front_page_lifetimes_by_hand() -> None:
    life = analysis.front_page_lifetimes(PAGE, top_n=3)
    assert life.loc[1].to_dict() == {
        "first_seen": H,
        "last_seen": H + pd.Timedelta("1h"),
        "hours_on_top": 2.0,
        "peak_rank": 1,
    }
    assert life.loc[4, "hours_on_top"] == 2.0 and life.loc[4, "peak_rank"] == 1
    assert life.loc[2, "hours_on_top"] == 1.0
    assert 7 not in life.index  # rank 4 never made the top 3
    assert life.index[:3].tolist() == [1, 3, 4]  # 2 hours each, ordered by peak rank


def test_score_velocity_by_hand() -> None:
    posts = pd.DataFrame(
        {
            "hn_id": [1, 3, 5],
            "title": ["a", "c", "e"],
            "created_at": [
                H - pd.Timedelta("1h"),
                H - pd.Timedelta("30min"),
                H - pd.Timedelta("10h"),
            ],
        }
    )
    velocity = analysis.score_velocity(PAGE, posts, hours=6)
    # story 1: last early observation at hour 1, age 2 h, score 20 -> 10/h
    # story 3: hour 1, age 1.5 h, score 30 -> 20/h; story 5 was first seen at age 13 h
    assert velocity[["hn_id", "age_h", "score", "points_per_hour"]].values.tolist() == [
        [3, 1.5, 30, 20.0],
        [1, 2.0, 20, 10.0],
    ]


def test_top_domains_by_hand() -> None:
    posts = pd.DataFrame(
        {
            "domain": ["a.com", "b.org", "a.com", None, "b.org", "b.org"],
            "score": [10, 1, 30, 99, 2, 3],
        }
    )
    top = analysis.top_domains(posts, n=5)
    assert top.to_dict("index") == {
        "b.org": {"posts": 3, "total_score": 6, "median_score": 2.0},
        "a.com": {"posts": 2, "total_score": 40, "median_score": 20.0},
    }


def test_run_health_and_summary_by_hand() -> None:
    runs = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "started_at": [H + pd.Timedelta(hours=i) for i in range(4)],
            "trigger": "scheduled",
            "status": ["succeeded", "failed", "succeeded", "skipped"],
            "duration_s": [1.0, None, 3.0, None],
            "posts_saved": [10, None, 2, None],
            "duplicates_skipped": [0, None, 8, None],
            "errors": [0, None, 1, None],
        }
    )
    health = analysis.run_health(runs)
    assert health["succeeded"].tolist() == [True, False, True, False]
    assert health["success_rate"].tolist() == [1.0, 0.5, pytest.approx(2 / 3), 0.5]
    assert analysis.run_summary(runs) == {
        "runs": 4,
        "succeeded": 2,
        "failed": 1,
        "skipped": 1,
        "success_rate": 0.5,
        "median_duration_s": 2.0,
    }


def test_reconcile_by_hand() -> None:
    posts = pd.DataFrame({"hn_id": [1, 2, 3]})
    cache = pd.DataFrame({"hn_id": [2, 3, 4]})
    out = analysis.reconcile(posts, cache)
    assert out[["hn_id", "state"]].astype(str).values.tolist() == [
        ["1", "missing_from_cache"],
        ["2", "ok"],
        ["3", "ok"],
        ["4", "only_in_cache"],
    ]


def test_importing_analysis_and_plots_stays_light() -> None:
    code = (
        "import sys; from hnlab import analysis, plots; "
        "print(sorted(m for m in ('httpx', 'apscheduler', 'rocksdict', 'aiohttp', 'papermill')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_loaders_return_typed_frames_from_postgres(settings, engine) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from hnlab.run.factory import collect_once

    stats = asyncio.run(collect_once(settings))
    url = settings.database_url
    posts = analysis.load_posts(engine=url)
    snaps = analysis.load_snapshots(engine=url, top_n=10)
    runs = analysis.load_runs(engine=url)
    assert len(posts) == stats["posts_saved"] and len(runs) == 1
    assert snaps["rank"].tolist() == list(range(1, 11))
    assert {
        c: str(posts[c].dtype)
        for c in ("hn_id", "score", "domain", "type", "is_dead", "title", "created_at")
    } == {
        "hn_id": "Int64",
        "score": "Int64",
        "domain": "category",
        "type": "category",
        "is_dead": "boolean",
        "title": "string",
        "created_at": "datetime64[us, UTC]",
    }
    assert str(snaps["observed_at"].dtype).endswith("UTC]")
    assert str(runs["status"].dtype) == "category" and str(runs["posts_saved"].dtype) == "Int64"
    since, until = analysis.window(1, engine=url)
    assert until is not None and since == until - pd.Timedelta(hours=1)
    assert len(analysis.load_snapshots(since, until, engine=url)) == 100
    meta = analysis.load_metadata(settings.rocksdb)
    assert len(meta) == len(posts) and str(meta["collected_at"].dtype).endswith("UTC]")
    assert (analysis.reconcile(posts, meta)["state"] == "ok").all()


WRITER = """
import sys, time
from datetime import datetime, UTC
from hnlab.store.cache import RocksDBStore
from hnlab.hn.items import Post
T = datetime(2026, 1, 1, tzinfo=UTC)
with RocksDBStore(sys.argv[1]) as store:
    for i in range(1, 201):
        store.put_metadata([Post(hn_id=i, title=str(i), author=None, url=None, domain=None,
                                 score=i, comment_count=0, created_at=T, collected_at=T,
                                 type="story")])
        if i == 50:
            store.db.flush()
            print("half", flush=True)
        time.sleep(0.01)
print("done", flush=True)
"""


def test_load_metadata_never_blocks_a_writer_in_another_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "content.rocksdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "half\n"
    seen = [len(analysis.load_metadata(path)) for _ in range(3)]
    out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0 and out == "done\n"  # the writer was never blocked
    assert all(50 <= n <= 200 for n in seen)
    assert len(analysis.load_metadata(path)) == 200
