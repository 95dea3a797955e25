"""PostgreSQL: URLs, engines, the schema, and the one place driver errors become DatabaseError.

It also holds the few async helpers every repository reads and writes through
(``connection``, ``transaction``, ``read``, ``write``) and the advisory lock keys.

One ``postgresql+psycopg://`` URL serves the async engine (collections, run
records) and the sync engine (analysts, pandas, migrations). An async engine
never crosses event loops: make one per loop.

``prepare(settings)`` is the explicit step that makes a database usable: it
starts (or attaches to) the embedded server when no URL is set, and brings the
schema to head. It returns a ``Database`` that says what it prepared; engines
are made from that, never as a side effect.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hnlab.config import Settings, mask_url, normalize_database_url
from hnlab.errors import DatabaseError, DatabaseUnavailableError, SchemaError
from hnlab.store import embedded

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Advisory lock keys, all in one place so no two uses ever share one.
MIGRATION_LOCK = 0x686E6C6162
"""pg_advisory_xact_lock(bigint): one migration at a time."""
PARTITION_LOCK = 0x686E7061
"""pg_advisory_xact_lock(bigint): one process creates rank_minutes' partitions."""
SLOT_LOCK_NAMESPACE = 0x686E
"""pg_advisory_xact_lock(int, int): (this, the slot's hour) claims an hourly slot."""
CHUNK_LOCK = 0x686E6974
"""pg_advisory_xact_lock(bigint): one process plans the item stream's id ranges."""

CONNECT_TIMEOUT_S = 10
"""How long a new connection may take unless the URL sets ``connect_timeout``.

libpq's default is to wait forever: a server that accepts TCP but never answers (a hung
host, a half-open firewall) would hang the hourly runner and every fire after it.
"""

UNREACHABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    OSError,
)
"""What a statement raises when PostgreSQL cannot be reached (down, restarting, killed)."""


# -- driver errors ---------------------------------------------------------------------
def database_error(eng: sa.Engine | AsyncEngine, exc: BaseException) -> DatabaseError:
    """A one-line DatabaseError for a failed statement, with the password masked."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    where = mask_url(eng.url.render_as_string(hide_password=False))
    if not isinstance(exc, UNREACHABLE):
        return DatabaseError(f"PostgreSQL at {where} refused a statement: {detail}")
    if eng.url.host is None and "host" in eng.url.query:
        hint = "the embedded server stopped; run the command again"
    else:
        hint = "start the server or fix HNLAB_DATABASE_URL"
    return DatabaseUnavailableError(f"cannot reach PostgreSQL at {where}: {detail}; {hint}")


@contextlib.contextmanager
def database_errors(eng: sa.Engine | AsyncEngine) -> Iterator[None]:
    """Turn what the driver raises inside the block into one DatabaseError line.

    Works around ``await`` too: ``with database_errors(engine): await conn.execute(…)``.
    """
    try:
        yield
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise database_error(eng, exc) from None


Row = dict[str, Any]


@contextlib.asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reading; driver errors leave as one DatabaseError line."""
    with database_errors(engine):
        async with engine.connect() as conn:
            yield conn


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction, committed on exit; driver errors leave as one DatabaseError line."""
    with database_errors(engine):
        async with engine.begin() as conn:
            yield conn


async def read(engine: AsyncEngine, stmt: Any) -> list[Row]:
    """The rows of ``stmt`` as dicts."""
    async with connection(engine) as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def write(engine: AsyncEngine, *statements: Any) -> Any:
    """Run ``statements`` in one transaction; return the last one's result."""
    result = None
    async with transaction(engine) as conn:
        for stmt in statements:
            result = await conn.execute(stmt)
    return result


