"""HNClient: the HN API over async httpx, fast, bounded, retrying and null-tolerant.

httpx's own connection pool is CPU-bound at ~100 requests in flight (httpcore
#924, #1035), so by default requests go through the ``httpx-aiohttp`` transport:
httpx requests and responses, aiohttp's pool underneath. HNClient hands each
``httpx.Request`` straight to that transport: the HN API is plain GETs with no
cookies, auth or redirects, and skipping ``AsyncClient.send`` (cookie
extraction, auth and redirect generators) halves the client's CPU per request.
Hand in ``transport=`` to use another transport (tests use
``httpx.MockTransport``), or ``client=`` to go through an ``httpx.AsyncClient``
of your own, with everything it does.

``rate`` caps requests a second with aiolimiter's leaky bucket (the backfill's
``HNLAB_ITEMS_RATE``).

Retries (tenacity): connection errors, timeouts, 5xx and 429 are retried with
exponential backoff and jitter, honouring ``Retry-After``, for at most
``retry_attempts`` tries and never past the client's total ``deadline``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import json
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import tenacity

from hnlab import __version__
from hnlab.config import DEFAULT_HN_API_URL, STORY_LISTS
from hnlab.errors import FetchError

_MAX_RETRY_AFTER_S = 120.0


class _Retryable(Exception):
    """A response or transport failure worth another try."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    """A failure that another try will not fix (4xx, bad JSON)."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item of a batch: ``data`` (a dict, or None for a ``null`` body) or ``error``."""

    id: int
    data: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, _MAX_RETRY_AFTER_S))


def _describe(exc: httpx.TransportError) -> str:
    """A short reason for a transport failure.

    httpx-aiohttp maps every aiohttp connection error, a refused connection
    included, to ``ConnectTimeout``; the aiohttp cause tells which it was.
    """
    cause = exc.__cause__
    if isinstance(cause, TimeoutError) or (
        isinstance(exc, httpx.TimeoutException) and cause is None
    ):
        return f"timed out ({type(exc).__name__})"
    if cause is not None and "Timeout" in type(cause).__name__:
        return f"timed out ({type(exc).__name__})"
    detail = str(cause or exc).splitlines()[0] if str(cause or exc) else type(exc).__name__
    return f"connection failed ({detail})"


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Keep the cyclic GC from rescanning, during a batch, the objects that existed before it.

    Each request allocates enough containers to trigger a young collection every few
    requests, and the older generations' collections walk every module loaded in the
    process (~110 k objects with SQLAlchemy and pandas): ~45 us per request, a quarter
    of the client's CPU. ``gc.freeze()`` parks the existing objects (objects made during
    the batch are collected as usual) and ``gc.unfreeze()`` hands them back; both are
    O(1). Skipped when the GC is off or someone else has frozen objects.
    """
    if not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default verifying SSL context, built once per process (loading CA roots takes ~15 ms)."""
    return httpx.create_ssl_context()


