"""``hnlab track``: the minute tracker alone, one tick, or retention."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from hnlab.cli.base import Context, _echo_table, cli, pass_ctx
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


@cli.group(invoke_without_command=True)
@click.option("--once", is_flag=True, help="Record one tick now (or --at a minute) and exit.")
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%dT%H:%M"]),
    default=None,
    help="With --once: the minute to record, UTC (for replays).",
)
@click.option("--lists", default=None, help="Lists, e.g. top,new (HNLAB_TRACK_LISTS).")
@click.option(
    "--depth", default=None, help="Ranks per list: N, or top=90,new=30 (HNLAB_TRACK_DEPTH)."
)
@click.option("--json", "as_json", is_flag=True, help="With --once: the tick as JSON.")
@click.pass_context
def track(
    ctx: click.Context,
    once: bool,
    at: datetime | None,
    lists: str | None,
    depth: str | None,
    as_json: bool,
) -> None:
    """Record every list's ranks each minute (in the foreground), or one tick with --once."""
    from hnlab.run.factory import open_parts
    from hnlab.run.service import RunnerService

    if ctx.invoked_subcommand is not None:
        return
    obj = ctx.find_object(Context)
    assert obj is not None
    settings = obj.settings(track_lists=(lists, "--lists"), track_depth=(depth, "--depth"))
    if at is not None and not once:
        raise HnlabError("--at records one tick: use it with --once")
    if not once:
        every = settings.track_every or 1
        service = RunnerService(
            settings.with_values(track_every=every), mode="direct", collect=False
        )
        click.echo(f"hnlab tracker: database: {service.database.location}")
        asyncio.run(service.serve(say=click.echo))
        click.echo("hnlab tracker stopped")
        return

    async def tick() -> Any:
        async with open_parts(settings) as parts:
            return await parts.tracker().tick(at.replace(tzinfo=UTC) if at else None)

    result = asyncio.run(tick())
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    elif result.status == "skipped":
        click.echo(f"tick {result.slot:%Y-%m-%d %H:%M}Z is recorded already; nothing to do")
    else:
        _echo_table([(k, v) for k, v in result.as_dict().items() if v is not None])
    if result.status in ("failed", "missed"):
        raise HnlabError(f"tick {result.slot:%Y-%m-%d %H:%M}Z {result.status}: {result.error}")


@track.command("prune")
@click.option(
    "--keep-days",
    type=click.IntRange(1),
    default=None,
    help="Keep full resolution this many days (HNLAB_TRACK_KEEP_DAYS).",
)
@pass_ctx
def track_prune(obj: Context, keep_days: int | None) -> None:
    """Downsample minute ranks older than the retention to hourly (each hour's :00 stays)."""
    from hnlab.run.factory import open_parts

    settings = obj.settings(track_keep_days=(keep_days, "--keep-days"))
    if not settings.track_keep_days:
        raise HnlabError(
            "HNLAB_TRACK_KEEP_DAYS is 0 (keep everything); set it or pass --keep-days N"
        )

    async def prune() -> int:
        async with open_parts(settings) as parts:
            return await parts.tracker().prune(settings.track_keep_days)

    deleted = asyncio.run(prune())
    click.echo(
        f"kept full resolution for {settings.track_keep_days} days; "
        f"{deleted} older minute rows deleted, each hour's :00 kept"
    )
