"""The content job: fetch the links of the stories that matter, archive, extract, store.

Every ``HNLAB_CONTENT_EVERY`` minutes (``hnlab run``), or by hand with
``hnlab content fetch``: the stories that reached rank <= ``HNLAB_CONTENT_TOP`` on
top, or were saved as posts, are fetched once by the ``PoliteFetcher``; every
response goes to the WARC archive; pages that came back whole are extracted in a
process pool (so the event loop never waits on trafilatura), and each story gets
one row in ``contents`` with its outcome.

Failures that may pass are tried again later (``retry_at``): a 429 or 503 after its
``Retry-After`` (at least a minute), a timeout or a connection error after an hour,
at most ``MAX_ATTEMPTS`` times in all.

``reextract`` reads the archive again with no network and records the extractor's
name and version on each row.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hnlab.clock import Clock, utc_now
from hnlab.content.archive import Archive, read
from hnlab.content.extract import Extracted, extract, extractor_version
from hnlab.content.fetcher import Fetched, PoliteFetcher
from hnlab.content.guard import Allow
from hnlab.jobs import Body, Job, Runtime, register
from hnlab.store.contents import ContentRepository

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hnlab.config import Settings

MAX_ATTEMPTS = 3
RETRY_LATER = timedelta(hours=1)
MIN_RETRY = timedelta(minutes=1)
PER_PASS = 200
LAG_TICK_S = 0.01


@dataclass
class ContentStats:
    """What one pass did."""

    due: int = 0
    fetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    extracted: int = 0
    archived: int = 0
    loop_lag_ms: float = 0.0  # the event loop's worst delay while the pass ran
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _extract(body: bytes, url: str | None, content_type: str | None) -> Extracted:
    """The pool's task (module level, so it pickles)."""
    return extract(body, url=url, content_type=content_type)


