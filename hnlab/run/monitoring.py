"""Know when it breaks: Prometheus metrics and a health check for ``hnlab run``.

With ``HNLAB_METRICS_ADDR`` set, the runner serves ``/metrics`` and ``/healthz``
on its own event loop. The metrics follow Prometheus' advice for batch jobs: the
key one is when the job last succeeded; beside it, when it last finished at all,
how long each phase took, what it processed, and counters of runs, API requests
and API errors. Every value comes from the run's *record* in PostgreSQL, so a
notebook run (a kernel in another process) and a direct run report alike, and a
restarted runner starts from the recorded truth: a stale success never looks
fresh because the process is new.

``/healthz`` answers 200 while the last successful collection is younger than two
periods of ``HNLAB_CRON`` (a runner that has not seen one yet gets two periods
from its start) and, when the minute tracker runs, its last recorded tick is
younger than three intervals of ``HNLAB_TRACK_EVERY``; otherwise 503 with a
one-line reason.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hnlab import __version__

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

log = logging.getLogger(__name__)

OUTCOMES = ("succeeded", "failed", "skipped")
PHASES = ("fetch", "write", "cache")
KINDS = {
    "fetched": "posts_fetched",
    "saved": "posts_saved",
    "cached": "posts_cached",
    "duplicates": "duplicates_skipped",
}
API_FAILURES = (
    "timeout",
    "connection",
    "rate_limited",
    "http_5xx",
    "http_4xx",
    "invalid_json",
    "deadline",
)


def in_words(delta: timedelta) -> str:
    """``timedelta(minutes=75)`` as ``1 h 15 min``; under a minute as seconds."""
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _seconds(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


class Metrics:
    """The runner's metrics, in a registry of their own (``/metrics`` serves only these)."""

    def __init__(self, *, mode: str, host: str | None = None) -> None:
        self.last_success_at: datetime | None = None
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.last_success = Gauge(
            "hnlab_collection_last_success_timestamp_seconds",
            "When a collection last succeeded (Unix time; 0 before the first)",
            registry=r,
        )
        self.last_run = Gauge(
            "hnlab_collection_last_run_timestamp_seconds",
            "When a collection last finished, succeeded or failed (Unix time)",
            registry=r,
        )
        self.duration = Gauge(
            "hnlab_collection_duration_seconds",
            "How long the last successful collection took, by phase",
            ["phase"],
            registry=r,
        )
        self.posts = Gauge(
            "hnlab_collection_posts",
            "What the last successful collection processed, by kind",
            ["kind"],
            registry=r,
        )
        self.runs = Counter(
            "hnlab_runs", "Collection runs this runner saw end, by outcome", ["outcome"], registry=r
        )
        self.api_requests = Counter(
            "hnlab_api_requests", "Requests sent to the HN API, retries included", registry=r
        )
        self.api_errors = Counter(
            "hnlab_api_errors", "HN API requests that failed, by reason", ["reason"], registry=r
        )
        self.cache_pending = Gauge(
            "hnlab_cache_pending_runs",
            "Runs whose new posts PostgreSQL has and RocksDB does not yet",
            registry=r,
        )
        self.notifications = Counter(
            "hnlab_notifications", "Notifications delivered", ["kind"], registry=r
        )
        self.notifications_failed = Counter(
            "hnlab_notifications_failed", "Notifications that could not be delivered", registry=r
        )
        self.tracker_last_success = Gauge(
            "hnlab_tracker_last_success_timestamp_seconds",
            "When the minute tracker last recorded a tick (Unix time; 0 before the first)",
            registry=r,
        )
        self.ticks = Counter(
            "hnlab_tracker_ticks", "Tracker ticks by outcome", ["outcome"], registry=r
        )
        self.tick_observations = Gauge(
            "hnlab_tracker_observations", "Observations in the last recorded tick", registry=r
        )
        self.items = Counter(
            "hnlab_items",
            "Items the item stream handled, by outcome (stored, missing, error)",
            ["outcome"],
            registry=r,
        )
        self.contents = Counter(
            "hnlab_content_fetches",
            "Story links the content job fetched, by outcome (ok, not_article, http_error, ...)",
            ["outcome"],
            registry=r,
        )
        self.content_loop_lag = Gauge(
            "hnlab_content_loop_lag_seconds",
            "The event loop's worst delay during the last content pass",
            registry=r,
        )
        self.tracker_last_success_at: datetime | None = None
        info = Info("hnlab_runner", "The runner: hnlab version, mode and host", registry=r)
        info.info({"version": __version__, "mode": mode, "host": host or socket.gethostname()})
        for outcome in OUTCOMES:  # every series exists from the start, at 0
            self.runs.labels(outcome)
        for reason in API_FAILURES:
            self.api_errors.labels(reason)
        for outcome in ("succeeded", "failed", "missed", "skipped"):
            self.ticks.labels(outcome)

    def restore(
        self,
        last_finished: Mapping[str, Any] | None,
        last_success: Mapping[str, Any] | None,
        cache_pending: int,
    ) -> None:
        """Start from what PostgreSQL recorded (a runner restart must not look like news)."""
        if last_finished is not None:
            self.last_run.set(_seconds(last_finished["finished_at"]))
        if last_success is not None:
            self._success(last_success)
        self.cache_pending.set(cache_pending)

    def observe(self, record: Mapping[str, Any], cache_pending: int) -> None:
        """Count one finished run, from its record."""
        status = record["status"]
        self.runs.labels(status).inc()
        details = record.get("details") or {}
        self.api_requests.inc(int(details.get("api_requests", 0)))
        for reason, count in (details.get("api_failures") or {}).items():
            self.api_errors.labels(reason).inc(int(count))
        if status in ("succeeded", "failed"):
            self.last_run.set(_seconds(record["finished_at"]))
        if status == "succeeded":
            self._success(record)
        self.cache_pending.set(cache_pending)

    def observe_tick(self, status: str, observations: int, at: datetime) -> None:
        """Count one tick of the minute tracker."""
        self.ticks.labels(status).inc()
        if status == "succeeded":
            self.tracker_last_success_at = at
            self.tracker_last_success.set(at.timestamp())
            self.tick_observations.set(observations)

    def observe_items(self, stored: int, missing: int, errors: int) -> None:
        """Count one item sync pass's items."""
        for outcome, n in (("stored", stored), ("missing", missing), ("error", errors)):
            self.items.labels(outcome).inc(n)

    def observe_content(self, outcomes: Mapping[str, int], loop_lag_s: float) -> None:
        """Count one content pass's fetches and record the loop's worst lag."""
        for outcome, n in outcomes.items():
            self.contents.labels(outcome).inc(n)
        self.content_loop_lag.set(loop_lag_s)

    def skipped(self) -> None:
        """A slot another runner had already claimed."""
        self.runs.labels("skipped").inc()

    def _success(self, record: Mapping[str, Any]) -> None:
        self.last_success_at = record["finished_at"]
        self.last_success.set(_seconds(record["finished_at"]))
        details = record.get("details") or {}
        for phase in PHASES:
            if f"{phase}_s" in details:
                self.duration.labels(phase).set(float(details[f"{phase}_s"]))
        if record.get("duration_s") is not None:
            self.duration.labels("total").set(float(record["duration_s"]))
        for kind, column in KINDS.items():
            if record.get(column) is not None:
                self.posts.labels(kind).set(int(record[column]))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def period(trigger: BaseTrigger, now: datetime) -> timedelta:
    """The interval of a cron trigger around ``now`` (previous fire to next fire)."""
    upcoming = trigger.get_next_fire_time(None, now)
    after = trigger.get_next_fire_time(upcoming, upcoming + timedelta(microseconds=1))
    return after - upcoming  # type: ignore[no-any-return]