# -- URLs and engines ------------------------------------------------------------------
def _engine_kwargs(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in sa.make_url(url).query:
        connect_args = dict(kwargs.get("connect_args", {}))
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        kwargs["connect_args"] = connect_args
    return kwargs


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """A sync engine (psycopg 3) that pre-pings pooled connections and bounds connecting."""
    url = normalize_database_url(url)
    return sa.create_engine(url, **_engine_kwargs(url, kwargs))


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine (psycopg 3) that pre-pings pooled connections and bounds connecting."""
    url = normalize_database_url(url)
    return create_async_engine(url, **_engine_kwargs(url, kwargs))


def engine_url(eng: sa.Engine | AsyncEngine) -> str:
    """The engine's URL with its password, for a child process's environment (never print it)."""
    return eng.url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """A PostgreSQL that answers and whose schema is at head: what ``prepare`` made ready."""

    url: str
    """The URL with its password: hand it to engines and child processes, never print it."""
    revision: str | None
    """The schema's revision (None: an empty database that ``prepare`` was told not to migrate)."""
    previous_revision: str | None
    """The revision ``prepare`` found (None: an empty database); ``upgraded`` if it differs."""
    embedded_dir: Path | None
    """The embedded server's data directory, or None for HNLAB_DATABASE_URL."""
    linked_from: Path | None = None
    """Where the data dir links from, when root's cluster lives in HNLAB_SHARED_DIR."""

    @property
    def upgraded(self) -> bool:
        """True when ``prepare`` migrated the schema."""
        return self.previous_revision != self.revision

    @property
    def location(self) -> str:
        """Where the data lives, safe to show: the embedded directory or the masked URL."""
        if self.embedded_dir is not None and self.linked_from is not None:
            return f"embedded PostgreSQL in {self.embedded_dir} (linked from {self.linked_from})"
        if self.embedded_dir is not None:
            return f"embedded PostgreSQL in {self.embedded_dir}"
        return mask_url(self.url)

    def engine(self, **kwargs: Any) -> sa.Engine:
        """A new sync engine on this database; the caller disposes it."""
        return make_engine(self.url, **kwargs)

    def async_engine(self, **kwargs: Any) -> AsyncEngine:
        """A new async engine on this database, for the current event loop; the caller
        disposes it."""
        return make_async_engine(self.url, **kwargs)


def prepare(settings: Settings, *, migrate: bool = True) -> Database:
    """Make the configured database usable: start the embedded server if it is the one,
    then bring the schema to head (or, with auto-migration off, check that it is there).

    With ``migrate=False`` the schema is left as it is (``hnlab db status`` reads it).
    """
    settings.ensure_dirs()
    linked_from = None
    if settings.database_url:
        url, where = settings.database_url, None
    else:
        server = embedded.attach(settings.postgres_dir, settings.shared_dir)
        url, where = server.url(), server.pgdata
        if server.relocated:
            linked_from = server.requested
    eng = make_engine(url)
    try:
        before = current_revision(eng)
        if migrate:
            ensure_schema(eng, auto_migrate=settings.auto_migrate or settings.uses_embedded)
        after = current_revision(eng) if migrate else before
    finally:
        eng.dispose()
    return Database(
        url=url,
        revision=after,
        previous_revision=before,
        embedded_dir=where,
        linked_from=linked_from,
    )


# -- schema ----------------------------------------------------------------------------
def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration this hnlab ships."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(eng: sa.Engine) -> str | None:
    """The database's migration revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with database_errors(eng), eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(eng: sa.Engine) -> tuple[str | None, str]:
    """Bring the database to head; safe to run again and from several processes at once."""
    from alembic import command

    before = current_revision(eng)
    head = head_revision()
    if before == head:
        return before, head
    from alembic.util import CommandError

    try:
        with database_errors(eng), eng.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), "head")
    except CommandError as exc:  # a revision this hnlab does not ship: a newer hnlab wrote it
        raise SchemaError(
            f"the database schema is at {before}, which this hnlab ({head}) does not know: "
            f"{exc}; upgrade hnlab"
        ) from None
    log.info("database upgraded from %s to %s", before or "empty", head)
    return before, head


def ensure_schema(eng: sa.Engine, *, auto_migrate: bool) -> None:
    """Upgrade to head, or with auto-migration off, fail clearly if the schema is behind."""
    if auto_migrate:
        upgrade(eng)
        return
    current, head = current_revision(eng), head_revision()
    if current != head:
        raise SchemaError(
            f"the database schema is at {current or 'nothing'}, hnlab needs {head}; "
            "run 'hnlab db upgrade' (HNLAB_AUTO_MIGRATE=0 is set)"
        )
