"""hnlab: collect Hacker News top stories every hour, and study them in notebooks.

The public names load on first use, so ``import hnlab.analysis`` stays light
(no httpx, apscheduler or rocksdict until a function needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hnlab.cache import RocksDBStore
    from hnlab.client import HNClient
    from hnlab.collector import HourlyPostsCollectorJob
    from hnlab.config import Settings
    from hnlab.errors import HnlabError
    from hnlab.factory import SchedulerFactory
    from hnlab.items import Post
    from hnlab.repository import PostRepository
    from hnlab.scheduler import JobScheduler

__all__ = [
    "HNClient",
    "HnlabError",
    "HourlyPostsCollectorJob",
    "JobScheduler",
    "Post",
    "PostRepository",
    "RocksDBStore",
    "SchedulerFactory",
    "Settings",
]
__version__ = "0.1.0"

_HOMES = {
    "HNClient": "hnlab.client",
    "HnlabError": "hnlab.errors",
    "HourlyPostsCollectorJob": "hnlab.collector",
    "JobScheduler": "hnlab.scheduler",
    "Post": "hnlab.items",
    "PostRepository": "hnlab.repository",
    "RocksDBStore": "hnlab.cache",
    "SchedulerFactory": "hnlab.factory",
    "Settings": "hnlab.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
