"""The seed's method surface of ``HourlyPostsCollectorJob``, kept in one labelled place.

The original design names these methods as public API: fetch the top stories
above the threshold, turn one into a ``Post``, cache one post's metadata. The
collector's own run does each of them in bulk and overlapped with the write
(``collector.py``); these are the one-at-a-time forms the seed describes, each a
thin call into the same client, parser and cache. ``tests/test_seed.py`` holds
them to the seed's contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hnlab.hn.items import Post, Skip, parse_item

if TYPE_CHECKING:
    from hnlab.clock import Clock
    from hnlab.hn.client import HNClient
    from hnlab.store.cache import RocksDBStore


class SeedMethods:
    """``_fetch_top_stories``, ``_transform_story_to_post`` and ``_cache_post_metadata``."""

    hn_client: HNClient
    rocksdb_store: RocksDBStore
    story_list: str
    limit: int
    score_threshold: int
    clock: Clock

    async def _fetch_top_stories(self) -> list[dict[str, Any]]:
        """Fetch the list's first ``limit`` items; return the stories (as the API gave
        them) at or above the threshold, in rank order."""
        async with self.hn_client as hn:
            hn.restart_deadline()
            ids = (await hn.story_ids(self.story_list))[: self.limit]
            results = await hn.items(ids)
        now = self.clock()
        stories = []
        for result in results:
            if result.data is None:
                continue
            parsed = parse_item(result.data, collected_at=now)
            if isinstance(parsed, Post) and parsed.score >= self.score_threshold:
                stories.append(result.data)
        return stories

    def _transform_story_to_post(self, story: dict[str, Any]) -> Post:
        """Convert one API story into a Post (raises ValueError if it is not a post)."""
        parsed = parse_item(story, collected_at=self.clock())
        if isinstance(parsed, Skip):
            raise ValueError(f"item {story.get('id')!r} is not a post ({parsed.value})")
        return parsed

    async def _cache_post_metadata(self, post: Post) -> None:
        """Store one post's metadata in RocksDB (opened for this call if it is closed)."""
        already_open = self.rocksdb_store.is_open
        store = self.rocksdb_store.open()
        try:
            store.put_metadata([post])
        finally:
            if not already_open:
                store.close()
