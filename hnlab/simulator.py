"""A local stand-in for the HN API, for tests, demos and benchmarks.

``SimulatedHN`` models a front page that moves with a clock you control:
stories arrive every hour, votes accumulate, and the lists are ranked with
HN's gravity formula, so stories rise and fall. It serves the real API's
awkward shapes (null items, deleted, dead and bare items, jobs in topstories,
self-posts, HTML entities, unknown fields, ``descendants < len(kids)``) and
injects faults on request. Everything is a pure function of the seed, the
clock and the request path, so a seed gives the same world every time.

Comments are their own noisy process, not a fixed share of the score: each
story draws a discussiveness ``talk ~ lognormal(0, 0.8)``, so two stories with
the same score can differ several-fold in comments, as on HN (the samples in
``tests/data`` run from 0.11 to 1.14 comments per point). Comments grow
sub-linearly with the story's eventual score (exponent 0.95), on a slower clock
than votes (8 h against 5 h), and by kind: Ask HN and polls draw discussion
(x2.2, x2.5), Show HN somewhat less (x0.7); jobs take no comments.

    with SimulatedHN(seed=1, start=datetime(2026, 1, 1, tzinfo=UTC)) as sim:
        base_url = sim.base_url      # http://127.0.0.1:PORT/v0
        sim.advance(hours=1)

One cohesive thing, hence its length: a world (stories, votes, comments, ranking)
and the HTTP face that serves it, which tests need to change together.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from hnlab.config import STORY_LISTS

FIRST_ID = 40_000_000
IDS_PER_HOUR = 64
STORY_SLOTS = 40  # per hour block: 0..39 stories, 40..63 comments
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
WINDOW_HOURS = 72  # stories older than this leave the lists

_TALK_BY_KIND = {"ask": 2.2, "poll": 2.5, "show": 0.7, "job": 0.0}

_WORDS = (
    "Rust",
    "Postgres",
    "compiler",
    "kernel",
    "startup",
    "browser",
    "database",
    "LLM",
    "GPU",
    "protocol",
    "memory",
    "garbage",
    "collector",
    "terminal",
    "editor",
    "open",
    "source",
    "privacy",
    "encryption",
    "satellite",
    "battery",
    "chip",
    "language",
    "cache",
    "scheduler",
    "notebook",
    "analysis",
    "physics",
    "biology",
    "history",
    "design",
    "security",
    "network",
    "filesystem",
)
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
_AUTHORS = ("pg", "dang", "tptacek", "patio11", "jacquesm", "simonw", "rayiner", "dragonwriter")


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


@dataclass(frozen=True)
class _Spec:
    hn_id: int
    created: datetime
    quality: float
    kind: str  # story, ask, show, job, poll, deleted, dead, bare, null
    title: str
    url: str | None
    author: str | None
    extras: tuple[tuple[str, Any], ...] = ()
    talk: float = 1.0  # discussiveness: comments relative to a typical story of its score


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


def _hour_index(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 3600)


class SimulatedHN:
    """An evolving HN front page served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        seed: int = 0,
        start: datetime | None = None,
        *,
        faults: Faults | None = None,
        stories_per_hour: int = 30,
    ) -> None:
        self.seed = seed
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimulatedHN start must be timezone-aware (UTC)")
        self.now = start.astimezone(UTC)
        self.faults = faults or Faults()
        self.stories_per_hour = min(stories_per_hour, STORY_SLOTS)
        self.stats = _Stats()
        self._scripts: dict[str, collections.deque[Scripted]] = {}
        self._items: dict[int, Any] = {}
        self._lists: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
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
    @functools.lru_cache(maxsize=4096)  # noqa: B019 - bounded, and one world per instance
    def _hour(self, hour: int) -> tuple[_Spec, ...]:
        rng = random.Random(f"{self.seed}:{hour}")
        base = (
            FIRST_ID
            + (hour - _hour_index(datetime(2026, 1, 1, tzinfo=UTC)) + 50_000) * IDS_PER_HOUR
        )
        specs = []
        for k in range(self.stories_per_hour):
            hn_id = base + k
            created = EPOCH + timedelta(hours=hour, seconds=int(k * 3600 / self.stories_per_hour))
            quality = rng.lognormvariate(-0.3, 1.0)
            roll = rng.random()
            kind = (
                "null"
                if roll < 0.01
                else "deleted"
                if roll < 0.03
                else "bare"
                if roll < 0.04
                else "dead"
                if roll < 0.06
                else "job"
                if roll < 0.09
                else "poll"
                if roll < 0.10
                else "ask"
                if roll < 0.17
                else "show"
                if roll < 0.25
                else "story"
            )
            words = rng.sample(_WORDS, 4)
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
            extras: tuple[tuple[str, Any], ...] = ()
            if rng.random() < 0.05:
                extras = (("flair", "unknown-field"),)
            # Drawn from its own generator, so adding it moved no other simulated value.
            talk = random.Random(f"{self.seed}:talk:{hn_id}").lognormvariate(0.0, 0.8)
            specs.append(
                _Spec(hn_id, created, quality, kind, title, url, author, extras, talk=talk)
            )
        return tuple(specs)

    def _spec(self, hn_id: int) -> _Spec | None:
        offset = hn_id - FIRST_ID
        if offset < 0:
            return None
        block, k = divmod(offset, IDS_PER_HOUR)
        hour = block - 50_000 + _hour_index(datetime(2026, 1, 1, tzinfo=UTC))
        specs = self._hour(hour)
        return specs[k] if k < len(specs) else None

    def _live(self, now: datetime) -> list[_Spec]:
        last = _hour_index(now)
        out: list[_Spec] = []
        for hour in range(last - WINDOW_HOURS, last + 1):
            out.extend(s for s in self._hour(hour) if s.created <= now)
        return out

    @staticmethod
    def _score(spec: _Spec, now: datetime) -> int:
        age_h = max(0.0, (now - spec.created).total_seconds() / 3600)
        return 1 + int(spec.quality * 120 * (1 - math.exp(-age_h / 5)))

    def _descendants(self, spec: _Spec, now: datetime) -> int:
        age_h = max(0.0, (now - spec.created).total_seconds() / 3600)
        eventual = 0.45 * spec.talk * _TALK_BY_KIND.get(spec.kind, 1.0) * self._score_cap(spec)
        return int(eventual * (1 - math.exp(-age_h / 8)))

    @staticmethod
    def _score_cap(spec: _Spec) -> float:
        """The score a story tends to, bent sub-linearly for comments."""
        return float((1 + spec.quality * 120) ** 0.95)

    def story_ids(self, list_name: str = "top") -> list[int]:
        """The list as the API would give it now, best first (at most 500)."""
        if list_name in self._lists:
            return list(self._lists[list_name])
        now = self.now
        live = [s for s in self._live(now) if s.kind not in ("dead",)]

        def gravity(spec: _Spec) -> float:
            age_h = (now - spec.created).total_seconds() / 3600
            points = float(self._score(spec, now) - 1)
            return float(points**0.8 / (age_h + 2) ** 1.8)

        if list_name == "new":
            chosen = sorted(live, key=lambda s: s.created, reverse=True)
        elif list_name == "best":
            chosen = sorted(live, key=lambda s: self._score(s, now), reverse=True)
        elif list_name in ("ask", "show", "job"):
            chosen = sorted((s for s in live if s.kind == list_name), key=gravity, reverse=True)
        else:
            chosen = sorted(live, key=gravity, reverse=True)
        return [s.hn_id for s in chosen[:500]]

    def max_item(self) -> int:
        """The newest id that exists now (stories and their comment slots)."""
        live = self._live(self.now)
        return max((s.hn_id for s in live), default=FIRST_ID) + (IDS_PER_HOUR - STORY_SLOTS)

    def item(self, hn_id: int) -> dict[str, Any] | None:
        """The item as the API would give it now (None is a JSON ``null``)."""
        if hn_id in self._items:
            fixed: dict[str, Any] | None = self._items[hn_id]
            return fixed
        now = self.now
        offset = hn_id - FIRST_ID
        if offset >= 0 and offset % IDS_PER_HOUR >= STORY_SLOTS:
            return self._comment(hn_id, now)
        spec = self._spec(hn_id)
        if spec is None or spec.created > now or spec.kind == "null":
            return None
        stamp = int(spec.created.timestamp())
        if spec.kind == "deleted":
            return {"deleted": True, "id": hn_id, "time": stamp, "type": "story"}
        if spec.kind == "bare":
            return {"id": hn_id, "time": stamp, "type": "story"}
        score = self._score(spec, now)
        item: dict[str, Any] = {
            "id": hn_id,
            "time": stamp,
            "title": spec.title,
            "type": spec.kind if spec.kind in ("job", "poll") else "story",
        }
        if spec.author is not None:
            item["by"] = spec.author
        item["score"] = score
        if spec.url is not None:
            item["url"] = spec.url
        if spec.kind == "ask":
            item["text"] = "What do you think?"
        if spec.kind != "job":
            descendants = self._descendants(spec, now)
            item["descendants"] = descendants
            block_base = hn_id - hn_id % IDS_PER_HOUR
            kids = [block_base + STORY_SLOTS + j for j in range(min(3, descendants + 1))]
            if descendants:
                item["kids"] = kids
        if spec.kind == "dead":
            item["dead"] = True
        item.update(dict(spec.extras))
        return item

    def _comment(self, hn_id: int, now: datetime) -> dict[str, Any] | None:
        parent = hn_id - hn_id % IDS_PER_HOUR
        spec = self._spec(parent)
        if spec is None or spec.created > now:
            return None
        return {
            "by": "commenter",
            "id": hn_id,
            "parent": parent,
            "text": "Interesting.",
            "time": int(spec.created.timestamp()) + 60,
            "type": "comment",
        }

    # -- fixed content ------------------------------------------------------------------
    def serve_items(self, items: dict[int, Any]) -> None:
        """Serve these exact bodies for these ids (recorded API samples, ``None`` for null)."""
        self._items.update(items)

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

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        path = request.match_info["tail"]
        if request.method == "POST" and path == "_sim/advance":
            given = {k: request.query[k] for k in ("hours", "minutes") if k in request.query}
            try:
                steps = {k: float(v) for k, v in (given or {"hours": "1"}).items()}
            except ValueError:
                return web.json_response(
                    {"error": f"hours and minutes must be numbers, got {given}"}, status=400
                )
            return web.json_response({"now": self.advance(**steps).isoformat()})
        status, headers, body, delay = self.answer(path)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers, body=body)

    async def _serve(self, host: str, port: int) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/v0/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; return the base URL (``http://host:port/v0``)."""
        if self._thread is not None:
            return self.base_url
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(host, port))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._host = host
        self._thread = threading.Thread(target=run, name="simulated-hn", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            self._thread = None
            raise errors[0]
        return self.base_url

    def stop(self) -> None:
        """Stop serving."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None

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
