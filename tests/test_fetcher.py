"""The polite fetcher against a misbehaving web stand-in on loopback: robots.txt, one
request at a time per host with the delay between, internal addresses refused (a
redirect to one included), a gzip bomb cut at the limit, Retry-After kept, and every
outcome the fetcher gives."""

from __future__ import annotations

import asyncio
import itertools
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hnlab.content.fetcher import Fetched, PoliteFetcher
from hnlab.content.guard import Allow

PAGE = b"<html><head><title>A page</title></head><body><p>Words.</p></body></html>"


def bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (a thousandth of the size)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    out = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join(out) + packer.flush()


BOMB = bomb(24 << 20)


class Site:
    """A web stand-in that records each request's path and when it was served."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float, float]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            return self.answer(request)
        finally:
            self.in_flight -= 1
            self.seen.append((request.path_qs, started, time.monotonic()))

    def answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nDisallow: /private\n")
        if path == "/internal":
            return web.Response(status=302, headers={"Location": "http://169.254.169.254/latest"})
        if path == "/loop":
            return web.Response(status=302, headers={"Location": "/loop"})
        if path == "/moved":
            return web.Response(status=301, headers={"Location": "/article"})
        if path == "/bomb":
            return web.Response(body=BOMB, headers={**html, "Content-Encoding": "gzip"})
        if path == "/busy":
            return web.Response(status=429, headers={"Retry-After": "7"})
        if path == "/gone":
            return web.Response(status=404)
        if path == "/archive.zip":
            return web.Response(body=b"PK\3\4", content_type="application/zip")
        return web.Response(body=PAGE, headers=html)


async def with_site(
    go: Callable[[Site], Awaitable[Any]],
) -> Any:
    site = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    site.url = f"http://127.0.0.1:{port}"
    try:
        return await go(site)
    finally:
        await runner.cleanup()


def fetcher(**values: Any) -> PoliteFetcher:
    values.setdefault("allow", Allow(["127.0.0.1"]))
    values.setdefault("host_delay", 0.05)
    return PoliteFetcher(**values)


def test_a_loopback_url_is_refused_without_allow_and_nothing_is_asked() -> None:
    async def go(site: Site) -> Fetched:
        async with PoliteFetcher(allow=Allow()) as f:
            return await f.fetch(f"{site.url}/article")

    site_seen: list[Any] = []

    async def run(site: Site) -> Fetched:
        result = await go(site)
        site_seen.extend(site.seen)
        return result

    result = asyncio.run(with_site(run))
    assert (result.outcome, result.detail) == ("blocked_address", "127.0.0.1 is a loopback address")
    assert site_seen == []  # not even robots.txt


def test_a_redirect_from_an_allowed_host_to_an_internal_address_is_refused() -> None:
    async def go(site: Site) -> Fetched:
        async with fetcher() as f:
            return await f.fetch(f"{site.url}/internal")

    result = asyncio.run(with_site(go))
    assert result.outcome == "blocked_address"
    assert result.detail == "169.254.169.254 is a link-local address"
    assert result.final_url == "http://169.254.169.254/latest"


def test_robots_disallowed_paths_are_not_fetched_and_one_host_gets_one_request_at_a_time() -> None:
    delay = 0.2

    async def go(site: Site) -> tuple[list[Fetched], Site]:
        async with fetcher(host_delay=delay) as f:
            paths = ["/article?n=1", "/private/secret", "/article?n=2", "/moved", "/article?n=3"]
            results = await asyncio.gather(*(f.fetch(site.url + p) for p in paths))
        return list(results), site

    results, site = asyncio.run(with_site(go))
    assert [r.outcome for r in results] == ["ok", "robots_disallowed", "ok", "ok", "ok"]
    assert results[0].body == PAGE and results[3].final_url.endswith("/article")  # type: ignore[union-attr]
    paths = [p for p, _, _ in site.seen]
    assert not any(p.startswith("/private") for p in paths)
    assert paths.count("/robots.txt") == 1  # read once, cached for the host
    assert site.most_in_flight == 1
    ordered = sorted(site.seen, key=lambda s: s[1])
    gaps = [b[1] - a[2] for a, b in itertools.pairwise(ordered)]
    # robots.txt, three pages, the redirect and its target: six requests, five gaps
    assert len(gaps) == 5 and min(gaps) >= delay


def test_outcomes_bomb_retry_after_types_and_loops() -> None:
    async def go(site: Site) -> dict[str, Fetched]:
        async with fetcher(max_bytes=1_000_000) as f:
            tracemalloc.start()
            bombed = await f.fetch(f"{site.url}/bomb")
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out = {"bomb": bombed}
            for path in ("/busy", "/gone", "/archive.zip", "/loop"):
                out[path] = await f.fetch(site.url + path)
        assert peak < 8_000_000, peak  # the 24 MB inside never all in memory
        return out

    found = asyncio.run(with_site(go))
    assert (found["bomb"].outcome, found["bomb"].detail) == (
        "too_large",
        "over 1000000 bytes decompressed",
    )
    busy = found["/busy"]
    assert (busy.outcome, busy.detail, busy.retry_after) == ("http_error", "429", 7.0)
    assert (found["/gone"].outcome, found["/gone"].detail) == ("http_error", "404")
    assert (found["/archive.zip"].outcome, found["/archive.zip"].detail) == (
        "unsupported_type",
        "application/zip",
    )
    assert (found["/loop"].outcome, found["/loop"].detail) == ("error", "more than 5 redirects")
    assert len(found["/loop"].hops) == 6


def test_a_silent_host_times_out() -> None:
    async def go() -> Fetched:
        writers: list[asyncio.StreamWriter] = []
        done = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.read(1024)
            await done.wait()  # answers nothing until the test is over

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with fetcher(read_timeout=0.3) as f:
                return await f.fetch(f"http://127.0.0.1:{port}/article")
        finally:
            done.set()
            server.close()
            for writer in writers:  # the server's side of each connection, closed here
                writer.close()
            await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
            await server.wait_closed()

    result = asyncio.run(go())
    # robots.txt timing out means "allow nothing until read again": the page is not asked
    assert result.outcome == "robots_disallowed"
