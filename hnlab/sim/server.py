"""A local stand-in for the HN API, for tests, demos and benchmarks.

``SimulatedHN`` serves a world that moves one minute at a time with a clock you
control (``hnlab.sim.world``: stories arrive, readers upvote what the rank they
see shows them, ``top`` follows HN's gravity formula, some stories are
penalized), and tells its hidden facts at ``GET /v0/_sim/truth``. It serves the
real API's awkward shapes (null items, deleted, dead and bare items, jobs in
topstories, self-posts, HTML entities, unknown fields, ``descendants <
len(kids)``) and injects faults on request. The world is a function of the seed
and the start: a seed gives the same world however it is queried.

    with SimulatedHN(seed=1, start=datetime(2026, 1, 1, tzinfo=UTC)) as sim:
        base_url = sim.base_url      # http://127.0.0.1:PORT/v0
        sim.advance(minutes=1)

Without a socket: ``HNClient(url, transport=sim.transport())``. This module is the
API's face (paths, bodies, faults, HTTP); the world is ``hnlab.sim.world``.
One thing, hence its length: every path the stand-in answers, with its faults.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx

from hnlab.config import STORY_LISTS
from hnlab.sim import topics
from hnlab.sim import world as simworld
from hnlab.sim.serving import Background
from hnlab.sim.world import Rules, World

_DOMAINS = (
    "github.com",
    "www.nytimes.com",
    "arxiv.org",
    "Blog.Example.COM",
    "lwn.net",
    "www.bbc.co.uk",
    "example.org:8080",
    "news.ycombinator.com",
    "medium.com",
    "en.wikipedia.org",
    "www.theverge.com",
    "substack.com",
)
_AUTHORS = simworld.NAMED
_PHRASES = (
    "I think",
    "In my experience",
    "Not sure about",
    "The real problem with",
    "We tried",
    "Has anyone compared",
    "This matches what I saw with",
    "Counterpoint:",
)


@dataclass
class Faults:
    """Fault injection. Rates are shares of requests in [0, 1]; times in milliseconds."""

    latency_ms: float = 0.0
    error_rate: float = 0.0  # 503
    rate_limit_rate: float = 0.0  # 429 with Retry-After
    retry_after_s: float = 1.0
    null_rate: float = 0.0  # item answers null
    truncated_rate: float = 0.0  # body cut in half
    slow_rate: float = 0.0
    slow_ms: float = 0.0


@dataclass
class Scripted:
    """One scripted answer for a path: a status, a null body, or a truncated body."""

    status: int = 200
    retry_after: float | None = None
    body: str | None = None  # "null" or "truncated"; None serves the normal body
    delay_ms: float = 0.0


@dataclass
class _Stats:
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    total: int = 0


def comment_text(seed: int, hn_id: int, version: int) -> str:
    """A comment's HTML as HN gives it: paragraphs joined by ``<p>``, entities, now and
    then italics, a link or a quoted line, and one in fifty very long. ``version`` 1 is
    the text after an edit."""
    rng = random.Random(f"{seed}:{hn_id}:text")
    words = [w for name in rng.sample(sorted(topics.TOPICS), 2) for w in topics.TOPICS[name]]
    paragraphs = []
    for _ in range(60 if rng.random() < 0.02 else rng.randint(1, 3)):
        said = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14)))
        line = f"{rng.choice(_PHRASES)} {said}."
        roll = rng.random()
        if roll < 0.1:
            line = f"&gt; {said}"
        elif roll < 0.2:
            line += ' See <a href="https://example.org/notes" rel="nofollow">example.org/notes</a>'
        elif roll < 0.3:
            line = line.replace(said, f"<i>{said}</i>")
        elif roll < 0.4:
            line += " It&#x27;s &quot;fine&quot;."
        paragraphs.append(line)
    if version:
        paragraphs.append("Edit: I was wrong about the second point, thanks.")
    return "<p>".join(paragraphs)


class _InProcess(httpx.AsyncBaseTransport):
    """Answers an HNClient's requests from the simulator, in-process."""

    def __init__(self, sim: SimulatedHN) -> None:
        self.sim = sim

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.split("/v0/", 1)[-1]
        status, headers, body, delay = self.sim.answer(path)
        if delay:
            await asyncio.sleep(delay)
        return httpx.Response(status, headers=headers, content=body, request=request)