class HNClient:
    """Async client of the HN Firebase API: ``async with HNClient(...) as hn:``."""

    def __init__(
        self,
        base_url: str = DEFAULT_HN_API_URL,
        *,
        concurrency: int = 100,
        timeout: float | httpx.Timeout = 10.0,
        connect_timeout: float = 5.0,
        retry_attempts: int = 4,
        deadline: float = 300.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 8.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"HNClient concurrency must be >= 1, got {concurrency!r}")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else httpx.Timeout(timeout, connect=connect_timeout)
        )
        self.retry_attempts = retry_attempts
        self.deadline = deadline
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=backoff_initial, max=backoff_max, jitter=backoff_initial
        )
        self._given_client = client
        self._given_transport = transport
        self._client: httpx.AsyncClient | None = None
        self._transport: httpx.AsyncBaseTransport | None = None
        self._headers = httpx.Headers(
            {
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": f"hnlab/{__version__}",
            }
        )
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._closed = False
        self._depth = 0
        self._deadline_at = 0.0
        self._semaphore: asyncio.Semaphore | None = None
        self.rate = rate
        """At most this many requests a second (retries included); None: no cap."""
        self._limiter: Any = None
        self.requests_made = 0
        self.retries_made = 0
        self.failures: collections.Counter[str] = collections.Counter()
        """Failed requests by reason: timeout, connection, rate_limited, http_5xx, http_4xx,
        invalid_json, deadline (every attempt counts, retried or not)."""

    # -- life cycle ---------------------------------------------------------------------
    async def __aenter__(self) -> HNClient:
        """Open a session (one per run); nested entries share it."""
        if self._closed:
            raise RuntimeError("this HNClient is closed; create a new one")
        self._depth += 1
        if self._depth > 1:
            return self
        if self._given_client is not None:
            self._client = self._given_client
        elif self._given_transport is not None:
            self._transport = self._given_transport
        else:
            from httpx_aiohttp import AiohttpTransport

            self._transport = AiohttpTransport(
                verify=_ssl_context(),
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
            )
        self._semaphore = asyncio.Semaphore(self.concurrency)
        if self.rate is not None:
            from aiolimiter import AsyncLimiter

            # a bucket of one second's requests: a pass starts at full speed, then holds it
            self._limiter = AsyncLimiter(self.rate, 1.0)
        self.restart_deadline()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            await self._close_session()

    async def _close_session(self) -> None:
        if self._transport is not None and self._given_transport is None:
            await self._transport.aclose()
        self._client = None
        self._transport = None

    async def aclose(self) -> None:
        """Close for good: a closed HNClient refuses to open again."""
        await self._close_session()
        self._depth = 0
        self._closed = True

    def restart_deadline(self) -> None:
        """Start a new total deadline (one per run)."""
        self._deadline_at = time.monotonic() + self.deadline

    @property
    def remaining(self) -> float:
        """Seconds left before the run's deadline."""
        return self._deadline_at - time.monotonic()

    # -- API ----------------------------------------------------------------------------
    async def story_ids(self, list_name: str = "top") -> list[int]:
        """Ids of a list (top, new, best, ask, show or job), in rank order."""
        if list_name not in STORY_LISTS:
            raise ValueError(
                f"story list must be one of {', '.join(STORY_LISTS)}, got {list_name!r}"
            )
        data = await self._get_json(f"{list_name}stories.json")
        if not isinstance(data, list):
            raise FetchError(f"{list_name}stories.json did not return a list of ids")
        return [i for i in data if isinstance(i, int) and not isinstance(i, bool)]

    async def item(self, item_id: int) -> dict[str, Any] | None:
        """One item, or None when the API answers ``null``. Raises FetchError."""
        data = await self._get_json(f"item/{int(item_id)}.json")
        if data is not None and not isinstance(data, dict):
            raise FetchError(f"item {item_id} is not a JSON object")
        return data

    async def items(
        self,
        ids: Sequence[int],
        on_result: Callable[[int, ItemResult], None] | None = None,
    ) -> list[ItemResult]:
        """Fetch ``ids`` concurrently, in their order; failures are per item, never raised.

        ``on_result(index, result)`` is called as each answer arrives, so a caller can
        work on the first answers while the last are in flight."""
        if on_result is None:
            calls = [self._item_result(i) for i in ids]
        else:
            calls = [self._item_result(i, index, on_result) for index, i in enumerate(ids)]
        with _older_objects_frozen():
            return list(await asyncio.gather(*calls))

    async def max_item(self) -> int:
        """The newest item id."""
        data = await self._get_json("maxitem.json")
        if not isinstance(data, int):
            raise FetchError("maxitem.json did not return an id")
        return data

    # -- internals ----------------------------------------------------------------------
    async def _item_result(
        self,
        item_id: int,
        index: int = 0,
        on_result: Callable[[int, ItemResult], None] | None = None,
    ) -> ItemResult:
        try:
            result = ItemResult(item_id, await self.item(item_id))
        except FetchError as exc:
            result = ItemResult(item_id, None, str(exc))
        if on_result is not None:
            on_result(index, result)
        return result

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        wait: float = self._backoff(state)
        return wait

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.retry_attempts:
            return True
        return self._wait(state) >= self.remaining

    async def _get_json(self, path: str) -> Any:
        url = f"{self.base_url}/{path}"
        if self._semaphore is None:
            raise RuntimeError("HNClient is not open; use 'async with HNClient(...) as hn:'")
        try:
            try:
                return await self._attempt(url)  # most requests: no retry machinery at all
            except _Retryable as first:
                return await self._retry(url, first)
        except _Retryable as exc:
            raise FetchError(f"{path}: {exc} (gave up after retries)") from None
        except _Permanent as exc:
            raise FetchError(f"{path}: {exc}") from None

    async def _retry(self, url: str, first: _Retryable) -> Any:
        """Retry with tenacity after a failed first try, which counts as attempt 1.

        The first try runs outside tenacity (setting up a retry loop costs more CPU
        than the request itself); tenacity replays its failure, so the backoff,
        ``Retry-After`` and the attempt limit see it as an ordinary attempt.
        """
        failures = [first]

        async def attempt() -> Any:
            if failures:
                raise failures.pop()
            return await self._attempt(url)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=self._stop,
            reraise=True,
            before_sleep=self._count_retry,
        )
        return await retrying(attempt)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries_made += 1

    async def _send(self, url: str) -> httpx.Response:
        """GET ``url`` and read the body, through the transport or the handed-in client."""
        if self._client is not None:
            return await self._client.get(url)
        assert self._transport is not None
        request = httpx.Request("GET", url, headers=self._headers, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _attempt(self, url: str) -> Any:
        assert self._semaphore is not None
        remaining = self.remaining
        if remaining <= 0:
            self.failures["deadline"] += 1
            raise _Permanent("run deadline exceeded")
        if self._limiter is not None:
            await self._limiter.acquire()
        async with self._semaphore:
            self.requests_made += 1
            try:
                async with asyncio.timeout(remaining):
                    response = await self._send(url)
            except TimeoutError:
                self.failures["deadline"] += 1
                raise _Permanent("run deadline exceeded") from None
            except httpx.TransportError as exc:
                self.failures[
                    "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
                ] += 1
                raise _Retryable(_describe(exc)) from None
        status = response.status_code
        if status == 429 or status >= 500:
            self.failures["rate_limited" if status == 429 else "http_5xx"] += 1
            raise _Retryable(f"HTTP {status}", _retry_after(response))
        if status >= 400:
            self.failures["http_4xx"] += 1
            raise _Permanent(f"HTTP {status}")
        try:
            return json.loads(response.content)
        except ValueError:
            self.failures["invalid_json"] += 1
            raise _Permanent(f"invalid JSON ({len(response.content)} bytes)") from None
