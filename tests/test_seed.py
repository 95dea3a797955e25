"""The seed's contract for HourlyPostsCollectorJob: its constructor, its one-at-a-time
methods (``collect/seed.py``) and its statistics keys, exactly as the design document
names them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hnlab import HNClient, HourlyPostsCollectorJob, PostRepository, RocksDBStore
from hnlab.sim.server import SimulatedHN
from hnlab.store.cache import metadata_key
from hnlab.store.db import make_async_engine

from .conftest import SAMPLES


def seed_job(sim: SimulatedHN, engine: Any, cache: Path, limit: int = 7) -> HourlyPostsCollectorJob:
    return HourlyPostsCollectorJob(
        post_repository=PostRepository(engine),
        rocksdb_store=RocksDBStore(cache),
        hn_client=HNClient(sim.base_url, retry_attempts=1),
        score_threshold=50,
        limit=limit,
    )


def test_the_seed_constructor_methods_and_statistics(
    recorded: SimulatedHN, database_url: str, engine: sa.Engine, tmp_path: Any
) -> None:
    async def go() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        async_engine = make_async_engine(database_url)
        try:
            job = seed_job(recorded, async_engine, tmp_path / "c.rocksdb")
            stats = await job.run_collection()
            stories = await job._fetch_top_stories()
            post = job._transform_story_to_post(stories[0])
            await job._cache_post_metadata(post)
            return stats, stories, job.get_statistics()
        finally:
            await async_engine.dispose()

    stats, stories, again = asyncio.run(go())
    assert [s["id"] for s in stories] == [41247023, 41244423, 30239441]
    assert {
        k: stats[k] for k in ("posts_fetched", "posts_saved", "duplicates_skipped", "errors")
    } == {"posts_fetched": 3, "posts_saved": 3, "duplicates_skipped": 0, "errors": 0}
    assert set(again) >= {
        "posts_fetched",
        "posts_saved",
        "posts_cached",
        "duplicates_skipped",
        "errors",
        "last_run",
    }


def test_transform_refuses_what_is_not_a_post_and_cache_writes_the_seed_key(
    recorded: SimulatedHN, database_url: str, tmp_path: Path
) -> None:
    comment = json.loads((SAMPLES / "comment_40483424.json").read_text())
    story = json.loads((SAMPLES / "story_41247023_show_hn.json").read_text())

    async def go() -> dict[str, Any]:
        async_engine = make_async_engine(database_url)
        try:
            job = seed_job(recorded, async_engine, tmp_path / "c.rocksdb")
            job.clock = lambda: datetime(2026, 3, 1, 12, tzinfo=UTC)
            with pytest.raises(ValueError, match=r"item 40483424 is not a post"):
                job._transform_story_to_post(comment)
            post = job._transform_story_to_post(story)
            await job._cache_post_metadata(post)
            with RocksDBStore(tmp_path / "c.rocksdb") as store:
                return store.get_metadata(post.hn_id) or {}
        finally:
            await async_engine.dispose()

    cached = asyncio.run(go())
    assert metadata_key(41247023) == b"metadata:41247023"
    assert cached["hn_id"] == 41247023
    assert cached["title"] == story["title"]
    assert cached["points"] == story["score"]
    assert cached["collected_at"].startswith("2026-03-01T12:00:00")