@contextmanager
def extraction_pool(workers: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """Worker processes for extraction, started by forkserver (never a fork of a process
    that holds an event loop, threads or database connections)."""
    count = workers or max(1, min(2, os.cpu_count() or 1))
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context(method))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class LagMeter:
    """The event loop's worst lag: a ticker that asks to wake every 10 ms and measures
    how late it woke."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.worst = max(self.worst, time.perf_counter() - start - LAG_TICK_S)

    def __enter__(self) -> LagMeter:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def fields_of(found: Extracted) -> dict[str, Any]:
    """An extraction as ``contents`` columns."""
    return {
        "outcome": "not_article" if found.not_article else "ok",
        "detail": found.not_article,
        "title": found.title,
        "author": found.author,
        "published": found.published,
        "language": found.language,
        "text": found.text,
        "markdown": found.markdown,
        "word_count": found.word_count,
        "extractor": "hnlab.content.extract",
        "extractor_version": extractor_version(),
    }


_EMPTY = dict.fromkeys(
    ("title", "author", "published", "language", "text", "markdown", "word_count"), None
)


class ContentJob:
    """One pass: ``await ContentJob(settings, engine).run()``."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        clock: Clock = utc_now,
        pool: Executor | None = None,
        rewrite: Callable[[str], str] | None = None,
    ) -> None:
        """``rewrite`` maps a story's URL to the one fetched (the simulator's web on
        loopback); the row keeps the story's URL."""
        self.rewrite = rewrite
        self._robots: dict[str, tuple[float, object]] = {}  # shared by this job's passes
        self.settings = settings
        self.repository = ContentRepository(engine)
        self.clock = clock
        self.pool = pool

    def fetcher(self) -> PoliteFetcher:
        s = self.settings
        return PoliteFetcher(
            user_agent=s.content_user_agent,
            host_delay=s.content_host_delay,
            concurrency=max(1, min(s.concurrency, 32)),
            max_bytes=s.content_max_bytes,
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            allow=Allow(s.content_allow),
            robots=self._robots,
        )

    async def run(self, hn_ids: Sequence[int] | None = None) -> ContentStats:
        """Fetch what is due (or exactly ``hn_ids``, even if fetched before)."""
        t0 = time.perf_counter()
        stats = ContentStats()
        if hn_ids:
            urls = await self.repository.urls(hn_ids)
            missing = [i for i in hn_ids if not urls.get(i)]
            if missing:
                from hnlab.errors import HnlabError

                raise HnlabError(
                    f"no stored URL for {', '.join(map(str, missing))}; these must be "
                    "stories with a link that hnlab has collected (hnlab collect or items sync)"
                )
            due = [(i, str(urls[i])) for i in hn_ids]
        else:
            due = await self.repository.due(
                self.clock(), top=self.settings.content_top, limit=PER_PASS, attempts=MAX_ATTEMPTS
            )
        stats.due = len(due)
        if not due:
            return stats
        await asyncio.to_thread(extractor_version)  # its first lookup scans sys.path
        with (
            self._pool() as pool,
            Archive(self.settings.data_dir) as archive,
            LagMeter() as lag,
        ):
            async with self.fetcher() as fetcher:
                await asyncio.gather(
                    *(self._one(fetcher, archive, pool, i, url, stats) for i, url in due)
                )
        stats.loop_lag_ms = round(lag.worst * 1000, 1)
        stats.duration_s = round(time.perf_counter() - t0, 3)
        return stats

    @contextmanager
    def _pool(self) -> Iterator[Executor]:
        if self.pool is not None:
            yield self.pool
        else:
            with extraction_pool() as pool:
                yield pool

    async def _one(
        self,
        fetcher: PoliteFetcher,
        archive: Archive,
        pool: Executor,
        hn_id: int,
        url: str,
        stats: ContentStats,
    ) -> None:
        fetched = await fetcher.fetch(self.rewrite(url) if self.rewrite else url)
        fetched.url = url
        stats.fetched += 1
        where = await asyncio.to_thread(archive.write, fetched.hops) if fetched.hops else None
        if where is not None:
            stats.archived += 1
        row = self._row(hn_id, fetched, where)
        if fetched.outcome == "ok":
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(
                pool, _extract, fetched.body, fetched.final_url, fetched.content_type
            )
            row.update(fields_of(found))
            stats.extracted += 1
        stats.outcomes[row["outcome"]] = stats.outcomes.get(row["outcome"], 0) + 1
        await self.repository.save(row)

    def _row(self, hn_id: int, fetched: Fetched, where: tuple[str, int] | None) -> dict[str, Any]:
        now = self.clock()
        return {
            "hn_id": hn_id,
            "url": fetched.url,
            "final_url": fetched.final_url,
            "outcome": fetched.outcome,
            "detail": fetched.detail,
            "http_status": fetched.status,
            "content_type": fetched.content_type,
            "fetched_at": now,
            "retry_at": self._retry_at(fetched, now),
            "warc_file": where[0] if where else None,
            "warc_offset": where[1] if where else None,
            "extractor": None,
            "extractor_version": None,
            **_EMPTY,
        }

    @staticmethod
    def _retry_at(fetched: Fetched, now: datetime) -> datetime | None:
        """When a failure that may pass is tried again (None: never); ``due`` stops
        after MAX_ATTEMPTS fetches."""
        if fetched.outcome == "http_error" and fetched.status in (429, 503):
            wait = timedelta(seconds=fetched.retry_after) if fetched.retry_after else RETRY_LATER
            return now + max(wait, MIN_RETRY)
        if fetched.outcome in ("timeout", "error"):
            return now + RETRY_LATER
        return None

    async def reextract(self, since: datetime | None = None) -> dict[str, Any]:
        """Extract every archived page again from the WARC files, with no network."""
        rows = await self.repository.archived(since)
        done, missing = 0, 0
        changed: dict[str, int] = {}
        with self._pool() as pool:
            loop = asyncio.get_running_loop()
            for row in rows:
                try:
                    stored = await asyncio.to_thread(
                        read, self.settings.data_dir / row["warc_file"], row["warc_offset"]
                    )
                except (OSError, ValueError, StopIteration):
                    missing += 1
                    continue
                found = await loop.run_in_executor(
                    pool, _extract, stored.body, row["final_url"], stored.content_type
                )
                values = fields_of(found)
                if values["outcome"] != row["outcome"]:
                    key = f"{row['outcome']}->{values['outcome']}"
                    changed[key] = changed.get(key, 0) + 1
                await self.repository.update(row["hn_id"], values)
                done += 1
        return {
            "reextracted": done,
            "missing_records": missing,
            "changed": changed,
            "extractor_version": extractor_version(),
        }


CONTENT_JOB_ID = "content_fetch"


def _content_job(runtime: Runtime) -> Body:
    """A pass every HNLAB_CONTENT_EVERY minutes."""
    job = ContentJob(runtime.settings, runtime.parts.engine, clock=runtime.clock)
    runtime.say(
        f"fetching the links of stories at rank <= {runtime.settings.content_top} every "
        f"{runtime.settings.content_every} min ({runtime.settings.label('content_every')})"
    )

    async def fetch() -> str | None:
        from hnlab.errors import DatabaseError

        try:
            stats = await job.run()
        except DatabaseError as exc:
            return f"content fetch failed: {exc}"
        runtime.metrics.observe_content(stats.outcomes, stats.loop_lag_ms / 1000)
        return None

    return fetch


register(
    Job(
        CONTENT_JOB_ID,
        "Content fetch",
        "content_every",
        trigger=lambda s: f"*/{s.content_every} * * * *" if s.content_every else None,
        build=_content_job,
        group="items",
        options={"max_instances": 1, "coalesce": True, "misfire_grace_time": 120},
    )
)
