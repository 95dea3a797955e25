"""The ``hnlab`` command: one module per command group, each a thin wrapper around the package."""

from hnlab.cli import cache, collect, db, notify, sim, status, track  # noqa: F401  (registers)
from hnlab.cli.base import cli, main

__all__ = ["cli", "main"]
