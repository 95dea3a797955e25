"""nbval setup: the kernels read a database seeded with 48 deterministic simulated hours.

Kernels are separate processes, so fixtures cannot reach them: this sets the
HNLAB_* environment they inherit before any kernel starts. ``collect.ipynb``
writes (a collection now would change what the others show), so nbval leaves
it out; tests/test_runner.py executes it with papermill against real services.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.nbval_env import seed_environment

_cleanup: list[Callable[[], None]] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == "collect.ipynb" or ".ipynb_checkpoints" in collection_path.parts:
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    _cleanup.append(seed_environment())


def pytest_unconfigure(config: pytest.Config) -> None:
    while _cleanup:
        _cleanup.pop()()
