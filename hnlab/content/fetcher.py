"""PoliteFetcher: one page at a time per host, robots.txt honoured, internal addresses
refused, bodies capped; every attempt ends in one outcome.

Politeness:
* ``robots.txt`` is read with protego for the fetcher's user agent, cached per host
  (scheme, name and port) for a day; a 4xx robots.txt allows everything, any other
  failure allows nothing until it is read again. ``Crawl-delay`` is honoured.
* One request at a time per host, and at least ``host_delay`` seconds (or the
  host's ``Crawl-delay``, whichever is longer) from the end of one to the start of
  the next. ``robots.txt`` and every redirect hop are requests too.
* At most ``concurrency`` requests in flight in all.

Limits: connect and read timeouts, at most ``max_redirects`` redirects, bodies read
as a stream after decompression and cut at ``max_bytes`` (so a gzip bomb stops at
the limit), 429 and 503 answered with their ``Retry-After`` for a later attempt.

Outcomes (``Fetched.outcome``): ``ok``, ``robots_disallowed``, ``blocked_address``,
``http_error`` (``detail``: the code), ``timeout``, ``too_large``,
``unsupported_type`` (``detail``: the type), ``error``. (``not_article`` is the
extractor's verdict on an ``ok`` page.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from hnlab.config import DEFAULT_USER_AGENT
from hnlab.content.guard import Allow, GuardedResolver, RefusedAddress, check_host, describe

log = logging.getLogger(__name__)

OUTCOMES = (
    "ok",
    "robots_disallowed",
    "blocked_address",
    "http_error",
    "timeout",
    "too_large",
    "unsupported_type",
    "not_article",
    "error",
)
SUPPORTED_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/pdf")
ROBOTS_TTL_S = 24 * 3600.0
ROBOTS_MAX_BYTES = 512 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Hop:
    """One request made: its URL, when it started and ended (monotonic), its status,
    and for the archive the request's headers and the response as it came on the wire
    (``raw``: the body still content-encoded; None when none was read whole)."""

    url: str
    started: float
    ended: float = 0.0
    status: int | None = None
    reason: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None
    at: float = 0.0  # wall-clock time of the request, for WARC-Date


@dataclass
class Fetched:
    """What one attempt to fetch a URL came to."""

    url: str
    outcome: str
    detail: str | None = None
    status: int | None = None
    final_url: str | None = None
    content_type: str | None = None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    retry_after: float | None = None
    hops: list[Hop] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, outcome: str, detail: str | None = None) -> None:
        super().__init__(detail or outcome)
        self.outcome = outcome
        self.detail = detail


def origin(url: str) -> str:
    """A host as the politeness rules count it: scheme, name and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class PoliteFetcher:
    """``async with PoliteFetcher(...) as fetcher: await fetcher.fetch(url)``."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        host_delay: float = 1.0,
        concurrency: int = 8,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        allow: Allow | None = None,
        robots: dict[str, tuple[float, object]] | None = None,
    ) -> None:
        """``robots`` is a cache of parsed robots.txt to share between fetchers (a job
        keeps one across its passes, so a host's robots.txt is read once a day)."""
        self.user_agent = user_agent
        self.host_delay = host_delay
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow = allow or Allow()
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=connect_timeout, sock_read=read_timeout, total=None
        )
        self._concurrency = concurrency
        self._gate: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}
        self._robots: dict[str, tuple[float, object]] = {} if robots is None else robots
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> PoliteFetcher:
        self._gate = asyncio.Semaphore(self._concurrency)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(self.allow), limit=0),
            timeout=self._timeout,
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            auto_decompress=False,  # the archive keeps the bytes as served; _Decoder caps
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    # -- politeness -------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _turn(self, url: str, delay: float) -> AsyncIterator[None]:
        """This host's turn: after its previous request ended plus ``delay``, alone."""
        host = origin(url)
        lock = self._locks.setdefault(host, asyncio.Lock())
        assert self._gate is not None
        async with lock:
            wait = self._last.get(host, float("-inf")) + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                async with self._gate:
                    yield
            finally:
                self._last[host] = time.monotonic()

    async def _rules(self, url: str, hops: list[Hop]) -> object:
        """The host's parsed robots.txt (cached a day), read in the host's turn."""
        host = origin(url)
        async with self._robots_locks.setdefault(host, asyncio.Lock()):  # read once per host
            cached = self._robots.get(host)
            if cached is not None and time.monotonic() - cached[0] < ROBOTS_TTL_S:
                return cached[1]
            rules = await self._read_rules(url, hops)
            self._robots[host] = (time.monotonic(), rules)
            return rules

    async def _read_rules(self, url: str, hops: list[Hop]) -> object:
        from protego import Protego

        robots_url = urljoin(url, "/robots.txt")
        rules: object
        try:
            status, _, body, _ = await self._request(robots_url, self.host_delay, hops)
            if status == 200:
                rules = Protego.parse(body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace"))
            elif 400 <= status < 500:
                rules = Protego.parse("")
            else:
                rules = Protego.parse("User-agent: *\nDisallow: /")
        except _Stop as stop:
            if stop.outcome == "blocked_address":
                raise
            rules = Protego.parse("User-agent: *\nDisallow: /")
        return rules

    def _delay(self, rules: object) -> float:
        crawl = rules.crawl_delay(self.user_agent)  # type: ignore[attr-defined]
        return max(self.host_delay, float(crawl or 0))

    # -- requests -----------------------------------------------------------------------------
    async def _request(
        self, url: str, delay: float, hops: list[Hop], *, accept_types: bool = False
    ) -> tuple[int, CIMultiDictProxy[str], bytes, str | None]:
        """One GET in the host's turn: status, headers, body (capped), content type."""
        assert self._session is not None
        check_host(urlsplit(url).hostname or "", self.allow)
        async with self._turn(url, delay):
            hop = Hop(url, time.monotonic(), at=time.time())
            hops.append(hop)
            try:
                async with self._session.get(url, allow_redirects=False) as response:
                    hop.status = response.status
                    hop.reason = response.reason or ""
                    hop.request_headers = list(response.request_info.headers.items())
                    hop.response_headers = [
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
                    ]
                    kind = response.content_type if response.status == 200 else None
                    if accept_types and response.status == 200 and kind not in SUPPORTED_TYPES:
                        raise _Stop("unsupported_type", kind or "none")
                    length = response.content_length
                    if length is not None and length > self.max_bytes:
                        raise _Stop("too_large", f"Content-Length {length}")
                    decoder = _Decoder(response.headers.get("Content-Encoding"), self.max_bytes)
                    raw = bytearray()
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        raw += chunk
                        if len(raw) > self.max_bytes:
                            raise _Stop("too_large", f"over {self.max_bytes} bytes")
                        decoder.feed(chunk)
                    hop.raw = bytes(raw)
                    return response.status, response.headers, decoder.body(hop.raw), kind
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise _Stop("timeout", "no answer in time") from None
            except aiohttp.ClientError as exc:
                refused = describe(exc)
                if refused is not None:
                    raise _Stop("blocked_address", str(refused)) from None
                raise _Stop("error", f"{type(exc).__name__}: {exc}") from None
            except RefusedAddress as exc:
                raise _Stop("blocked_address", str(exc)) from None
            finally:
                hop.ended = time.monotonic()

    async def fetch(self, url: str) -> Fetched:
        """Fetch ``url`` politely, following at most ``max_redirects`` redirects, each
        checked again (robots.txt, address, host turn)."""
        hops: list[Hop] = []
        current = url
        try:
            for _ in range(self.max_redirects + 1):
                if urlsplit(current).scheme not in ("http", "https"):
                    raise _Stop("error", f"not an http(s) URL: {current[:200]}")
                rules = await self._rules(current, hops)
                if not rules.can_fetch(current, self.user_agent):  # type: ignore[attr-defined]
                    raise _Stop("robots_disallowed", origin(current))
                status, headers, body, kind = await self._request(
                    current, self._delay(rules), hops, accept_types=True
                )
                if status in REDIRECTS and headers.get("Location"):
                    current = urljoin(current, headers["Location"])
                    continue
                if status != 200:
                    result = Fetched(url, "http_error", str(status), status, current)
                    if status in (429, 503):
                        result.retry_after = _retry_after(headers.get("Retry-After"))
                    result.hops = hops
                    return result
                return Fetched(
                    url,
                    "ok",
                    None,
                    status,
                    current,
                    kind,
                    body,
                    list(headers.items()),
                    hops=hops,
                )
            raise _Stop("error", f"more than {self.max_redirects} redirects")
        except RefusedAddress as exc:
            return Fetched(url, "blocked_address", str(exc), final_url=current, hops=hops)
        except _Stop as stop:
            last = hops[-1].status if hops else None
            return Fetched(url, stop.outcome, stop.detail, last, current, hops=hops)


class _Decoder:
    """Undo gzip or deflate as the body streams in, stopping past ``limit`` bytes out,
    so a small bomb never grows in memory beyond the limit."""

    def __init__(self, encoding: str | None, limit: int) -> None:
        self.encoding = (encoding or "identity").strip().lower()
        if self.encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise _Stop("error", f"unsupported Content-Encoding {self.encoding[:40]!r}")
        self.limit = limit
        self.out = bytearray()
        # 47: gzip or zlib by their header; deflate may also come raw (checked on first bytes)
        self._inflate = zlib.decompressobj(47) if self.encoding != "identity" else None
        self._started = False

    def feed(self, chunk: bytes) -> None:
        if self._inflate is None:
            return  # identity: the raw body is the body
        raw_deflate = self.encoding == "deflate" and chunk and (chunk[0] & 0x0F) != 8
        if not self._started and raw_deflate:  # no zlib header: a raw deflate stream
            self._inflate = zlib.decompressobj(-15)
        self._started = True
        try:
            self.out += self._inflate.decompress(chunk, self.limit - len(self.out) + 1)
        except zlib.error as exc:
            raise _Stop("error", f"bad {self.encoding} body: {exc}") from None
        if len(self.out) > self.limit:
            raise _Stop("too_large", f"over {self.limit} bytes decompressed")

    def body(self, raw: bytes) -> bytes:
        """The decoded body (``raw`` itself when it was not encoded)."""
        if self._inflate is None:
            return raw
        try:
            self.out += self._inflate.flush()
        except zlib.error as exc:
            raise _Stop("error", f"bad {self.encoding} body: {exc}") from None
        if len(self.out) > self.limit:
            raise _Stop("too_large", f"over {self.limit} bytes decompressed")
        return bytes(self.out)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
