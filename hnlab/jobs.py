"""The job registry: what ``hnlab run`` schedules, each job declared beside its code.

A job is an id, a name, a trigger built from ``Settings`` (a 5-field cron in UTC,
or None when the settings turn it off) and a coroutine. Its module declares it
with ``register(Job(...))``, as Celery registers a task where it is defined, and
``INCLUDE`` names those modules, so adding a job is one new module plus one line
here. The service imports them, builds each body for its process and schedules
what is on; it names no job itself.

A body returns None when it succeeded, or a one-line reason when it failed
(``failure``).
The service says when a job starts failing and when it recovers (not every
fire), and records each job's last outcome for ``hnlab status``.

The module is a leaf: it imports nothing but the settings, so declaring a job
pulls in no scheduler.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from hnlab.clock import Clock
    from hnlab.config import Settings
    from hnlab.run.factory import Parts
    from hnlab.run.monitoring import Metrics
    from hnlab.run.notify import Notifier

INCLUDE = (
    "hnlab.run.runner",  # hourly_posts_collection
    "hnlab.collect.tracker",  # minute_tracker, tracker_retention
    "hnlab.collect.items",  # item_stream
    "hnlab.content.job",  # content_fetch
    "hnlab.analysis.report",  # report_generation
    "hnlab.run.notify",  # daily_digest
    "hnlab.run.heartbeat",  # runner_heartbeat
)
"""The modules that declare jobs; importing them registers their jobs."""

Body = Callable[..., Awaitable[Any]]
"""A job's coroutine: None when it succeeded, else why it failed (one line), or an
outcome with ``status`` and ``error`` (a slot's ``RunOutcome``). A slot job's body
takes the slot's scheduled time."""
Group = Literal["collect", "track", "items", "service"]


class Runtime(Protocol):
    """What a job may use from the process that runs it (``RunnerService``)."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    notifier: Notifier | None
    runner_id: str

    @property
    def parts(self) -> Parts: ...

    async def run_slot(self, slot: datetime) -> Any: ...

    async def beat(self) -> str | None: ...

    def say(self, line: str) -> None: ...


@dataclass(frozen=True)
class Job:
    """One scheduled job.

    ``setting`` is the Settings field that schedules it, named in messages (None: the
    schedule is fixed).
    ``build`` makes the body for a process, or None when there is nothing to do
    there (no notifier, say). ``group`` lets ``hnlab track`` leave out the
    collection's and the item stream's jobs. A ``slots`` job claims one slot per
    fire through the seed's ``JobScheduler.register_hourly_collector``, with
    catch-up and misfire records.
    ``options`` go to APScheduler's ``add_job``.
    """

    id: str
    name: str
    setting: str | None
    trigger: Callable[[Settings], str | None]
    build: Callable[[Runtime], Body | None]
    group: Group = "service"
    slots: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` to the registry (again with the same id replaces it)."""
    REGISTRY[job.id] = job
    return job


def registered() -> list[Job]:
    """Every declared job, in declaration order (``INCLUDE`` imported first)."""
    for module in INCLUDE:
        importlib.import_module(module)
    return list(REGISTRY.values())


def failure(result: object) -> str | None:
    """Why a body's ``result`` is a failure, or None: a string is the reason; an outcome
    whose ``status`` is ``failed`` gives its ``error``."""
    if result is None or isinstance(result, str):
        return result
    if getattr(result, "status", None) == "failed":
        return str(getattr(result, "error", None) or "failed")
    return None
