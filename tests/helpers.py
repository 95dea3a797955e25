"""Helpers for tests that run hnlab as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hnlab.config import Settings

REPO = Path(__file__).resolve().parent.parent


def hnlab_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hnlab`` as a user would, with only HNLAB_* from ``env``."""
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


def settings_env(settings: Settings) -> dict[str, str]:
    """The HNLAB_* variables that reproduce ``settings`` in a child process."""
    from hnlab.runner import settings_env as env

    return env(settings)


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
