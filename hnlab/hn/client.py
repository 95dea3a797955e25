"""HNClient: the HN API over async aiohttp, fast, bounded, retrying and null-tolerant.

By default requests go straight through one pooled ``aiohttp`` session: the HN
API is plain GETs with no cookies, auth or redirects, and aiohttp's pool stays
cheap at 100 requests in flight where httpx's own pool is CPU-bound (httpcore
#924, #1035). Building an ``httpx.Request`` per item (its URL parser alone)
cost as much CPU as the rest of the request, so the default path builds none.
Hand in ``transport=`` to go through an httpx transport instead (tests use
``httpx.MockTransport``, the demo the in-process simulator), or ``client=`` to
go through an ``httpx.AsyncClient`` of your own, with everything it does.

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
from typing import Any, NamedTuple

import aiohttp
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


class _Answer(NamedTuple):
    """What one GET answered: the status, its ``Retry-After`` header and the body."""

    status: int
    retry_after: str | None
    content: bytes


def _retry_after(value: str | None) -> float | None:
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


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Frozen:
    """Keeps the cyclic GC from rescanning, during batches, the objects that existed before.

    Each request allocates enough containers to trigger a young collection every few
    requests, and the older generations' collections walk every module loaded in the
    process (~110 k objects with SQLAlchemy and pandas): ~45 us per request, a quarter
    of the client's CPU. ``gc.freeze()`` parks the existing objects (objects made during
    a batch are collected as usual) and ``gc.unfreeze()`` hands them back; both are
    O(1). Batches overlap (the item stream's workers), so the first to start freezes
    and the last to end unfreezes. ``gc.get_freeze_count()`` walks the frozen objects
    (8 ms with pandas loaded), so it is asked only when nothing of ours is frozen:
    skipped when the GC is off or someone else has frozen objects.
    """

    def __init__(self) -> None:
        self.batches = 0
        self.ours = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.batches == 0:
            self.ours = gc.isenabled() and not gc.get_freeze_count()
            if self.ours:
                gc.freeze()
        self.batches += 1
        try:
            yield
        finally:
            self.batches -= 1
            if self.batches == 0 and self.ours:
                gc.unfreeze()
                self.ours = False


_older_objects_frozen = _Frozen()


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
        self._session: aiohttp.ClientSession | None = None
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
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.concurrency, ssl=_ssl_context(), enable_cleanup_closed=True
                ),
                headers=dict(self._headers),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=self.timeout.connect,
                    sock_read=self.timeout.read,
                    connect=self.timeout.pool,
                ),
                auto_decompress=True,
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
        if self._session is not None:
            await self._session.close()
        self._session = None
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

    async def _send(self, url: str) -> _Answer:
        """GET ``url`` and read the body: through the aiohttp session, or the handed-in
        httpx transport or client. Transport failures raise ``_Retryable``."""
        if self._session is not None:
            try:
                async with self._session.get(url, allow_redirects=False) as response:
                    content = await response.read()
                    return _Answer(response.status, response.headers.get("Retry-After"), content)
            except aiohttp.ServerTimeoutError as exc:
                self.failures["timeout"] += 1
                kind = (
                    "ConnectTimeout"
                    if isinstance(exc, aiohttp.ConnectionTimeoutError)
                    else "ReadTimeout"
                )
                raise _Retryable(f"timed out ({kind})") from None
            except aiohttp.ClientError as exc:
                self.failures["connection"] += 1
                raise _Retryable(f"connection failed ({_first_line(exc)})") from None
        try:
            if self._client is not None:
                reply = await self._client.get(url)
            else:
                assert self._transport is not None
                request = httpx.Request(
                    "GET", url, headers=self._headers, extensions=self._extensions
                )
                reply = await self._transport.handle_async_request(request)
                try:
                    await reply.aread()
                finally:
                    await reply.aclose()
        except httpx.TimeoutException as exc:
            self.failures["timeout"] += 1
            raise _Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            self.failures["connection"] += 1
            raise _Retryable(f"connection failed ({_first_line(exc)})") from None
        return _Answer(reply.status_code, reply.headers.get("Retry-After"), reply.content)

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
        status = response.status
        if status == 429 or status >= 500:
            self.failures["rate_limited" if status == 429 else "http_5xx"] += 1
            raise _Retryable(f"HTTP {status}", _retry_after(response.retry_after))
        if status >= 400:
            self.failures["http_4xx"] += 1
            raise _Permanent(f"HTTP {status}")
        try:
            return json.loads(response.content)
        except ValueError:
            self.failures["invalid_json"] += 1
            raise _Permanent(f"invalid JSON ({len(response.content)} bytes)") from None
