"""The ``hnlab`` command: one module per command group, each a thin wrapper around the package."""

from hnlab.cli import cache, collect, db, items, notify, sim, status, track  # noqa: F401
from hnlab.cli.base import cli, main

__all__ = ["cli", "main"]