class SimulatedHN:
    """An evolving HN front page served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime | None = None,
        *,
        faults: Faults | None = None,
        rules: Rules | None = None,
    ) -> None:
        self.seed = seed
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimulatedHN start must be timezone-aware (UTC)")
        self.now = start.astimezone(UTC)
        self._start = self.now.replace(second=0, microsecond=0)
        self.bursts = topics.schedule(seed, self._start)
        self.rules = rules or Rules()
        self._world: World | None = None
        self.faults = faults or Faults()
        self.stats = _Stats()
        self._scripts: dict[str, collections.deque[Scripted]] = {}
        self._items: dict[int, Any] = {}
        self._lists: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._background = Background("simulated-hn")
        self.port: int | None = None

    # -- the clock ----------------------------------------------------------------------
    def advance(self, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
        """Move the clock forward and return the new time."""
        with self._lock:
            self.now += timedelta(hours=hours, minutes=minutes, seconds=seconds)
            return self.now

    def clock(self) -> datetime:
        """The simulated time (pass as a collector's ``clock``)."""
        return self.now

    # -- the world ----------------------------------------------------------------------
    def _synced(self) -> World:
        """The world at the clock's minute (stepped forward on demand)."""
        if self._world is None:
            self._world = simworld.world(self.seed, self._start, self.rules)
        self._world.step_to(simworld.minute_of(self.now))
        return self._world

    def truth(self) -> dict[str, Any]:
        """The hidden facts (``GET /v0/_sim/truth``): the rules, the attention curves,
        every story since the start with its quality, penalties and front-page time, the
        title topics and the bursts planted so far."""
        with self._lock:
            out = self._synced().truth()
        out["topics"] = {name: list(words) for name, words in topics.TOPICS.items()}
        out["topic_weights"] = dict(topics.WEIGHTS)
        out["bursts"] = [b.as_dict() for b in self.bursts if b.start <= self.now]
        return out

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - bounded, and one world per instance
    def _looks(
        self, hn_id: int, kind: str, created: int
    ) -> tuple[str, str | None, str | None, dict[str, Any]]:
        """A story's title, url, author and unknown fields, drawn from its own generator;
        the title's words from a topic, or a burst on at ``created`` (``topics``)."""
        rng = random.Random(f"{self.seed}:{hn_id}")
        words = topics.title_words(rng, datetime.fromtimestamp(created, UTC), self.bursts)
        title = " ".join(w.capitalize() if i == 0 else w for i, w in enumerate(words))
        if rng.random() < 0.1:
            title += " &amp; friends &#x27;24"
        if kind == "ask":
            title = f"Ask HN: {title}?"
        elif kind == "show":
            title = f"Show HN: {title}"
        elif kind == "job":
            title = f"Acme (YC S24) is hiring a {words[0]} engineer"
        domain = rng.choice(_DOMAINS)
        url = None if kind in ("ask", "poll") else f"https://{domain}/{words[1]}/{hn_id}"
        author = None if rng.random() < 0.02 else rng.choice(_AUTHORS)
        extras = {"flair": "unknown-field"} if rng.random() < 0.05 else {}
        return title, url, author, extras

    def story_ids(self, list_name: str = "top") -> list[int]:
        """The list as the API would give it now, best first (at most 500)."""
        if list_name in self._lists:
            return list(self._lists[list_name])
        with self._lock:
            return self._synced().listing(list_name)

    def max_item(self) -> int:
        """The newest id that exists now (stories and comments share one counter)."""
        with self._lock:
            return self._synced().max_item

    def item(self, hn_id: int) -> dict[str, Any] | None:
        """The item as the API would give it now (None is a JSON ``null``)."""
        if hn_id in self._items:
            fixed: dict[str, Any] | None = self._items[hn_id]
            return fixed
        with self._lock:
            world = self._synced()
            i = world.ref(hn_id)
            if i is None:
                return None
            if i < 0:
                return self._comment(world, -1 - i)
            a = world.a
            kind = simworld.KINDS[a["kind"][i]]
            stamp = int(simworld.time_of(a["created"][i]).timestamp())
            points = 1 if kind == "job" else 1 + int(a["votes"][i])
            descendants = world.descendants(i)
            kids = list(world.kids.get(hn_id, ()))
        if kind == "null":
            return None
        if kind == "deleted":
            return {"deleted": True, "id": hn_id, "time": stamp, "type": "story"}
        if kind == "bare":
            return {"id": hn_id, "time": stamp, "type": "story"}
        title, url, author, extras = self._looks(hn_id, kind, stamp)
        item: dict[str, Any] = {
            "id": hn_id,
            "time": stamp,
            "title": title,
            "type": kind if kind in ("job", "poll") else "story",
        }
        if author is not None:
            item["by"] = author
        item["score"] = points
        if url is not None:
            item["url"] = url
        if kind == "ask":
            item["text"] = "What do you think?"
        if kind != "job":
            # descendants counts the comments a reader sees; kids lists the replies,
            # deleted and dead ones included, as the API does
            item["descendants"] = descendants
            if kids:
                item["kids"] = kids
        if kind == "dead":
            item["dead"] = True
        item.update(extras)
        return item

    def _comment(self, world: World, k: int) -> dict[str, Any]:
        """Comment ``k`` as the API gives it at the world's minute."""
        c, now = world.c, world.minute
        hn_id = c.hn_id[k]
        item: dict[str, Any] = {
            "id": hn_id,
            "parent": c.parent[k],
            "time": int(simworld.time_of(c.time[k]).timestamp()),
            "type": "comment",
        }
        kids = world.kids.get(hn_id)
        if kids:
            item["kids"] = list(kids)
        if c.delete_at[k] <= now:
            item["deleted"] = True
            return item
        item["by"] = simworld.commenter(c.author[k])
        item["text"] = comment_text(self.seed, hn_id, int(c.edit_at[k] <= now))
        if c.kill_at[k] <= now:
            item["dead"] = True
        return dict(sorted(item.items()))

    # -- fixed content ------------------------------------------------------------------
    def serve_items(self, items: dict[int, Any]) -> None:
        """Serve these exact bodies for these ids (recorded API samples, ``None`` for null)."""
        self._items.update(items)

    def forget_items(self, *ids: int) -> None:
        """Serve these ids from the world again (undo ``serve_items``)."""
        for hn_id in ids:
            self._items.pop(hn_id, None)

    def serve_list(self, list_name: str, ids: list[int]) -> None:
        """Serve this exact id list for ``{list_name}stories.json``."""
        self._lists[list_name] = list(ids)

    # -- scripted faults ----------------------------------------------------------------
    def script(self, path: str, *answers: int | Scripted) -> None:
        """Queue answers for a path such as ``item/40000001.json`` (or ``topstories.json``).

        Each request to the path takes the next answer; ints are HTTP statuses.
        """
        queue = self._scripts.setdefault(path.lstrip("/"), collections.deque())
        for answer in answers:
            queue.append(answer if isinstance(answer, Scripted) else Scripted(status=answer))

    def requests_for(self, path: str) -> int:
        """How many requests the path has had."""
        return self.stats.requests[path.lstrip("/")]

    # -- HTTP ---------------------------------------------------------------------------
    def _body(self, path: str) -> Any:
        if path == "maxitem.json":
            return self.max_item()
        if path.endswith("stories.json"):
            name = path.removesuffix("stories.json")
            if name in STORY_LISTS:
                return self.story_ids(name)
            raise KeyError(path)
        if path.startswith("item/") and path.endswith(".json"):
            return self.item(int(path[5:-5]))
        raise KeyError(path)

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes, float]:
        """The status, headers, body and delay (seconds) for one request to ``path``."""
        with self._lock:
            self.stats.requests[path] += 1
            self.stats.total += 1
            attempt = self.stats.requests[path]
            scripted = self._scripts.get(path)
            plan = scripted.popleft() if scripted else None
        faults = self.faults
        delay = faults.latency_ms / 1000
        if plan is not None:
            delay += plan.delay_ms / 1000
            if plan.status != 200:
                headers = {"Retry-After": f"{plan.retry_after:g}"} if plan.retry_after else {}
                return plan.status, headers, b'{"error": "scripted"}', delay
        else:
            rng = random.Random(f"{self.seed}:{path}:{attempt}")
            if rng.random() < faults.slow_rate:
                delay += faults.slow_ms / 1000
            roll = rng.random()
            if roll < faults.error_rate:
                return 503, {}, b"Service Unavailable", delay
            if roll < faults.error_rate + faults.rate_limit_rate:
                return 429, {"Retry-After": f"{faults.retry_after_s:g}"}, b"Too Many", delay
        try:
            body = json.dumps(self._body(path)).encode()
        except (KeyError, ValueError):
            return 404, {}, b'{"error": "Permission denied"}', delay
        if path.startswith("item/"):
            mode = plan.body if plan is not None else None
            if plan is None:
                rng = random.Random(f"{self.seed}:{path}:{attempt}:body")
                roll = rng.random()
                if roll < faults.null_rate:
                    mode = "null"
                elif roll < faults.null_rate + faults.truncated_rate:
                    mode = "truncated"
            if mode == "null":
                body = b"null"
            elif mode == "truncated":
                body = body[: max(1, len(body) // 2)]
        return 200, {"Content-Type": "application/json; charset=utf-8"}, body, delay

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that asks this simulator in-process, with no socket.

        ``HNClient(url, transport=sim.transport())`` takes every step of a real request
        but the network: the same answers, faults, latency and request counts. The demo
        tracks every simulated minute this way, fast."""
        return _InProcess(self)

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        path = request.match_info["tail"]
        if request.method == "GET" and path == "_sim/truth":
            return web.json_response(self.truth())
        if request.method == "POST" and path == "_sim/advance":
            given = {k: request.query[k] for k in ("hours", "minutes") if k in request.query}
            try:
                steps = {k: float(v) for k, v in (given or {"hours": "1"}).items()}
            except ValueError:
                return web.json_response(
                    {"error": f"hours and minutes must be numbers, got {given}"}, status=400
                )
            return web.json_response({"now": self.advance(**steps).isoformat()})
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        status, headers, body, delay = self.answer(path)
        if delay:  # the latency is the request's time here, its answer's work included
            await asyncio.sleep(max(0.0, delay - (loop.time() - arrived)))
        return web.Response(status=status, headers=headers, body=body)

    async def _serve(self, host: str, port: int) -> Any:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/v0/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        return runner

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; return the base URL (``http://host:port/v0``)."""
        if not self._background.running:
            self._host = host
            self._background.start(lambda: self._serve(host, port))
        return self.base_url

    def stop(self) -> None:
        """Stop serving."""
        self._background.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v0`` while serving."""
        if self.port is None:
            raise RuntimeError("the simulator is not serving; call start() first")
        return f"http://{self._host}:{self.port}/v0"

    def __enter__(self) -> SimulatedHN:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
