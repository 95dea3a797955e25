"""The ``hnlab`` command: one module per command group, each a thin wrapper around the package."""

from hnlab.cli import (  # noqa: F401
    cache,
    collect,
    content,
    db,
    items,
    notify,
    sim,
    status,
    summarize,
    track,
)
from hnlab.cli.base import cli, main

__all__ = ["cli", "main"]
