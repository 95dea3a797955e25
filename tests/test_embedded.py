"""The embedded PostgreSQL: shared by processes, survives restarts, recovers from kill -9."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from hnlab.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hnlab import embedded
    server = embedded.attach(Path(sys.argv[1]))
    print(server.url(), flush=True)
    sys.stdin.readline()
""")


@pytest.fixture
def pgdata() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="hnlab-emb-"))
    root.chmod(0o755)
    yield root / "postgres"
    EmbeddedPostgres(root / "postgres").stop()
    shutil.rmtree(root, ignore_errors=True)


def holder(pgdata: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("postgresql+psycopg://postgres@/hnlab?host="), line
    return proc


def finish(proc: subprocess.Popen[str]) -> None:
    proc.communicate("\n", timeout=60)


def postmaster(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except FileNotFoundError:
        return None
    return pid if psutil.pid_exists(pid) else None


def query(server: EmbeddedPostgres, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(
        host=str(server.socket_dir), user="postgres", dbname="hnlab", autocommit=True
    ) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def test_processes_share_one_server_and_the_last_one_stops_it(pgdata: Path) -> None:
    a = holder(pgdata)
    first = postmaster(pgdata)
    b = holder(pgdata)
    assert first is not None and postmaster(pgdata) == first
    finish(a)
    assert postmaster(pgdata) == first  # b still holds it
    finish(b)
    assert postmaster(pgdata) is None


def test_data_survives_a_restart(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    server.attach()
    query(server, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
    server.release()
    assert postmaster(pgdata) is None
    server.attach()
    assert query(server, "SELECT x FROM kept") == [(42,)]
    server.release()


def test_a_holder_killed_with_sigkill_does_not_leave_the_server_blocking(pgdata: Path) -> None:
    victim = holder(pgdata)
    pid = postmaster(pgdata)
    victim.kill()
    victim.communicate()
    assert postmaster(pgdata) == pid  # orphaned: nobody holds it
    server = EmbeddedPostgres(pgdata)
    server.attach()  # adopts it
    assert postmaster(pgdata) == pid
    server.release()  # the dead holder is pruned, so this release stops it
    assert postmaster(pgdata) is None


def test_a_killed_postmaster_is_recovered_with_its_data(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    server.attach()
    query(server, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
    pid = postmaster(pgdata)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
    again = EmbeddedPostgres(pgdata)
    again.attach()
    assert query(again, "SELECT x FROM kept") == [(7,)]
    assert postmaster(pgdata) not in (None, pid)
    again.release()
    server.release()


def test_a_private_mktemp_data_dir_works_without_touching_its_parents() -> None:
    from .helpers import hnlab_cli

    data_dir = Path(tempfile.mkdtemp())  # mode 0700, like `mktemp -d`
    parent_mode = data_dir.parent.stat().st_mode
    try:
        up = hnlab_cli("db", "upgrade", env={"HNLAB_DATA_DIR": str(data_dir)})
        assert up.returncode == 0, up.stderr
        assert (
            up.stdout.strip() == f"embedded PostgreSQL in {data_dir}/postgres: upgraded "
            "empty -> 0001"
        )
        status = hnlab_cli("db", "status", env={"HNLAB_DATA_DIR": str(data_dir)})
        assert "up to date" in status.stdout
        assert data_dir.parent.stat().st_mode == parent_mode
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another account")
def test_as_root_an_unreachable_parent_is_a_clear_error_and_is_left_alone() -> None:
    from hnlab.embedded import _service_account

    from .helpers import hnlab_cli

    service = _service_account()
    account = service.pw_name if service else ""
    outer = Path(tempfile.mkdtemp())
    try:
        result = hnlab_cli("db", "status", env={"HNLAB_DATA_DIR": str(outer / "inner")})
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"Error: embedded PostgreSQL runs as '{account}' and cannot enter {outer}; choose a "
            "HNLAB_DATA_DIR outside it, or set HNLAB_DATABASE_URL"
        )
        assert outer.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(outer, ignore_errors=True)
