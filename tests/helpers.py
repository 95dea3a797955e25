"""Helpers for tests that run hnlab as a user would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hnlab.config import Settings
from hnlab.store import db

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent


def hnlab_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the ``hnlab`` command as a user would, with only HNLAB_* from ``env``.

    In-process by default, through ``hnlab.cli.main`` in click's isolation (what a
    user types, the same exit codes and ``Error:`` lines, in milliseconds instead of
    a Python start-up). ``process=True`` runs ``python -m hnlab`` in a real child
    process, for what needs one: log lines on stderr, signals, the embedded server's
    life across commands."""
    if process:
        base = {k: v for k, v in os.environ.items() if not k.startswith("HNLAB_")}
        base.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "hnlab", *args],
            capture_output=True,
            text=True,
            env=base,
            timeout=timeout,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
    from click.testing import CliRunner

    from hnlab.cli import main

    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HNLAB_")}
    environ.update(env or {})
    with CliRunner().isolation(env=environ) as (stdout, stderr, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["hnlab", *args], code, out, err)


def settings_env(settings: Settings) -> dict[str, str]:
    """The HNLAB_* variables that reproduce ``settings`` in a child process."""
    return settings.to_env()


def on_loop(engine: sa.Engine, call: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``call`` (e.g. a ``records`` function) with an async engine on ``engine``'s database."""

    async def go() -> T:
        eng = db.make_async_engine(db.engine_url(engine))
        try:
            return await call(eng)
        finally:
            await eng.dispose()

    return asyncio.run(go())


def hnlab_process(settings: Settings, *args: str, **env: str) -> subprocess.Popen[str]:
    """Start ``python -m hnlab`` in the background with ``settings`` as HNLAB_* variables."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HNLAB_")}
    full.update(settings_env(settings))
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "hnlab", *args],
        cwd=REPO,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows(engine: sa.Engine | str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` as tuples, on an engine or a database URL."""
    eng = db.make_engine(engine) if isinstance(engine, str) else engine
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        if isinstance(engine, str):
            eng.dispose()


def dict_rows(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def eventually(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait until ``condition()`` holds (polled every 50 ms), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
