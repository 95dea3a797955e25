"""``hnlab cache``: check the RocksDB cache against PostgreSQL, or rebuild it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hnlab.cli.base import Context, _echo_table, cli, pass_ctx
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


@cli.group()
def cache() -> None:
    """The RocksDB metadata cache."""


@cache.command("check")
@pass_ctx
def cache_check(obj: Context) -> None:
    """Scan the cache for corruption and compare it with PostgreSQL."""
    from hnlab.store.maintenance import check_cache

    report = check_cache(obj.settings())
    _echo_table(list(report.items()))
    if report["state"] != "ok":
        raise HnlabError(f"cache check failed: {report['state']}")


@cache.command("rebuild")
@pass_ctx
def cache_rebuild(obj: Context) -> None:
    """Rebuild the cache from PostgreSQL (a damaged one is moved aside, not deleted)."""
    from hnlab.store.maintenance import rebuild_cache

    written, moved = rebuild_cache(obj.settings())
    if moved:
        click.echo(f"moved the old cache to {moved}")
    click.echo(f"rebuilt the cache with {written} posts")
