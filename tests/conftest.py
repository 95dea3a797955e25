"""Shared fixtures: a real PostgreSQL, the HN stand-in on loopback, settings factories.

PostgreSQL is the embedded server (started once per session in a temporary
directory), or the server at HNLAB_TEST_DATABASE_URL. Each test module gets a
fresh database on it, migrated to head.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from hnlab.config import Settings
from hnlab.sim.server import Scripted, SimulatedHN
from hnlab.store import db
from hnlab.store.embedded import EmbeddedPostgres

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "hn-api-samples"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database, for creating test databases."""
    external = os.environ.get("HNLAB_TEST_DATABASE_URL")
    if external:
        yield db.normalize_database_url(external)
        return
    root = Path(tempfile.mkdtemp(prefix="hnlab-test-pg-"))
    root.chmod(0o755)  # as root, the server runs as another account that must enter it
    server = EmbeddedPostgres(root / "postgres")
    server.attach()
    try:
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _admin(url: str) -> psycopg.Connection[Any]:
    u = sa.make_url(url)
    return psycopg.connect(
        host=u.query.get("host") or u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
    )


def create_database(server_url: str, prefix: str = "hnlab_test") -> str:
    """Create an empty database on the test server and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    name = sa.make_url(url).database
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test module, migrated to head."""
    url = create_database(server_url)
    eng = db.make_engine(url)
    db.upgrade(eng)
    eng.dispose()
    yield url
    drop_database(server_url, url)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh database with no schema, for this test only."""
    url = create_database(server_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A sync engine on the module's database, its tables emptied before the test."""
    eng = db.make_engine(database_url)
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE posts, post_snapshots, collection_runs, runners, story_sightings, items, "
                "item_revisions, item_gaps, item_chunks, rank_minutes, rank_spans, track_ticks, "
                "contents, summaries, job_outcomes RESTART IDENTITY"
            )
        )
    yield eng
    eng.dispose()


@pytest.fixture
def own_pg() -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL of this test's own, migrated, to pause, restart or crash."""
    root = Path(tempfile.mkdtemp(prefix="hnlab-own-pg-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "postgres")
    server.attach()
    eng = db.make_engine(server.url())
    db.upgrade(eng)
    eng.dispose()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sim() -> Iterator[SimulatedHN]:
    """The HN stand-in on loopback, seed 1, clock at START."""
    with SimulatedHN(seed=1, start=START) as server:
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    """Settings for this test: its own data dir, the module database, fast retries."""

    def make(**values: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "retry_attempts": 3,
            "run_deadline": 30,
            "connect_timeout": 2,
            "read_timeout": 5,
            "track_every": 0,  # tests that track turn it on
        }
        base.update(values)
        return Settings.from_env(environ={}, overrides=base)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sim: SimulatedHN) -> Settings:
    """Default test settings pointing at the simulator."""
    return make_settings(hn_api_url=sim.base_url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses PostgreSQL with ``db``, so CI can run them again over TCP."""
    for item in items:
        if "server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


SAMPLE_FILES = {
    41247023: "story_41247023_show_hn.json",
    41245073: "job_41245073_in_topstories.json",
    41247211: "story_41247211_launch_hn_text_no_url.json",
    40464529: "story_40464529_descendants_lt_kids.json",
    41247275: "story_41247275_no_kids_descendants0.json",
    41244423: "story_41244423_show_hn_url_and_text.json",
    30239441: "poll_30239441.json",
    40475078: "comment_40475078_deleted.json",
}
FRONT_PAGE = [
    41247023,
    41245073,
    41247211,
    40464529,
    41247275,
    41244423,
    30239441,
    40475078,
    111,
    112,
    113,
    114,
    115,
]


@pytest.fixture
def recorded(sim: SimulatedHN) -> SimulatedHN:
    """A front page of real API samples plus null, bare, truncated, failing and dead items."""
    items: dict[int, Any] = {
        i: json.loads((SAMPLES / f).read_text()) for i, f in SAMPLE_FILES.items()
    }
    items[111] = None
    items[112] = {"id": 112, "time": 1723640000, "type": "story"}
    items[113] = {"id": 113, "time": 1723640000, "type": "story", "title": "cut", "score": 99}
    items[115] = {
        "id": 115,
        "time": 1723640000,
        "type": "story",
        "title": "Flagged &amp; dead",
        "score": 80,
        "dead": True,
        "url": "https://www.Dead.example:443/x",
    }
    sim.serve_items(items)
    sim.serve_list("top", FRONT_PAGE)
    sim.script("item/113.json", *[Scripted(body="truncated")] * 5)
    sim.script("item/114.json", *[503] * 10)
    return sim
