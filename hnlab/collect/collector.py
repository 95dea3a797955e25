"""HourlyPostsCollectorJob: one collection run, with the seed's methods and statistics.

A run fetches the first ``limit`` ids of a story list and their items
concurrently, records a snapshot of every story it saw, saves the stories at or
above ``score_threshold`` (new ones inserted, known ones refreshed) in one
transaction, then caches the new posts' metadata in RocksDB in one batch.
RocksDB is opened for the run only, and written only after PostgreSQL commits.

The write overlaps the fetch: each answer is parsed as it arrives and queued,
and the transaction writes whatever has queued up while its previous statement
ran, so after the last answer only the last batch and the commit remain.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import tenacity
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.clock import Clock, utc_now
from hnlab.collect.pipeline import Pipeline
from hnlab.collect.seed import SeedMethods
from hnlab.config import validate
from hnlab.errors import (
    CacheError,
    CollectionError,
    DatabaseError,
    DatabaseUnavailableError,
    FetchError,
    HnlabError,
)
from hnlab.hn.client import HNClient, ItemResult
from hnlab.hn.items import Post, Skip, parse_item
from hnlab.store import records
from hnlab.store.cache import RocksDBStore
from hnlab.store.posts import Batch, Observation, PostRepository

log = logging.getLogger(__name__)

SEED_KEYS = (
    "posts_fetched",
    "posts_saved",
    "posts_cached",
    "duplicates_skipped",
    "errors",
    "last_run",
)


@dataclass
class _Fetched:
    """What one fetch saw: every story as a Post, and the counts of the rest."""

    ids: list[int] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    unavailable: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)


class HourlyPostsCollectorJob(SeedMethods):
    """Collects one story list into PostgreSQL and RocksDB; ``run_collection()`` is the entry."""

    def __init__(
        self,
        post_repository: PostRepository,
        rocksdb_store: RocksDBStore,
        hn_client: HNClient,
        score_threshold: int = 50,
        limit: int = 100,
        *,
        story_list: str = "top",
        clock: Clock = utc_now,
        trigger: str = "manual",
        stale_after: timedelta = timedelta(hours=1),
    ) -> None:
        self.post_repository = post_repository
        self.rocksdb_store = rocksdb_store
        self.hn_client = hn_client
        self.score_threshold: int = validate("score_threshold", score_threshold)
        self.limit: int = validate("posts_limit", limit, "limit")
        self.story_list: str = validate("story_list", story_list)
        self.clock = clock
        self.trigger = trigger
        self.stale_after = stale_after
        self.record_retry_s = 10.0
        self._statistics: dict[str, Any] = self._empty_statistics()

    # -- the seed's methods ---------------------------------------------------------------
    async def run_collection(
        self,
        *,
        run_id: int | None = None,
        slot: datetime | str | None = None,
        trigger: str | None = None,
    ) -> dict[str, Any]:
        """Run one collection and record it; return the statistics.

        With ``run_id`` the run continues a record a runner already created (one
        record per run, notebook or not). Without it the run opens its own record,
        claiming ``slot`` when one is given. Raises CollectionError when the run
        fails as a whole (the list or PostgreSQL unreachable, the slot taken); it
        is recorded as failed first whenever PostgreSQL can be reached. The run
        record is written while the list and its items load.
        """
        started = self.clock()
        if isinstance(slot, str):
            slot = datetime.fromisoformat(slot)
        t0 = time.perf_counter()
        run_id, pending, pipeline = await self._begin(
            run_id, trigger or self.trigger, started, slot
        )
        try:
            stats = await self._complete(run_id, started, t0, pipeline, pending)
        except HnlabError as exc:
            await self._record_failure(run_id, exc)
            raise CollectionError(f"run {run_id} failed: {exc}") from None
        except Exception as exc:
            await self._record_failure(run_id, exc)
            raise
        await records.finish_run(
            self.engine,
            run_id,
            "succeeded",
            self.clock(),
            stats,
            error=stats.get("cache_error"),
        )
        log.info(
            "run %s: fetched %s, saved %s, cached %s, duplicates %s, errors %s in %.2fs",
            run_id,
            stats["posts_fetched"],
            stats["posts_saved"],
            stats["posts_cached"],
            stats["duplicates_skipped"],
            stats["errors"],
            stats["duration_s"],
        )
        return stats

    async def collect_top_posts(
        self, *, run_id: int | None = None, started: datetime | None = None
    ) -> dict[str, Any]:
        """Fetch, snapshot, filter, save and cache; return the statistics.

        Without ``run_id`` this is ``run_collection()``: the run gets its own
        record, closed as succeeded or failed. With ``run_id`` the work is done
        for that open record, which the caller closes.
        """
        if run_id is None:
            return await self.run_collection()
        started = started or self.clock()
        t0 = time.perf_counter()
        run_id, pending, pipeline = await self._begin(run_id, self.trigger, started, None)
        return await self._complete(run_id, started, t0, pipeline, pending)

    @property
    def engine(self) -> AsyncEngine:
        """The async engine this collector's repository writes to (its owner closes it)."""
        return self.post_repository.engine

    def get_statistics(self) -> dict[str, Any]:
        """The last run's statistics (the seed's keys, and more)."""
        return dict(self._statistics)

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _empty_statistics() -> dict[str, Any]:
        stats: dict[str, Any] = dict.fromkeys(SEED_KEYS, 0)
        stats["last_run"] = None
        return stats

    async def _begin(
        self, run_id: int | None, trigger: str, started: datetime, slot: datetime | None
    ) -> tuple[int, list[int], Pipeline[Batch, _Fetched]]:
        """Start the fetch, and while it loads open (or adopt) the run record, close stale
        ones and list the runs owing cache entries; the fetch is cancelled if that fails."""
        engine = self.engine
        self._statistics = self._empty_statistics()
        pipeline: Pipeline[Batch, _Fetched] = Pipeline(self._fetch)
        try:
            if run_id is None:
                run_id = await records.open_run(engine, trigger=trigger, started=started, slot=slot)
                if run_id is None:
                    assert slot is not None
                    raise CollectionError(
                        f"collection not started: slot {slot:%Y-%m-%d %H:%M}Z is already "
                        "claimed by another run"
                    )
            await records.close_stale_runs(engine, started - self.stale_after, started)
            pending = [r for r in await records.runs_needing_cache(engine) if r != run_id]
        except BaseException as exc:
            await pipeline.cancel()
            if not isinstance(exc, DatabaseError):
                raise
            log.error("collection not started: %s", exc)
            raise CollectionError(f"collection not started: {exc}") from None
        return run_id, pending, pipeline

    async def _complete(
        self,
        run_id: int,
        started: datetime,
        t0: float,
        pipeline: Pipeline[Batch, _Fetched],
        pending: list[int],
    ) -> dict[str, Any]:
        """Snapshot, filter, save and cache what the fetch brings; return the statistics."""
        stats = self._statistics  # fresh since _begin; the fetch adds its API usage to it
        stats["run_id"] = run_id
        stats["last_run"] = started.isoformat()

        fetched, writing = await pipeline.write(
            lambda batches: self.post_repository.write_observations(
                run_id, self.story_list, batches, started
            )
        )
        t_fetched = time.perf_counter()
        written = await writing
        kept = [p for p in fetched.posts if p.score >= self.score_threshold]
        inserted = set(written.inserted)
        new_posts = [p for p in kept if p.hn_id in inserted]

        stats.update(
            items_requested=len(fetched.ids),
            posts_fetched=len(kept),
            posts_saved=len(new_posts),
            duplicates_skipped=len(kept) - len(new_posts),
            below_threshold=len(fetched.posts) - len(kept),
            unavailable=fetched.unavailable,
            errors=fetched.errors,
            snapshots=written.snapshots,
        )
        if fetched.error_samples:
            stats["error_samples"] = fetched.error_samples
        t_written = time.perf_counter()
        stats.update(await self._cache_new_posts(run_id, new_posts, pending))
        t_done = time.perf_counter()
        stats.update(
            fetch_s=round(t_fetched - t0, 3),
            write_s=round(t_written - t_fetched, 3),
            cache_s=round(t_done - t_written, 3),
            duration_s=round(t_done - t0, 3),
        )
        return stats

    async def _fetch(self, arrivals: asyncio.Queue[Batch | None]) -> _Fetched:
        """The list, then its items; each answer is parsed as it arrives and queued for
        the writer (its observations and posts). ``posts`` end in rank order."""
        fetched = _Fetched()
        found: list[tuple[int, Post | None]] = []
        failed: list[tuple[int, str]] = []
        threshold = self.score_threshold

        def arrived(index: int, result: ItemResult) -> None:
            rank = index + 1
            if not result.ok:
                failed.append((rank, f"{result.id}: {result.error}"))
                return
            parsed = parse_item(result.data, collected_at=collected_at)
            if isinstance(parsed, Post):
                seen = Observation(parsed.hn_id, rank, parsed.score, parsed.comment_count)
                found.append((rank, parsed))
                batch = Batch([seen], [parsed] if parsed.score >= threshold else [], [parsed])
            elif parsed is Skip.MALFORMED:
                failed.append((rank, ""))
                return
            else:
                found.append((rank, None))
                batch = Batch([Observation(result.id, rank, None, None)])
            arrivals.put_nowait(batch)

        async with self.hn_client as hn:
            hn.restart_deadline()
            requests, failures = hn.requests_made, collections.Counter(hn.failures)
            try:
                ids = (await hn.story_ids(self.story_list))[: self.limit]
                collected_at = self.clock()
                await hn.items(ids, arrived)
            except FetchError as exc:
                raise FetchError(f"cannot fetch the {self.story_list} list: {exc}") from None
            finally:  # what the API was asked and how it failed, for the record and metrics
                self._statistics["api_requests"] = hn.requests_made - requests
                self._statistics["api_failures"] = dict(hn.failures - failures)
        fetched.ids = ids
        found.sort(key=lambda entry: entry[0])
        fetched.posts = [post for _, post in found if post is not None]
        fetched.unavailable = sum(post is None for _, post in found)
        fetched.errors = len(failed)
        fetched.error_samples = [text for _, text in sorted(failed) if text][:5]
        return fetched

    async def _cache_new_posts(
        self,
        run_id: int,
        new_posts: list[Post],
        pending: list[int],
    ) -> dict[str, Any]:
        """Write new posts, then any a crashed or locked run left out; clear the flags.

        RocksDB is opened here, after PostgreSQL committed: a crash between the two
        leaves the run's ``cache_pending`` flag for the next run's reconcile."""
        repo = self.post_repository
        opened_here = not self.rocksdb_store.is_open
        try:
            store = self.rocksdb_store.open()
        except CacheError as exc:
            log.warning(
                "run %s: posts saved but not cached (%s); the next run fills them", run_id, exc
            )
            return {"posts_cached": 0, "cache_error": str(exc)}
        try:
            cached = store.put_metadata(new_posts)
            reconciled = 0
            if pending:
                stored = await repo.posts_by_hn_ids()
                missing = set(store.missing([p.hn_id for p in stored]))
                reconciled = store.put_metadata(p for p in stored if p.hn_id in missing)
                log.info("reconciled %s cache entries left by runs %s", reconciled, pending)
            if new_posts or pending:  # the flags that were set
                await records.clear_cache_pending(repo.engine, [run_id, *pending])
        except CacheError as exc:
            return {"posts_cached": 0, "cache_error": str(exc)}
        finally:
            if opened_here:
                store.close()
        return {"posts_cached": cached, "reconciled": reconciled}

    async def _record_failure(self, run_id: int, exc: BaseException) -> None:
        """Record the failure, retrying for a few seconds: PostgreSQL may be restarting."""
        self._statistics["error"] = str(exc)
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_delay(self.record_retry_s),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2),
            retry=tenacity.retry_if_exception_type(DatabaseUnavailableError),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await records.finish_run(
                        self.engine,
                        run_id,
                        "failed",
                        self.clock(),
                        self._statistics,
                        error=str(exc) or repr(exc),
                    )
        except Exception as record_exc:  # still unreachable: the stale-run sweep closes it
            log.error(
                "run %s failed (%s) and could not be recorded: %s",
                run_id,
                exc,
                str(record_exc).splitlines()[0],
            )
