"""The seeded world the analysis notebooks are checked against (nbval and its refresh script).

48 simulated hours, seed 1, from 2026-03-01 00:00 UTC, collected hourly and tracked
every 2 simulated minutes, the stories' links then fetched from the simulator's web:
the same rows every time,
so a notebook cell marked ``# NBVAL_CHECK_OUTPUT`` can keep its expected output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

SEED_START = datetime(2026, 3, 1, tzinfo=UTC)
SEED_HOURS = 48
SEED = 1
SEED_TRACK_EVERY = 2  # minutes between the tracker's ticks (every minute takes twice as long)


def seed_environment() -> Callable[[], None]:
    """Seed a database, point HNLAB_* at it (kernels inherit them), return the cleanup."""
    from hnlab.config import Settings
    from hnlab.sim.demo import run_demo
    from hnlab.store.embedded import EmbeddedPostgres

    from .conftest import create_database, drop_database

    root = Path(tempfile.mkdtemp(prefix="hnlab-nbval-"))
    root.chmod(0o755)  # as root, the embedded server runs as another account
    env = {"HNLAB_DATA_DIR": str(root), "HNLAB_ROCKSDB_PATH": str(root / "content.rocksdb")}
    external = os.environ.get("HNLAB_TEST_DATABASE_URL")
    url = create_database(external, "hnlab_nbval") if external else None
    if url:
        env["HNLAB_DATABASE_URL"] = url
    os.environ.update(env)
    settings = Settings.from_env().with_values(track_every=SEED_TRACK_EVERY)
    asyncio.run(
        run_demo(settings, hours=SEED_HOURS, seed=SEED, start=SEED_START, progress=False, web=True)
    )

    def cleanup() -> None:
        if external and url:
            drop_database(external, url)
        else:
            EmbeddedPostgres(root / "postgres").stop()
        shutil.rmtree(root, ignore_errors=True)

    return cleanup
