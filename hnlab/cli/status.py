"""``hnlab status``, ``hnlab runs`` and ``hnlab export``: what was recorded, and getting it out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hnlab.cli.base import Context, _echo_table, _fmt_time, _read_records, cli, pass_ctx
from hnlab.store.tables import STATISTICS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hnlab.store.db import Row


@cli.command()
@pass_ctx
def status(obj: Context) -> None:
    """Show the live runners, each job's last outcome, and the last collection run."""
    from hnlab.store import records

    settings = obj.settings()

    async def read(engine: AsyncEngine) -> tuple[list[Row], list[Row], list[Row]]:
        alive = await records.live_runners(engine, datetime.now(UTC) - timedelta(minutes=3))
        return alive, await records.job_outcome_rows(engine), await records.recent_runs(engine, 1)

    where, (alive, outcomes, last) = _read_records(settings, read)
    click.echo(f"database: {where}")
    if alive:
        for r in alive:
            click.echo(
                f"runner {r['host']} pid {r['pid']} ({r['mode']}), last beat "
                f"{_fmt_time(r['last_beat'])}, next run {_fmt_time(r['next_run_at'])}"
            )
    else:
        click.echo("runners: none alive (start one with 'hnlab run')")
    for o in outcomes:
        line = f"job {o['job_id']}: {o['outcome']} at {_fmt_time(o['at'])}"
        if o["outcome"] == "failed":
            line += (
                f" ({o['failures']} in a row since {_fmt_time(o['failing_since'])}): {o['error']}"
            )
        click.echo(line)
    if not last:
        click.echo("last run: none yet")
        return
    r = last[0]
    click.echo(
        f"last run: #{r['id']} {r['status']} ({r['trigger']}) started "
        f"{_fmt_time(r['started_at'])}" + (f": {r['error']}" if r["error"] else "")
    )
    _echo_table([(k, r[k]) for k in STATISTICS] + [("duration_s", r["duration_s"])])


@cli.command()
@click.option(
    "--last",
    "last",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="How many runs to show.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def runs(obj: Context, last: int, as_json: bool) -> None:
    """Show the run history, newest first, one run per line."""
    from hnlab.store import records

    since = datetime.now(UTC) - timedelta(hours=24)

    async def read(engine: AsyncEngine) -> tuple[list[dict[str, Any]], dict[str, int]]:
        return await records.recent_runs(engine, last), await records.tick_summary(engine, since)

    _, (rows, ticks) = _read_records(obj.settings(), read)
    for r in rows:
        if as_json:
            r = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
            click.echo(json.dumps(r, default=str, sort_keys=True))
            continue
        stats = "/".join("-" if r[k] is None else str(r[k]) for k in STATISTICS)
        click.echo(
            f"#{r['id']:<5} {_fmt_time(r['slot'] or r['started_at'])} {r['trigger']:<9} "
            f"{r['status']:<9} fetched/saved/cached/dups/errors {stats:<16} "
            f"{r['notebook_path'] or '-'}" + (f"  {r['error']}" if r["error"] else "")
        )
    if not rows and not as_json:
        click.echo("no runs yet")
    if ticks and not as_json:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(ticks.items()))
        click.echo(f"minute tracker, last 24 h: {sum(ticks.values())} ticks ({counts})")


@cli.group()
def export() -> None:
    """Data out of hnlab, for other tools."""


def _window_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every export takes: a [since, until) window in UTC and a folder."""
    for option in reversed(
        (
            click.option("--since", type=click.DateTime(_FORMATS), required=True),
            click.option("--until", type=click.DateTime(_FORMATS), required=True),
            click.option(
                "--out", type=click.Path(path_type=Path), required=True, help="Folder to write."
            ),
        )
    ):
        command = option(command)
    return command


_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M"]


def _export(obj: Context, kind: str, since: datetime, until: datetime, out: Path) -> None:
    from hnlab.store import export as exports

    write = exports.export_ranks if kind == "observations" else exports.export_items
    done = write(obj.settings(), since.replace(tzinfo=UTC), until.replace(tzinfo=UTC), out)
    click.echo(f"wrote {done.rows} {kind} in {len(done.files)} file(s) under {out}")


@export.command("ranks")
@_window_options
@pass_ctx
def export_ranks(obj: Context, since: datetime, until: datetime, out: Path) -> None:
    """Minute ranks in [since, until) (UTC) as Parquet, one folder per month."""
    _export(obj, "observations", since, until, out)


@export.command("items")
@_window_options
@pass_ctx
def export_items(obj: Context, since: datetime, until: datetime, out: Path) -> None:
    """Items created in [since, until) (UTC) as Parquet, one folder per month."""
    _export(obj, "items", since, until, out)
