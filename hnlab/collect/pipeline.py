"""Fetch while writing: the one pipeline every job that fetches and writes goes through.

A job's fetch runs as a task and queues each part (a parsed answer, a list's
memberships) the moment it arrives. Its writer holds one transaction open and
writes, per statement, whatever has queued up while its previous statement ran
(``drain``), so when the last answer comes only the last batch and the commit
remain. A failed or cancelled fetch cancels the writer: its transaction rolls
back and nothing of that run is written.

The fetch starts first (``Pipeline(fetch)``), so a job can claim its slot or
record while the lists load, and ``cancel()`` the fetch if the claim fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar


class _Part(Protocol):
    def extend(self, other: Any) -> None: ...


PartT = TypeVar("PartT", bound=_Part)
FetchedT = TypeVar("FetchedT")
WrittenT = TypeVar("WrittenT")


async def drain(arrivals: asyncio.Queue[PartT | None]) -> AsyncIterator[PartT]:
    """What has queued up since the last part, as one part, until ``None`` arrives: a
    writer takes all that came while its previous statement ran."""
    while True:
        item = await arrivals.get()
        if item is None:
            return
        part = item
        while not arrivals.empty():
            more = arrivals.get_nowait()
            if more is None:
                yield part
                return
            part.extend(more)
        yield part


class Pipeline(Generic[PartT, FetchedT]):
    """A fetch that queues parts as they arrive, and the writer that takes them.

    ``fetch`` receives the queue; what it returns is handed back by ``write``.
    Create it inside a running event loop: the fetch starts at once.
    """

    def __init__(self, fetch: Callable[[asyncio.Queue[PartT | None]], Awaitable[FetchedT]]) -> None:
        self.arrivals: asyncio.Queue[PartT | None] = asyncio.Queue()
        self.fetching: asyncio.Task[FetchedT] = asyncio.ensure_future(fetch(self.arrivals))

    async def cancel(self) -> None:
        """Stop the fetch (a claim failed); nothing has been written."""
        self.fetching.cancel()
        await asyncio.gather(self.fetching, return_exceptions=True)

    async def write(
        self, writer: Callable[[AsyncIterator[PartT]], Awaitable[WrittenT]]
    ) -> tuple[FetchedT, asyncio.Task[WrittenT]]:
        """Start ``writer`` on the parts, wait for the fetch, and return what it fetched
        and the writing task, which finishes once the caller's final step (if any) is done.

        If the fetch fails, the writer is cancelled (its transaction rolls back) and
        the fetch's exception propagates.
        """
        writing = asyncio.ensure_future(writer(drain(self.arrivals)))
        try:
            fetched = await self.fetching
        except BaseException:
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
            raise
        self.arrivals.put_nowait(None)
        return fetched, writing
