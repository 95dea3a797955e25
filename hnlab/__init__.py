"""hnlab: collect Hacker News top stories every hour, and study them in notebooks.

The public names load on first use, so ``import hnlab.analysis`` stays light
(no httpx, apscheduler or rocksdict until a function needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hnlab.collect.collector import HourlyPostsCollectorJob
    from hnlab.config import Settings
    from hnlab.errors import HnlabError
    from hnlab.hn.client import HNClient
    from hnlab.hn.items import Post
    from hnlab.run.factory import SchedulerFactory, collector_from_settings
    from hnlab.run.scheduler import JobScheduler
    from hnlab.store.cache import RocksDBStore
    from hnlab.store.posts import PostRepository

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
    "collector_from_settings",
]
__version__ = "0.1.0"

_HOMES = {
    "HNClient": "hnlab.hn.client",
    "HnlabError": "hnlab.errors",
    "HourlyPostsCollectorJob": "hnlab.collect.collector",
    "JobScheduler": "hnlab.run.scheduler",
    "Post": "hnlab.hn.items",
    "PostRepository": "hnlab.store.posts",
    "RocksDBStore": "hnlab.store.cache",
    "SchedulerFactory": "hnlab.run.factory",
    "Settings": "hnlab.config",
    "collector_from_settings": "hnlab.run.factory",
}


_MODULES = {"plots": "hnlab.analysis.plots"}  # ``from hnlab import plots``


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(_MODULES[name])
        globals()[name] = module
        return module
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hnlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
