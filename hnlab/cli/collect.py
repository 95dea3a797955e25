"""``hnlab collect`` and ``hnlab run``: one collection now, or the runner in the foreground."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hnlab.cli.base import Context, _echo_table, cli, pass_ctx
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


def _print_stats(stats: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(stats, default=str, sort_keys=True))
    else:
        _echo_table([(k, v) for k, v in stats.items() if k != "error_samples"])


@cli.command()
@click.option(
    "--list",
    "story_list",
    default=None,
    help="Story list: top, new, best, ask, show or job (HNLAB_STORY_LIST).",
)
@click.option(
    "--limit", type=str, default=None, help="Stories to fetch, 1-500 (HNLAB_POSTS_LIMIT)."
)
@click.option(
    "--threshold", type=str, default=None, help="Minimum score to save (HNLAB_SCORE_THRESHOLD)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@pass_ctx
def collect(
    obj: Context, story_list: str | None, limit: str | None, threshold: str | None, as_json: bool
) -> None:
    """Run one collection now and print its statistics."""
    from hnlab.run.factory import collect_once

    settings = obj.settings(
        story_list=(story_list, "--list"),
        posts_limit=(limit, "--limit"),
        score_threshold=(threshold, "--threshold"),
    )
    stats = asyncio.run(collect_once(settings, trigger="manual"))
    _print_stats(stats, as_json)


@cli.command()
@click.option("--direct", is_flag=True, help="Run the collector in-process, not the notebook.")
@click.option(
    "--notebook",
    type=click.Path(path_type=Path),
    default=None,
    help="Collection notebook (HNLAB_NOTEBOOK, default notebooks/collect.ipynb).",
)
@click.option("--cron", default=None, help="Cron expression in UTC (HNLAB_CRON, '0 * * * *').")
@click.option("--once", is_flag=True, help="Claim the current slot, run once, and exit.")
@pass_ctx
def run(obj: Context, direct: bool, notebook: Path | None, cron: str | None, once: bool) -> None:
    """Run the hourly collection in the foreground (Ctrl-C drains and stops)."""
    from hnlab.run.service import RunnerService

    settings = obj.settings(cron=(cron, "--cron"), notebook=(notebook, "--notebook"))
    service = RunnerService(settings, mode="direct" if direct else "notebook")
    if once:
        outcome = asyncio.run(service.run_once())
        if outcome.status == "skipped":
            when = f"{outcome.slot:%Y-%m-%d %H:%M}Z " if outcome.slot else ""
            click.echo(f"slot {when}already claimed; nothing to do")
            return
        if not outcome.ok:
            raise HnlabError(
                f"run {outcome.run_id} failed: {outcome.error}"
                + (f" (notebook: {outcome.notebook_path})" if outcome.notebook_path else "")
            )
        click.echo(
            f"run {outcome.run_id} succeeded"
            + (f"; notebook: {outcome.notebook_path}" if outcome.notebook_path else "")
        )
        return
    click.echo(
        f"hnlab runner: cron '{settings.cron}' UTC, mode "
        f"{'direct' if direct else 'notebook'}, database: {service.database.location}"
    )
    asyncio.run(service.serve(say=click.echo))
    click.echo("hnlab runner stopped")
