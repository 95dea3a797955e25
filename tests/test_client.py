import asyncio
import gc
import gzip
import json
import socket
import time
from typing import Any

import httpx
import pytest

import hnlab
from hnlab.errors import FetchError
from hnlab.hn.client import HNClient, ItemResult
from hnlab.sim.server import Scripted, SimulatedHN

FAST = {"backoff_initial": 0.01, "backoff_max": 0.05}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_lists_items_and_maxitem_from_the_stand_in(sim: SimulatedHN) -> None:
    async def go() -> tuple[list[int], list[ItemResult], int]:
        async with HNClient(sim.base_url) as hn:
            ids = await hn.story_ids("top")
            return ids, await hn.items(ids[:50]), await hn.max_item()

    ids, items, max_item = run(go())
    assert ids == sim.story_ids("top") and len(ids) == 500
    assert [r.id for r in items] == ids[:50]
    assert all(r.ok for r in items)
    assert [r.data for r in items] == [sim.item(i) for i in ids[:50]]
    assert max_item == sim.max_item()


@pytest.mark.parametrize("name", ["new", "best", "ask", "show", "job"])
def test_every_list_is_served(sim: SimulatedHN, name: str) -> None:
    async def go() -> list[int]:
        async with HNClient(sim.base_url) as hn:
            return await hn.story_ids(name)

    assert run(go()) == sim.story_ids(name)


def test_an_unknown_list_is_refused() -> None:
    async def go() -> None:
        async with HNClient("http://127.0.0.1:9/v0") as hn:
            await hn.story_ids("hot")

    with pytest.raises(
        ValueError, match="story list must be one of top, new, best, ask, show, job, got 'hot'"
    ):
        run(go())


def test_503_then_200_is_fetched_without_an_error(sim: SimulatedHN) -> None:
    sim.script("item/1.json", 503)
    sim.serve_items({1: {"id": 1, "type": "story", "title": "ok", "time": 1}})

    async def go() -> tuple[ItemResult, int]:
        async with HNClient(sim.base_url, **FAST) as hn:
            result = (await hn.items([1]))[0]
            return result, hn.retries_made

    result, retries = run(go())
    assert result == ItemResult(1, {"id": 1, "type": "story", "title": "ok", "time": 1})
    assert retries == 1 and sim.requests_for("item/1.json") == 2


def test_429_waits_for_retry_after(sim: SimulatedHN) -> None:
    sim.script("item/2.json", Scripted(status=429, retry_after=1))
    sim.serve_items({2: {"id": 2}})

    async def go() -> tuple[ItemResult, float]:
        async with HNClient(sim.base_url, **FAST) as hn:
            t0 = time.monotonic()
            result = await hn.item(2)
            return ItemResult(2, result), time.monotonic() - t0

    result, waited = run(go())
    assert result.data == {"id": 2}
    assert waited >= 1.0


def test_a_permanent_503_gives_up_within_attempts_and_counts_one_error(sim: SimulatedHN) -> None:
    sim.script("item/3.json", *[503] * 10)
    sim.serve_items({4: {"id": 4}})

    async def go() -> list[ItemResult]:
        async with HNClient(sim.base_url, retry_attempts=3, **FAST) as hn:
            return await hn.items([3, 4])

    bad, good = run(go())
    assert bad.error == "item/3.json: HTTP 503 (gave up after retries)" and bad.data is None
    assert good == ItemResult(4, {"id": 4})
    assert sim.requests_for("item/3.json") == 3


def test_the_total_deadline_bounds_retries(sim: SimulatedHN) -> None:
    sim.script("item/5.json", *[Scripted(status=429, retry_after=30)] * 3)

    async def go() -> tuple[ItemResult, float]:
        async with HNClient(sim.base_url, deadline=1.0, retry_attempts=5, **FAST) as hn:
            t0 = time.monotonic()
            result = (await hn.items([5]))[0]
            return result, time.monotonic() - t0

    result, took = run(go())
    assert not result.ok and "HTTP 429" in (result.error or "")
    assert took < 1.0  # a 30 s Retry-After past the deadline is not waited for


