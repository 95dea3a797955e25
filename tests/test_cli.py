"""The hnlab command as a user runs it: runs, status, cache check and rebuild."""

import json
import re

import pytest
import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.sim.server import SimulatedHN

from .helpers import hnlab_cli, settings_env

pytestmark = pytest.mark.slow


def test_runs_and_status_show_the_history(settings: Settings, engine: sa.Engine) -> None:
    env = settings_env(settings)
    assert hnlab_cli("collect", env=env).returncode == 0
    runs = hnlab_cli("runs", "--json", env=env)
    assert runs.returncode == 0, runs.stderr
    [row] = [json.loads(line) for line in runs.stdout.splitlines()]
    assert (row["status"], row["trigger"]) == ("succeeded", "manual")
    text = hnlab_cli("runs", env=env).stdout
    assert re.match(r"#1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ manual +succeeded", text)
    status = hnlab_cli("status", env=env)
    assert "runners: none alive" in status.stdout
    assert "last run: #1 succeeded (manual)" in status.stdout


def test_cache_check_finds_corruption_and_rebuild_repairs_it(
    sim: SimulatedHN, settings: Settings, engine: sa.Engine
) -> None:
    env = settings_env(settings)
    assert hnlab_cli("collect", "--limit", "200", "--threshold", "0", env=env).returncode == 0
    ok = hnlab_cli("cache", "check", env=env)
    assert ok.returncode == 0 and re.search(r"state +ok", ok.stdout), ok.stdout + ok.stderr
    from hnlab.store.cache import RocksDBStore

    with RocksDBStore(settings.rocksdb) as store:
        store.db.flush()
    sst = next(settings.rocksdb.glob("*.sst"))
    data = bytearray(sst.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    sst.write_bytes(bytes(data))
    bad = hnlab_cli("cache", "check", env=env)
    assert bad.returncode == 1
    assert re.search(r"state +corrupt", bad.stdout)
    assert bad.stderr.strip() == "Error: cache check failed: corrupt"
    rebuilt = hnlab_cli("cache", "rebuild", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM posts")).scalar_one()
    assert f"rebuilt the cache with {count} posts" in rebuilt.stdout
    assert "moved the old cache to" in rebuilt.stdout
    assert hnlab_cli("cache", "check", env=env).returncode == 0
