"""``hnlab notify``: test the notification URLs, or build and send the digest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from hnlab.cli.base import Context, cli, pass_ctx
from hnlab.config import Settings
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


@cli.group()
def notify() -> None:
    """Notifications (HNLAB_NOTIFY_URLS): a test message and the daily digest."""


def _notify_urls(settings: Settings) -> tuple[str, ...]:
    if not settings.notify_urls:
        raise HnlabError(
            "HNLAB_NOTIFY_URLS is not set; set it to one or more apprise URLs, "
            "e.g. 'tgram://BOT_TOKEN/CHAT_ID' or 'ntfy://ntfy.sh/TOPIC'"
        )
    return settings.notify_urls


@notify.command("test")
@pass_ctx
def notify_test(obj: Context) -> None:
    """Send a test message to every URL; say which arrived and why the others did not."""
    from hnlab.run.notify import send

    deliveries = send(
        _notify_urls(obj.settings()),
        "hnlab test notification",
        "If you can read this, hnlab can reach you here.",
    )
    for d in deliveries:
        click.echo(f"{'sent  ' if d.ok else 'FAILED'} {d.url}" + ("" if d.ok else f": {d.reason}"))
    failed = [d for d in deliveries if not d.ok]
    if failed:
        raise HnlabError(f"{len(failed)} of {len(deliveries)} notification URL(s) failed")


@notify.command("digest")
@click.option("--send/--no-send", default=True, show_default=True, help="Also send it.")
@pass_ctx
def notify_digest(obj: Context, send: bool) -> None:
    """Print the digest of the last 24 hours (and send it to HNLAB_NOTIFY_URLS)."""
    from hnlab.config import cron_trigger
    from hnlab.run.factory import open_parts
    from hnlab.run.notify import Notifier

    settings = obj.settings()
    urls = _notify_urls(settings) if send else ()
    trigger = cron_trigger(settings.cron, settings.label("cron"))

    async def build() -> tuple[str, str, bool]:
        async with open_parts(settings) as parts:
            notifier = Notifier(urls, parts.engine, trigger=trigger)
            title, body = await notifier.digest(datetime.now(UTC))
            delivered = await notifier.deliver("digest", title, body, "info") if urls else True
            return title, body, delivered

    title, body, delivered = asyncio.run(build())
    click.echo(f"{title}\n\n{body}")
    if not delivered:
        raise HnlabError("the digest could not be delivered to every URL; see the log above")