def test_truncated_json_is_an_error_and_null_is_data(sim: SimulatedHN) -> None:
    sim.serve_items({6: {"id": 6, "title": "x" * 50}, 7: None})
    sim.script("item/6.json", Scripted(body="truncated"))

    async def go() -> list[ItemResult]:
        async with HNClient(sim.base_url, **FAST) as hn:
            return await hn.items([6, 7])

    truncated, null = run(go())
    assert truncated.error is not None and truncated.error.startswith("item/6.json: invalid JSON")
    assert null == ItemResult(7, None)
    assert sim.requests_for("item/6.json") == 1  # not retried


def test_a_read_timeout_is_retried_then_counted(sim: SimulatedHN) -> None:
    sim.script("item/8.json", *[Scripted(delay_ms=800)] * 2)

    async def go() -> ItemResult:
        async with HNClient(sim.base_url, timeout=0.2, retry_attempts=2, **FAST) as hn:
            return (await hn.items([8]))[0]

    result = run(go())
    assert result.error == "item/8.json: timed out (ReadTimeout) (gave up after retries)"


def test_a_refused_connection_raises_fetch_error_for_the_list() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        async with HNClient(f"http://127.0.0.1:{port}/v0", retry_attempts=2, **FAST) as hn:
            await hn.story_ids()

    with pytest.raises(FetchError, match=r"topstories.json: connection failed"):
        run(go())


def test_a_handed_transport_is_used_and_4xx_is_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(404, json={"error": "Permission denied"})

    async def go() -> ItemResult:
        async with HNClient("http://hn.test/v0", transport=httpx.MockTransport(handler)) as hn:
            return (await hn.items([1]))[0]

    assert run(go()) == ItemResult(1, None, "item/1.json: HTTP 404")
    assert calls == ["/v0/item/1.json"]


def test_requests_ask_for_json_and_compressed_bodies_are_decoded() -> None:
    seen: list[httpx.Headers] = []
    item = {"id": 7, "type": "story", "title": "Zipped &amp; fine", "time": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        body = gzip.compress(json.dumps(item).encode())
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    async def go() -> dict[str, Any] | None:
        async with HNClient("http://hn.test/v0", transport=httpx.MockTransport(handler)) as hn:
            return await hn.item(7)

    assert run(go()) == item
    assert seen[0]["accept"] == "application/json"
    assert "gzip" in seen[0]["accept-encoding"]
    assert seen[0]["user-agent"] == f"hnlab/{hnlab.__version__}"


def test_a_handed_client_is_used_with_retries_and_left_open(sim: SimulatedHN) -> None:
    sim.script("item/8.json", 503)
    sim.serve_items({8: {"id": 8}})
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request.url.path)

    async def go() -> tuple[ItemResult, bool]:
        async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
            async with HNClient(sim.base_url, client=client, **FAST) as hn:
                result = (await hn.items([8]))[0]
            return result, client.is_closed

    result, closed = run(go())
    assert result == ItemResult(8, {"id": 8})
    assert sent == ["/v0/item/8.json", "/v0/item/8.json"]  # the 503, then the retry
    assert closed is False  # HNClient closes only what it opened


def test_a_batch_leaves_the_garbage_collector_as_it_found_it(sim: SimulatedHN) -> None:
    ids = sim.story_ids("top")[:20]

    async def go() -> tuple[int, bool]:
        async with HNClient(sim.base_url) as hn:
            await hn.items(ids)
            after_own_freeze = gc.get_freeze_count()
            gc.freeze()  # someone else's frozen objects stay frozen
            try:
                await hn.items(ids)
                return after_own_freeze, gc.get_freeze_count() > 0
            finally:
                gc.unfreeze()

    assert gc.get_freeze_count() == 0
    assert run(go()) == (0, True)
    assert gc.isenabled()


def test_a_closed_client_refuses_reuse_but_sessions_can_repeat(sim: SimulatedHN) -> None:
    async def go() -> None:
        hn = HNClient(sim.base_url)
        async with hn:
            await hn.max_item()
        async with hn:  # a new session for the next run
            await hn.max_item()
        await hn.aclose()
        with pytest.raises(RuntimeError, match="this HNClient is closed"):
            async with hn:
                pass

    run(go())


def test_requests_in_flight_are_bounded(sim: SimulatedHN) -> None:
    sim.faults.latency_ms = 50
    ids = sim.story_ids("top")[:40]

    async def go() -> float:
        async with HNClient(sim.base_url, concurrency=10) as hn:
            t0 = time.monotonic()
            await hn.items(ids)
            return time.monotonic() - t0

    took = run(go())
    assert took >= 4 * 0.05  # 40 requests, 10 at a time, 50 ms each
