"""The clock every job takes: a function that returns an aware UTC ``datetime``.

Injected everywhere (collector, tracker, runner, scheduler), so tests and the
simulator can move through hours in milliseconds. Every time hnlab stores is UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: now, in UTC."""
    return datetime.now(UTC)
