"""The ``hnlab db`` commands: the schema, the embedded server, dumps and restores."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hnlab.cli.base import Context, _echo_table, cli, pass_ctx
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


@cli.group()
def db() -> None:
    """The PostgreSQL schema and the embedded server."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Bring the database to the newest schema (safe to run again)."""
    from hnlab.store import db as dbm

    database = dbm.prepare(obj.settings().with_values(auto_migrate=True))
    if database.upgraded:
        click.echo(
            f"{database.location}: upgraded {database.previous_revision or 'empty'} "
            f"-> {database.revision}"
        )
    else:
        click.echo(f"{database.location}: already at {database.revision}")


@db.command("status")
@pass_ctx
def db_status(obj: Context) -> None:
    """Print where the database lives and its current and head schema revisions."""
    from hnlab.store import db as dbm

    database = dbm.prepare(obj.settings(), migrate=False)
    head = dbm.head_revision()
    _echo_table(
        [
            ("database", database.location),
            ("current", database.revision or "empty"),
            ("head", head),
            (
                "state",
                "up to date" if database.revision == head else "behind: run 'hnlab db upgrade'",
            ),
        ]
    )


@db.command("shell", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def db_shell(obj: Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database (extra arguments go to psql, e.g. -c 'SQL')."""
    from hnlab.store import access

    sys.exit(access.shell(obj.settings(), list(psql_args)))


@db.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5433,
    show_default=True,
    help="Loopback TCP port (0: any free one).",
)
@pass_ctx
def db_serve(obj: Context, port: int) -> None:
    """Keep the embedded server up on 127.0.0.1:PORT for psql, DBeaver or pandas, until Ctrl-C."""
    from hnlab.store import access

    access.serve(obj.settings(), port, announce=lambda line: click.echo(line, nl=True))
    click.echo("stopped serving")


@db.command("dump")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Archive to write.")
@pass_ctx
def db_dump(obj: Context, out: Path) -> None:
    """Back up the database to one file (consistent, even while a run collects)."""
    from hnlab.store import access

    size = access.dump(obj.settings(), out)
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(1, round(size / 1e3))} kB"
    click.echo(f"wrote {out} ({shown}); restore it with 'hnlab db restore {out}'")


@db.command("restore")
@click.argument("archive", type=click.Path(path_type=Path))
@pass_ctx
def db_restore(obj: Context, archive: Path) -> None:
    """Load a backup from 'hnlab db dump' into an empty database."""
    from hnlab.store import access

    database = access.restore(obj.settings(), archive)
    click.echo(
        f"restored {archive} into {database.location} (schema {database.revision}); "
        "rebuild the RocksDB cache with 'hnlab cache rebuild'"
    )


@db.command("stop")
@pass_ctx
def db_stop(obj: Context) -> None:
    """Stop the embedded PostgreSQL server now."""
    from hnlab.store.embedded import EmbeddedPostgres

    settings = obj.settings()
    if not settings.uses_embedded:
        raise HnlabError("HNLAB_DATABASE_URL is set; hnlab does not stop servers it did not start")
    EmbeddedPostgres(settings.postgres_dir, settings.shared_dir).stop()
    click.echo(f"stopped the embedded PostgreSQL in {settings.postgres_dir}")