class Health:
    """``/healthz``: is the last successful collection younger than two periods?"""

    def __init__(
        self,
        metrics: Metrics,
        trigger: BaseTrigger,
        cron: str,
        started: datetime,
        clock: Callable[[], datetime],
        *,
        track_every: int = 0,
        collect: bool = True,
    ) -> None:
        self.track_every = track_every
        self.collect = collect
        self.metrics = metrics
        self.trigger = trigger
        self.cron = cron
        self.started = started
        self.clock = clock

    def check(self) -> tuple[bool, str]:
        """(healthy, one line saying why): the collection, then the tracker if it runs."""
        ok, reason = self._collection() if self.collect else (True, "ok")
        if not (ok and self.track_every):
            return ok, reason
        tracker_ok, tracker_reason = self._tracker()
        return tracker_ok, tracker_reason if not tracker_ok else f"{reason}; {tracker_reason}"

    def _tracker(self) -> tuple[bool, str]:
        now = self.clock()
        limit = timedelta(minutes=3 * self.track_every)
        last = self.metrics.tracker_last_success_at or self.started
        if now - last <= limit:
            return True, f"the tracker is on time ({in_words(now - last)} since its last tick)"
        return False, (
            f"the tracker recorded no tick for {in_words(now - last)}, more than three ticks "
            f"({in_words(limit)})"
        )

    def _collection(self) -> tuple[bool, str]:
        now = self.clock()
        limit = 2 * period(self.trigger, now)
        last = self.metrics.last_success_at
        if last is not None:
            age = now - last
            if age <= limit:
                return True, f"ok: the last collection succeeded {in_words(age)} ago"
            return False, (
                f"no successful collection for {in_words(age)}, more than two periods "
                f"({in_words(limit)}) of '{self.cron}'"
            )
        up = now - self.started
        if up <= limit:
            return True, f"ok: no successful collection yet; the runner started {in_words(up)} ago"
        return False, (
            f"no successful collection since the runner started {in_words(up)} ago, more "
            f"than two periods ({in_words(limit)}) of '{self.cron}'"
        )


async def serve_http(address: str, metrics: Metrics, health: Health) -> Callable[[], Any]:
    """Serve ``/metrics`` and ``/healthz`` on ``address`` (HOST:PORT) on this event loop;
    return the coroutine function that stops it."""
    from aiohttp import web

    from hnlab.errors import ConfigError

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        ok, reason = health.check()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    app = web.Application()
    app.add_routes([web.get("/metrics", scrape), web.get("/healthz", healthz)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, _, port = address.rpartition(":")
    try:
        await web.TCPSite(runner, host.strip("[]"), int(port)).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"HNLAB_METRICS_ADDR {address!r} cannot be served ({exc.strerror}); "
            "choose another HOST:PORT"
        ) from None
    log.info("metrics at http://%s/metrics, health at http://%s/healthz", address, address)
    return runner.cleanup
