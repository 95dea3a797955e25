"""hnlab's exceptions: one tree, each message naming the bad value and the fix.

    HnlabError
    ├── ConfigError (ValueError)        a setting or option has a bad value
    ├── DatabaseError                   PostgreSQL refused a statement
    │   ├── DatabaseUnavailableError    PostgreSQL cannot be reached (worth retrying later)
    │   ├── EmbeddedServerError         the embedded PostgreSQL could not start
    │   └── SchemaError                 the schema is behind and auto-migration is off
    ├── CacheError                      RocksDB could not be opened or read
    │   ├── CacheLockedError            another process holds the writer's lock
    │   └── CacheCorruptError           a scan hit a corrupt block
    ├── FetchError                      the HN API could not give a list or an item
    ├── CollectionError                 a collection run failed as a whole
    ├── JobNotFoundError (LookupError)  no scheduled job has that id
    ├── NotebookRunError                papermill could not finish the notebook
    └── SummaryError                    a story cannot be summarised, or the model failed

The policy: an ``HnlabError`` is a condition a *user* can fix (a bad setting, a
server that is down, a locked cache), and its message names the bad value and the
fix. The CLI prints ``Error: <message>`` for any of these and exits with
``exit_code``. Misuse of the Python API by a *programmer* (a closed client used
again, a missing argument, a value of the wrong type) raises the matching builtin,
``ValueError``, ``TypeError`` or ``RuntimeError``, so it surfaces as a traceback:
a traceback means a bug. ``ConfigError`` is both: a ``ValueError`` whose message
names the setting.
"""

from __future__ import annotations


class HnlabError(Exception):
    """Base of every error hnlab raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(HnlabError, ValueError):
    """A setting, environment variable or CLI option has a value hnlab cannot use."""


class DatabaseError(HnlabError):
    """PostgreSQL is unreachable, or refused what hnlab asked of it."""


class DatabaseUnavailableError(DatabaseError):
    """PostgreSQL cannot be reached: down, restarting, or the network is broken."""


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be started or reached."""


class SchemaError(DatabaseError):
    """The database schema is not at the revision this hnlab needs."""


class CacheError(HnlabError):
    """The RocksDB cache could not be opened, written or read."""


class CacheLockedError(CacheError):
    """Another process holds the RocksDB writer's lock."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"RocksDB at {path} is locked by another writer; "
            "analysts should open it with mode='read_only' or mode='secondary'"
        )
        self.path = path


class CacheCorruptError(CacheError):
    """A RocksDB scan stopped on a corrupt block instead of reaching the end."""


class FetchError(HnlabError):
    """The HN API did not give a usable answer after all retries."""


class CollectionError(HnlabError):
    """A collection run failed as a whole; its record says why."""


class JobNotFoundError(HnlabError, LookupError):
    """No scheduled job has the given id."""

    def __init__(self, job_id: object) -> None:
        super().__init__(
            f"no scheduled job has id {job_id!r}; list the jobs with JobScheduler.get_jobs()"
        )
        self.job_id = job_id


class NotebookRunError(HnlabError):
    """A notebook run failed; keeps papermill's cell index, exception name and value."""

    def __init__(
        self,
        message: str,
        *,
        notebook_path: str | None = None,
        cell_index: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ) -> None:
        super().__init__(message)
        self.notebook_path = notebook_path
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue


class SummaryError(HnlabError):
    """A story cannot be summarised (not stored), or the model endpoint failed
    (``summarize`` then falls back to the extractive summary and says why)."""
