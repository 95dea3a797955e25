"""A throwaway database for the benchmarks, so they never write where data lives."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.store import db


@contextlib.contextmanager
def scratch_database(settings: Settings, prefix: str = "hnlab_bench") -> Iterator[str]:
    """Create an empty database on the configured server and yield its URL; drop it on exit.

    The server is HNLAB_DATABASE_URL's when that is set, else the embedded one.
    """
    server_url = db.prepare(settings, migrate=False).url
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
