"""Cache maintenance: check RocksDB against PostgreSQL, and rebuild it from PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hnlab.config import Settings
from hnlab.errors import CacheCorruptError, CacheError, CacheLockedError
from hnlab.hn.items import Post
from hnlab.store.cache import RocksDBStore

log = logging.getLogger(__name__)


def stored_posts(settings: Settings) -> list[Post]:
    """Every post in PostgreSQL, by hn_id."""
    from hnlab.run.factory import open_parts

    async def read() -> list[Post]:
        async with open_parts(settings) as parts:
            return await parts.collector.post_repository.posts_by_hn_ids()

    return asyncio.run(read())


def check_cache(settings: Settings) -> dict[str, Any]:
    """Scan every cache entry (read-only) and compare the keys with PostgreSQL's posts."""
    expected = {p.hn_id for p in stored_posts(settings)}
    report: dict[str, Any] = {"path": str(settings.rocksdb), "posts_in_postgres": len(expected)}
    try:
        with RocksDBStore(settings.rocksdb, mode="secondary") as store:
            cached = {int(m["hn_id"]) for m in store.iter_metadata()}
    except CacheCorruptError as exc:
        report.update(state="corrupt", detail=str(exc))
        return report
    except CacheError as exc:
        report.update(state="unreadable", detail=str(exc))
        return report
    report.update(
        keys_in_cache=len(cached),
        missing=len(expected - cached),
        extra=len(cached - expected),
        state="ok" if expected == cached else "out of step: run 'hnlab cache rebuild'",
    )
    return report


def rebuild_cache(settings: Settings) -> tuple[int, Path | None]:
    """Write every stored post to a fresh cache; a damaged old one is moved aside."""
    path = settings.rocksdb
    moved: Path | None = None
    if path.exists():
        try:
            RocksDBStore(path).open().close()
        except CacheLockedError:
            raise
        except CacheError as exc:
            log.warning("cache at %s cannot be opened: %s", path, exc)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        moved = path.with_name(f"{path.name}.old-{stamp}")
        path.rename(moved)
    posts = stored_posts(settings)
    with RocksDBStore(path) as store:
        written = store.put_metadata(posts)
    return written, moved
