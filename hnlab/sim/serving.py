"""``Background``: an aiohttp app served from its own event loop on a daemon thread, so
a stand-in (the HN API, the web) answers while the caller's code runs, sync or async."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class Background:
    """``serve`` sets up an ``AppRunner`` and its sites on the background loop; ``stop``
    cleans the runner up there (handlers still running are cancelled after
    ``shutdown_timeout``) and ends the thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, serve: Callable[[], Awaitable[Any]]) -> None:
        """Run ``serve()`` (it returns the set-up runner) on a new thread's loop; wait
        until it has, and raise what it raised."""
        if self._thread is not None:
            return
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._runner = loop.run_until_complete(serve())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            self._thread = None
            raise errors[0]

    async def _shutdown(self) -> None:
        """On the loop: the runner cleaned up, then every task still running (a handler
        sleeping out a hanging page) cancelled and awaited, so none is left pending."""
        if self._runner is not None:
            await self._runner.cleanup()
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def stop(self) -> None:
        """Stop serving: the runner cleaned up on its loop, then the loop stopped."""
        if self._thread is None or self._loop is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(TimeoutError, RuntimeError):
            done.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None
        self._runner = None
