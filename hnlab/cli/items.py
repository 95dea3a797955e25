"""``hnlab items``: follow every item HN creates (sync), fill history (backfill), read a thread."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import click

from hnlab.cli.base import Context, _echo_table, cli, pass_ctx
from hnlab.errors import HnlabError


@cli.group()
def items() -> None:
    """Every story, comment, poll and job, once, as HN creates them."""


def _report(stats: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(stats, sort_keys=True))
    else:
        _echo_table([(k, v) for k, v in stats.items() if v is not None])


@items.command("sync")
@click.option("--once", is_flag=True, help="Run one pass and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: the pass as JSON.")
@pass_ctx
def items_sync(obj: Context, once: bool, as_json: bool) -> None:
    """Fetch every id above the last stored up to maxitem, retry gaps, settle what is due;
    without --once, a pass every HNLAB_ITEMS_EVERY minutes until interrupted."""
    from hnlab.run.factory import open_parts

    settings = obj.settings()
    if not once and not settings.items_every:
        raise HnlabError("HNLAB_ITEMS_EVERY is 0 (off); set it to minutes, or pass --once")

    async def run() -> dict[str, Any]:
        async with open_parts(settings) as parts:
            stream = parts.items()
            while True:
                stats = (await stream.sync()).as_dict()
                if once:
                    return stats
                click.echo(
                    f"{datetime.now(UTC):%H:%M:%S} stored {stats['stored']}, "
                    f"settled {stats['settled']}, gaps {stats['gaps']}, "
                    f"missing {stats['missing']}, up to id {stats['max_item']}"
                )
                await asyncio.sleep(settings.items_every * 60)

    try:
        _report(asyncio.run(run()), as_json)
    except KeyboardInterrupt:
        click.echo("hnlab items sync stopped")


@items.command("backfill")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day, UTC.")
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Day after the last (UTC)."
)
@click.option("--json", "as_json", is_flag=True, help="What it did, as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@pass_ctx
def items_backfill(
    obj: Context, since: datetime, until: datetime | None, as_json: bool, no_progress: bool
) -> None:
    """Fill the items created in [since, until) newest first, sharing the work with every
    host that runs the same command (at most HNLAB_ITEMS_RATE requests a second)."""
    from hnlab.run.factory import open_parts

    first, last = since.date(), until.date() if until else None
    if last is not None and last <= first:
        raise HnlabError(f"--until {last} must be after --since {first}")
    if first > datetime.now(UTC).date():
        raise HnlabError(f"--since {first} is in the future; give a day up to today")
    settings = obj.settings()

    async def run() -> dict[str, Any]:
        async with open_parts(settings) as parts:
            stream = parts.items(rate=True)
            stats = await stream.backfill(first, last, progress=None if no_progress else _bar)
            return stats.as_dict()

    stats = asyncio.run(run())
    _report(stats, as_json)
    if not as_json:
        click.echo(
            f"stored {stats['stored']} items; {stats['missing']} missing, "
            f"{stats['gaps']} to retry on the next sync; {stats['left']} ids left"
        )


def _bar(total: int, done: int) -> Callable[[int], None]:
    """A progress bar of ids: items, items a second and the time left."""
    from tqdm import tqdm

    bar = tqdm(
        total=total + done,
        initial=done,
        unit=" items",
        unit_scale=True,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )

    def advance(n: int) -> None:
        bar.update(n)
        if bar.n >= (bar.total or 0):
            bar.close()

    return advance


@items.command("show")
@click.argument("item_id", type=click.IntRange(1))
@click.option("--width", type=click.IntRange(40), default=100, help="Wrap text at this width.")
@pass_ctx
def items_show(obj: Context, item_id: int, width: int) -> None:
    """A story's thread (or a comment's story) as an indented tree."""
    from hnlab import analysis
    from hnlab.store import db

    url = db.prepare(obj.settings()).url
    found = analysis.load_items(ids=[item_id], engine=url)
    if found.empty:
        raise HnlabError(
            f"item {item_id} is not stored; run 'hnlab items sync' or 'hnlab items backfill'"
        )
    import pandas as pd

    story_id = found["story_id"].iloc[0]
    if pd.isna(story_id):
        raise HnlabError(f"item {item_id}'s story has not arrived yet; run 'hnlab items sync'")
    story = analysis.load_items(ids=[int(story_id)], engine=url).iloc[0]
    head = story["title"] if isinstance(story["title"], str) else "[deleted]"
    click.echo(f"{head}  ({story['type']} {int(story_id)} by {_who(story)}, {_when(story)})")
    for _, c in analysis.thread(int(story_id), engine=url).iterrows():
        indent = "  " * int(c["depth"])
        mark = " <" if int(c["id"]) == item_id else ""
        click.echo(f"{indent}{_who(c)} · {_when(c)} · {int(c['id'])}{mark}")
        text = "[deleted]" if c["deleted"] else str(c["text"]) if isinstance(c["text"], str) else ""
        if c["dead"]:
            text = f"[dead] {text}"
        for paragraph in text.split("\n\n"):
            for line in textwrap.wrap(paragraph, max(20, width - len(indent) - 2)) or [""]:
                click.echo(f"{indent}  {line}")


def _who(row: Any) -> str:
    return str(row["by"]) if isinstance(row["by"], str) else "[deleted]"


def _when(row: Any) -> str:
    moment = row["time"]
    return f"{moment:%Y-%m-%d %H:%M}Z" if isinstance(moment, datetime | date) else "?"
