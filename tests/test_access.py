"""Your data from outside hnlab: db shell, serve, dump and restore, as a user runs them."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.run.factory import collect_once
from hnlab.sim.server import SimulatedHN
from hnlab.store import embedded
from tests.helpers import rows

from .helpers import REPO, hnlab_cli, settings_env

pytestmark = pytest.mark.slow

PSQL = str(embedded.program("psql"))


@pytest.fixture
def own_data_dir() -> Iterator[Path]:
    """A data dir of its own, so the embedded server is hnlab's (not the test server)."""
    root = Path(tempfile.mkdtemp(prefix="hnlab-access-"))
    root.chmod(0o755)
    yield root
    embedded.EmbeddedPostgres(root / "postgres").stop()
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``hnlab db serve --port 0`` in the background; yields its URL and the process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HNLAB_")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "hnlab", "db", "serve", "--port", "0"],
        cwd=REPO,
        env={**env, "HNLAB_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()
        match = re.match(r"serving the embedded database at (postgresql://\S+) \(this user", first)
        assert match, first
        yield match.group(1), serve
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()


def test_db_serve_lets_a_separate_psql_query_posts(own_data_dir: Path) -> None:
    made = hnlab_cli(
        "demo", "--hours", "2", "--no-report", env={"HNLAB_DATA_DIR": str(own_data_dir)}
    )
    assert made.returncode == 0, made.stderr
    saved = int(re.search(r"(\d+) posts saved", made.stdout).group(1))  # type: ignore[union-attr]
    with serving(own_data_dir) as (url, serve):
        assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/hnlab", url)
        query = [PSQL, url, "-Atc", "SELECT count(*) FROM posts"]
        counted = subprocess.run(query, capture_output=True, text=True, timeout=30)
        assert counted.stdout.strip() == str(saved), counted.stderr
        serve.send_signal(signal.SIGINT)
        out, _ = serve.communicate(timeout=30)
        assert serve.returncode == 0
        assert out.strip().endswith("stopped serving")


# A PostgreSQL StartupMessage (protocol 3.0, user postgres, database hnlab); the first byte
# of the server's answer, or nothing when the connection is closed unanswered.
STARTUP_PROBE = """
import socket, struct, sys
body = struct.pack("!i", 196608) + b"user\\0postgres\\0database\\0hnlab\\0\\0"
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    try:
        s.sendall(struct.pack("!i", len(body) + 4) + body)
        print(repr(s.recv(1)))
    except ConnectionResetError:
        print("reset")
"""
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another account")
@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no system python3 for the other account")
def test_db_serve_turns_away_other_accounts(own_data_dir: Path) -> None:
    assert SYSTEM_PYTHON is not None
    up = hnlab_cli("db", "upgrade", env={"HNLAB_DATA_DIR": str(own_data_dir)})
    assert up.returncode == 0, up.stderr
    with serving(own_data_dir) as (url, _):
        port = sa.make_url(url).port

        def probe(**account: int) -> str:
            run = subprocess.run(
                [SYSTEM_PYTHON, "-c", STARTUP_PROBE, str(port)],
                capture_output=True,
                text=True,
                timeout=30,
                cwd="/",
                **account,  # type: ignore[arg-type]
            )
            assert run.returncode == 0, run.stderr
            return run.stdout.strip()

        assert probe() == "b'R'"  # this user: the server asks for (trusts) authentication
        # another account: closed unanswered (a reset when the request was still unread)
        assert probe(user=65534, group=65534) in ("b''", "reset")


def test_db_serve_is_for_the_embedded_server(database_url: str) -> None:
    result = hnlab_cli("db", "serve", env={"HNLAB_DATABASE_URL": database_url})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: HNLAB_DATABASE_URL is set (")
    assert result.stderr.rstrip().endswith(
        "connect to that server directly, 'hnlab db serve' is for the embedded one"
    )


def test_a_dump_taken_during_a_collection_restores_every_committed_row(
    make_settings: Callable[..., Settings],
    sim: SimulatedHN,
    engine: sa.Engine,
    database_url: str,
    empty_database_url: str,
    tmp_path: Path,
) -> None:
    import asyncio

    settings = make_settings(hn_api_url=sim.base_url, score_threshold=0)
    for _ in range(2):
        asyncio.run(collect_once(settings))
        sim.advance(hours=1)
    sim.faults.latency_ms = 600  # the third run fetches for ~7 s: the dump falls inside it
    slow = settings.with_values(concurrency=4, posts_limit=40)
    third = threading.Thread(target=lambda: asyncio.run(collect_once(slow)))
    third.start()
    deadline = time.monotonic() + 30
    while rows(database_url, "SELECT count(*) FROM collection_runs WHERE status = 'running'") != [
        (1,)
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    archive = tmp_path / "backup.dump"
    dumped = hnlab_cli("db", "dump", "--out", str(archive), env=settings_env(settings))
    third.join(timeout=120)
    assert dumped.returncode == 0, dumped.stderr
    assert re.fullmatch(
        r"wrote \S+ \(\d+ kB\); restore it with 'hnlab db restore \S+'\n", dumped.stdout
    )
    assert not archive.with_name("backup.dump.partial").exists()

    restored = hnlab_cli(
        "db", "restore", str(archive), env={"HNLAB_DATABASE_URL": empty_database_url}
    )
    assert restored.returncode == 0, restored.stderr
    assert "rebuild the RocksDB cache with 'hnlab cache rebuild'" in restored.stdout

    runs = "SELECT id, status, posts_saved, started_at FROM collection_runs ORDER BY id"
    source_runs, copied_runs = rows(database_url, runs), rows(empty_database_url, runs)
    assert [r[1] for r in source_runs] == ["succeeded", "succeeded", "succeeded"]
    assert copied_runs[:2] == source_runs[:2]  # every finished run, exactly
    assert copied_runs[2][:3] == (source_runs[2][0], "running", None)  # as it was at the dump
    # What a post is (the third run refreshes the scores of posts already stored).
    posts = "SELECT hn_id, title, author, url, created_at, collected_at FROM posts ORDER BY hn_id"
    source_posts = rows(database_url, posts)
    third_started = source_runs[2][3]
    earlier = [p for p in source_posts if p[5] < third_started]
    assert len(earlier) == source_runs[0][2] + source_runs[1][2] > 0
    assert rows(empty_database_url, posts) in (earlier, source_posts)  # a run: all or nothing


def test_restore_refuses_a_database_with_tables_and_what_is_not_an_archive(
    database_url: str, tmp_path: Path
) -> None:
    env = {"HNLAB_DATABASE_URL": database_url}
    archive = tmp_path / "a.dump"
    assert hnlab_cli("db", "dump", "--out", str(archive), env=env).returncode == 0
    before = rows(database_url, "SELECT count(*) FROM collection_runs")
    refused = hnlab_cli("db", "restore", str(archive), env=env)
    assert refused.returncode == 1
    assert re.fullmatch(
        r"Error: the database at \S+ is not empty \(\d+ tables\); restore into an empty one: "
        r"a new HNLAB_DATA_DIR or a new database in HNLAB_DATABASE_URL\n",
        refused.stderr,
    )
    assert rows(database_url, "SELECT count(*) FROM collection_runs") == before
    text = tmp_path / "notes.txt"
    text.write_text("not a dump")
    for path, message in (
        (text, f"Error: '{text}' is not a pg_dump custom-format archive; make one with "),
        (tmp_path / "missing", f"Error: '{tmp_path / 'missing'}' is not a file; "),
    ):
        bad = hnlab_cli("db", "restore", str(path), env=env)
        assert bad.returncode == 1 and bad.stderr.startswith(message), bad.stderr
        assert "Traceback" not in bad.stderr


def test_db_shell_runs_psql_on_the_configured_database(database_url: str) -> None:
    env = {"HNLAB_DATABASE_URL": database_url}
    result = hnlab_cli(  # psql writes to the real stdout: a child process
        "db", "shell", "-Atc", "SELECT current_database()", env=env, process=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sa.make_url(database_url).database
