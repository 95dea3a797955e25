"""The ``hnlab`` group, what its commands share, and ``main``.

Each command group lives in a module of its own beside this one; each command
parses its options, makes one call into the package and prints the result. An
HnlabError prints ``Error: <message>`` on one line and exits 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hnlab.config import Settings
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


T = TypeVar("T")


class Context:
    """What the group's options hand to each command."""

    def __init__(self, overrides: dict[str, Any], option_names: dict[str, str]) -> None:
        self.overrides = overrides
        self.option_names = option_names

    def settings(self, **overrides: Any) -> Settings:
        """Validated settings: environment, then the group's options, then the command's."""
        names = dict(self.option_names)
        names.update({k: v[1] for k, v in overrides.items() if isinstance(v, tuple)})
        values = {
            **self.overrides,
            **{k: v[0] if isinstance(v, tuple) else v for k, v in overrides.items()},
        }
        return Settings.from_env(overrides=values, option_names=names)


pass_ctx = click.make_pass_decorator(Context)


def _echo_table(rows: list[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (HNLAB_DATA_DIR, default ./data).",
)
@click.option("--hn-api-url", default=None, help="HN API base URL (HNLAB_HN_API_URL).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="hnlab")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, hn_api_url: str | None, verbose: int) -> None:
    """hnlab: collect Hacker News top stories every hour, and study them in notebooks."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(
        {"data_dir": data_dir, "hn_api_url": hn_api_url},
        {"data_dir": "--data-dir", "hn_api_url": "--hn-api-url"},
    )


def _read_records(settings: Settings, read: Callable[[AsyncEngine], Awaitable[T]]) -> tuple[str, T]:
    """Prepare the database, run ``read`` on an async engine, dispose it; return where the
    database lives (safe to print) and what ``read`` returned."""
    from hnlab.run.factory import open_parts

    async def go() -> tuple[str, T]:
        async with open_parts(settings) as parts:
            return parts.database.location, await read(parts.engine)

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    """Entry point: HnlabError becomes ``Error: …`` and exit 1."""
    try:
        rc = cli.main(args=argv, prog_name="hnlab", standalone_mode=False)
    except HnlabError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)
