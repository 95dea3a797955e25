"""Notifications with apprise: state changes, a daily digest, and a test message.

With ``HNLAB_NOTIFY_URLS`` set (apprise URLs: Telegram, Slack, e-mail, ntfy,
Matrix, webhooks…), the runner tells you:

* **on state changes only**: the first failure after a success (with the error,
  the run's notebook and how many hours are affected so far) and the recovery.
  A failure every hour sends one message, not 24 a day. The state is read from
  PostgreSQL at start, so a restart neither repeats nor loses the news;
* **a daily digest** at ``HNLAB_DIGEST_CRON`` (08:00 UTC): the day's top stories,
  how many runs succeeded, and anything odd: a failure streak, runs whose posts
  RocksDB lacks, scheduled hours that left no record.

A notification that cannot be delivered is logged and counted; it never fails a
collection. URLs carry tokens, so they are only ever shown masked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.config import mask_notify_url
from hnlab.errors import DatabaseError
from hnlab.jobs import Body, Job, Runtime, register
from hnlab.store import records
from hnlab.store.posts import PostRepository

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

    from hnlab.run.monitoring import Metrics

log = logging.getLogger(__name__)

HN_ITEM = "https://news.ycombinator.com/item?id={}"


@dataclass(frozen=True)
class Delivery:
    """How sending to one URL went."""

    url: str  # masked
    ok: bool
    reason: str = ""


def send(urls: Sequence[str], title: str, body: str, kind: str = "info") -> list[Delivery]:
    """Send one message to each URL (blocking: apprise speaks HTTP, SMTP …); never raises."""
    import apprise

    deliveries = []
    quiet = logging.getLogger("apprise")
    for url in urls:
        target = apprise.Apprise()
        masked = mask_notify_url(url)
        if not target.add(url):
            deliveries.append(Delivery(masked, False, "apprise cannot use this URL"))
            continue
        propagate, quiet.propagate = quiet.propagate, False  # its reason is ours to report
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
                ok = bool(
                    target.notify(title=title, body=body, notify_type=apprise.NotifyType(kind))
                )
        finally:
            quiet.propagate = propagate
        lines = [line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines() if line]
        deliveries.append(Delivery(masked, ok, "" if ok else (lines[-1] if lines else "failed")))
    return deliveries


def rising_now(engine: AsyncEngine, now: datetime, *, top: int = 3) -> list[str]:
    """The digest's "Rising now" lines: the strongest bursts in the titles of the 24 hours
    before ``now`` (judged against the three days before them), each with two of its
    stories. Empty when nothing rose, or there are no titles."""
    from hnlab import analysis
    from hnlab.store.db import engine_url

    docs = analysis.load_titles(now - timedelta(days=4), now, engine_url(engine))
    if docs.empty:
        return []
    found = analysis.bursts(docs)
    found = found[found["end"] > now - timedelta(days=1)].head(top)
    titles = dict(zip(docs["id"], docs["text"], strict=True))
    shown = {burst["term"]: list(burst["stories"])[-2:] for burst in found.to_dict("records")}
    summaries = _stored_summaries(engine_url(engine), [i for ids in shown.values() for i in ids])
    lines = []
    for burst in found.to_dict("records"):
        lines.append(
            f"- {burst['term']}: {burst['count']} stories since "
            f"{burst['start']:%Y-%m-%d %H:%M} UTC, {burst['peak_share']:.0%} of an hour's at "
            f"its peak ({burst['baseline_share']:.1%} before)"
        )
        for hn_id in shown[burst["term"]]:
            lines.append(f"   {titles.get(hn_id, '')} {HN_ITEM.format(hn_id)}")
            if hn_id in summaries:
                lines.append(f"     {summaries[hn_id]}")
    return lines


def _stored_summaries(url: str, story_ids: list[int]) -> dict[int, str]:
    """One line of each story's newest stored summary (an article's before a thread's):
    its first sentence, at most 30 words, labelled with how it was made."""
    import re

    from hnlab.store import summaries
    from hnlab.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = summaries.latest(conn, story_ids)
    finally:
        engine.dispose()
    lines = {}
    for hn_id, row in found.items():
        first = re.split(r"(?<=[.!?])\s+", row["text"].strip(), maxsplit=1)[0].split()
        text = " ".join(first[:30]) + (" …" if len(first) > 30 else "")
        how = row["model"] if row["method"] == "llm" else "extractive"
        lines[hn_id] = f"{row['kind']} summary ({how}): {text}"
    return lines


class Notifier:
    """Sends state changes and digests for one runner; counts what could not be delivered."""

    def __init__(
        self,
        urls: Sequence[str],
        engine: AsyncEngine,
        *,
        metrics: Metrics | None = None,
        trigger: BaseTrigger | None = None,
    ) -> None:
        self.urls = tuple(urls)
        self.engine = engine
        self.metrics = metrics
        self.trigger = trigger
        self.failing = False

    async def start(self) -> None:
        """Learn from PostgreSQL whether collections are failing now."""
        self.failing = bool(await records.failure_streak(self.engine))

    async def run_finished(self, record: dict[str, Any]) -> None:
        """Tell about a change of state: the first failure, or the recovery."""
        status = record["status"]
        if status == "failed" and not self.failing:
            self.failing = True
            await self.deliver("failure", *self._failure(record))
        elif status == "succeeded" and self.failing:
            self.failing = False
            await self.deliver("recovery", *await self._recovery(record))

    def _failure(self, record: dict[str, Any]) -> tuple[str, str, str]:
        when = record["slot"] or record["started_at"]
        body = [
            f"Run #{record['id']} ({record['trigger']}) for {when:%Y-%m-%d %H:%M} UTC failed:",
            str(record["error"] or "no error was recorded"),
            "Hours affected so far: 1. You hear again when a collection succeeds.",
        ]
        if record["notebook_path"]:
            body.insert(2, f"Notebook: {record['notebook_path']}")
        return "hnlab: collection failing", "\n".join(body), "failure"

    async def _recovery(self, record: dict[str, Any]) -> tuple[str, str, str]:
        when = record["slot"] or record["started_at"]
        streak = await self._streak_before(record)
        body = f"Run #{record['id']} for {when:%Y-%m-%d %H:%M} UTC succeeded"
        if streak:
            first = streak[0]["slot"] or streak[0]["started_at"]
            body += (
                f" after {len(streak)} failed run(s) since {first:%Y-%m-%d %H:%M} UTC "
                f"({_hours(when - first)} affected). Last error: {streak[-1]['error']}"
            )
        return "hnlab: collection recovered", body + ".", "success"

    async def _streak_before(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        recent = await records.recent_runs(self.engine, 500)
        streak = []
        for row in recent:  # newest first: the failures right before this success
            if row["id"] == record["id"] or row["status"] in ("running", "skipped"):
                continue
            if row["status"] != "failed":
                break
            streak.append(row)
        return streak[::-1]

    async def digest(self, now: datetime, *, top: int = 10) -> tuple[str, str]:
        """The last 24 hours: top stories, runs, and anything odd. Returns (title, body)."""
        since = now - timedelta(days=1)
        outcomes = await records.outcomes_between(self.engine, since, now)
        stories = await PostRepository(self.engine).top_posts(since, now, top)
        streak = await records.failure_streak(self.engine)
        pending = await records.runs_needing_cache(self.engine)
        lines = [
            f"Runs: {outcomes.get('succeeded', 0)} succeeded, {outcomes.get('failed', 0)} failed, "
            f"{outcomes.get('skipped', 0)} skipped"
            + (f" of {self._expected(since, now)} scheduled" if self.trigger else "")
            + ".",
            "",
            "Top stories:" if stories else "No stories were seen.",
        ]
        for rank, post in enumerate(stories, start=1):
            lines.append(
                f"{rank}. {post.title} ({post.score} points, {post.comment_count} comments)"
            )
            lines.append(f"   {post.url or HN_ITEM.format(post.hn_id)}")
            if post.url:
                lines.append(f"   {HN_ITEM.format(post.hn_id)}")
        odd = []
        if streak:
            first = streak[0]["slot"] or streak[0]["started_at"]
            odd.append(
                f"Failing now: {len(streak)} run(s) in a row since {first:%Y-%m-%d %H:%M} UTC; "
                f"last error: {streak[-1]['error']}"
            )
        if pending:
            odd.append(
                f"Cache behind PostgreSQL: {len(pending)} run(s) saved posts RocksDB lacks; "
                "the next run fills them, or run 'hnlab cache rebuild'"
            )
        if self.trigger is not None:
            recorded = sum(outcomes.values())
            expected = self._expected(since, now)
            if recorded < expected:
                odd.append(f"Missing: {expected - recorded} scheduled run(s) left no record")
        rising = await asyncio.to_thread(rising_now, self.engine, now)
        if rising:
            lines += ["", "Rising now:", *rising]
        if odd:
            lines += ["", "Worth a look:", *(f"- {line}" for line in odd)]
        return f"hnlab digest: the 24 hours to {now:%Y-%m-%d %H:%M} UTC", "\n".join(lines)

    def _expected(self, since: datetime, until: datetime) -> int:
        assert self.trigger is not None
        count, moment = 0, self.trigger.get_next_fire_time(None, since)
        while moment is not None and moment < until:
            count += 1
            moment = self.trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
        return count

    async def send_digest(self, now: datetime) -> tuple[str, str]:
        """Build the digest and send it; return it."""
        title, body = await self.digest(now)
        await self.deliver("digest", title, body, "info")
        return title, body

    async def deliver(self, kind: str, title: str, body: str, level: str) -> bool:
        """Send to every URL in a worker thread; log and count what fails, never raise."""
        try:
            deliveries = await asyncio.to_thread(send, self.urls, title, body, level)
        except Exception as exc:  # a notification must never fail a collection
            log.error("%s notification not sent: %s", kind, exc)
            deliveries = [Delivery("-", False, str(exc))]
        for d in deliveries:
            if d.ok:
                log.info("%s notification sent to %s", kind, d.url)
                if self.metrics:
                    self.metrics.notifications.labels(kind).inc()
            else:
                log.error("%s notification to %s failed: %s", kind, d.url, d.reason)
                if self.metrics:
                    self.metrics.notifications_failed.inc()
        return all(d.ok for d in deliveries)


def _hours(delta: timedelta) -> str:
    hours = max(1, round(delta.total_seconds() / 3600))
    return f"{hours} hour" + ("s" if hours > 1 else "")


DIGEST_JOB_ID = "daily_digest"


def _digest_job(runtime: Runtime) -> Body | None:
    notifier = runtime.notifier
    if notifier is None:
        return None

    async def digest() -> str | None:
        """Send the daily digest."""
        try:
            await notifier.send_digest(runtime.clock())
        except DatabaseError as exc:
            return f"digest not sent: {exc}"
        return None

    return digest


register(
    Job(
        DIGEST_JOB_ID,
        "Daily digest",
        "digest_cron",
        trigger=lambda s: s.digest_cron,
        build=_digest_job,
    )
)
