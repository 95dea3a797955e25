"""Settings: every HNLAB_* variable and CLI override, validated in one place.

Cron expressions are checked here too, by building the trigger they describe.

Nothing here runs at import time. ``Settings.from_env()`` reads the environment
when asked; everything else in hnlab receives a ``Settings`` (or plain values)
and never reads ``os.environ`` itself.

Long because it is the whole settings table: a parser per setting, the
``Settings`` dataclass and its round trip to HNLAB_* variables, and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from hnlab import __version__
from hnlab.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_HN_API_URL = "https://hacker-news.firebaseio.com/v0"
DEFAULT_USER_AGENT = f"hnlab/{__version__} (+https://github.com/hnlab/hnlab)"
"""Names hnlab, its version and a contact URL; set HNLAB_CONTENT_USER_AGENT to yours."""
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
"""The checkout's notebooks: ``collect.ipynb`` and the analysis notebooks."""
MAX_POSTS_LIMIT = 500
DEFAULT_CRON = "0 * * * *"
"""The hourly collection's schedule: at :00 of every hour, UTC."""
STORY_LISTS = ("top", "new", "best", "ask", "show", "job")
"""HN's story lists. The minute tracker stores a list as its position in this tuple
(``rank_minutes.lists``, ``rank_spans.list``): never reorder it, only append."""

_URL_SCHEMES = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def mask_url(url: str | None) -> str:
    """Return ``url`` with its password replaced by ``***``, safe to print or log."""
    if not url:
        return "(embedded)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def normalize_database_url(url: str, label: str = "HNLAB_DATABASE_URL") -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs and point them at psycopg 3."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _URL_SCHEMES:
        raise ConfigError(
            f"{label} must start with postgresql:// or postgres://, got {mask_url(url)!r}"
        )
    if not rest.strip("/"):
        raise ConfigError(f"{label} names no server, got {mask_url(url)!r}")
    return f"{_URL_SCHEMES[scheme.lower()]}://{rest}"


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str, Any], int]:
    allowed = (
        f"a whole number >= {minimum}"
        if maximum is None
        else (f"a whole number from {minimum} to {maximum}")
    )

    def parse(label: str, raw: Any) -> int:
        if isinstance(raw, bool):
            raise ConfigError(f"{label} must be {allowed}, got {raw!r}")
        try:
            value = int(str(raw).strip(), 10) if not isinstance(raw, int) else raw
        except ValueError:
            raise ConfigError(f"{label} must be {allowed}, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(f"{label} must be {allowed}, got {raw!r}")
        return value

    return parse


def _seconds(minimum: float, unit: str = "seconds") -> Callable[[str, Any], float]:
    def parse(label: str, raw: Any) -> float:
        allowed = f"a number of {unit} > {minimum:g}"
        try:
            value = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
        except ValueError:
            raise ConfigError(f"{label} must be {allowed}, got {raw!r}") from None
        if not value > minimum or value == float("inf"):
            raise ConfigError(f"{label} must be {allowed}, got {raw!r}")
        return value

    return parse


def _flag(label: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{label} must be 1 or 0 (true or false), got {raw!r}")


def _path(label: str, raw: Any) -> Path:
    text = str(raw).strip()
    if not text:
        raise ConfigError(f"{label} must be a directory path, got {raw!r}")
    return Path(text).expanduser()


def _api_url(label: str, raw: Any) -> str:
    text = str(raw).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{label} must be an http:// or https:// URL, got {raw!r}")
    return text


def _text(label: str, raw: Any) -> str:
    text = str(raw).strip()
    if not text or any(ch in text for ch in "\r\n"):
        raise ConfigError(f"{label} must be one line of text, got {raw!r}")
    return text


def mask_secret(value: str | None) -> str | None:
    """A key or token shown as its last four characters at most: ``****abcd``."""
    if not value:
        return None
    return "****" + (value[-4:] if len(value) >= 12 else "")


def _database_url(label: str, raw: Any) -> str | None:
    text = str(raw).strip() if raw is not None else ""
    return normalize_database_url(text, label) if text else None


def _story_list(label: str, raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in STORY_LISTS:
        raise ConfigError(f"{label} must be one of {', '.join(STORY_LISTS)}, got {raw!r}")
    return text


def cron_trigger(expression: str = DEFAULT_CRON, label: str = "HNLAB_CRON") -> CronTrigger:
    """A 5-field cron trigger in UTC, or a ConfigError naming ``label``.

    apscheduler is imported here, when a schedule is needed, not with the settings."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{label} must be a 5-field cron expression such as '0 * * * *', "
            f"got {expression!r} ({exc})"
        ) from None


def _cron(label: str, raw: Any) -> str:
    text = " ".join(str(raw).split())
    if len(text.split(" ")) != 5:
        raise ConfigError(
            f"{label} must be a 5-field cron expression such as '0 * * * *', got {raw!r}"
        )
    cron_trigger(text, label)
    return text


def _address(label: str, raw: Any) -> str | None:
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{label} must be HOST:PORT such as 127.0.0.1:9464, got {raw!r}")
    return text


def _notify_urls(label: str, raw: Any) -> tuple[str, ...]:
    """Apprise URLs, separated by commas or white space; each must name a known service."""
    if isinstance(raw, tuple | list):
        urls = tuple(str(u).strip() for u in raw if str(u).strip())
    else:
        urls = tuple(u for u in str(raw).replace(",", " ").split() if u)
    import apprise

    for url in urls:
        if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
            raise ConfigError(
                f"{label} has a URL apprise cannot use: {mask_notify_url(url)!r}; see "
                "https://github.com/caronc/apprise/wiki for the schemes (e.g. tgram://, "
                "slack://, mailto://, ntfy://, json://)"
            )
    return urls


def mask_notify_url(url: str) -> str:
    """An apprise URL with its secrets (passwords, tokens, keys) hidden, safe to print."""
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is not None:
        return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    scheme = url.partition("://")[0]
    return f"{scheme}://***"


def _allow_list(label: str, raw: Any) -> tuple[str, ...]:
    """Host names or CIDRs the content fetcher may reach even when internal."""
    import ipaddress

    entries = raw if isinstance(raw, tuple | list) else str(raw).replace(",", " ").split()
    out = []
    for entry in (str(e).strip().lower() for e in entries):
        if not entry:
            continue
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(
                    f"{label} has a bad network {entry!r}; give hosts or CIDRs such as "
                    "'127.0.0.1/32,localhost'"
                ) from None
        elif not all(
            part and part.replace("-", "").replace("_", "").isalnum()
            for part in entry.strip("[]").replace(":", ".").split(".")
        ):
            raise ConfigError(
                f"{label} has a bad host {entry!r}; give hosts or CIDRs such as "
                "'127.0.0.1/32,localhost'"
            )
        out.append(entry)
    return tuple(out)


DEFAULT_TRACK_DEPTH = {"top": 90, "new": 30, "best": 30, "ask": 30, "show": 30}


def _track_lists(label: str, raw: Any) -> tuple[str, ...]:
    names = raw if isinstance(raw, tuple | list) else str(raw).replace(",", " ").split()
    lists = tuple(_story_list(label, name) for name in names)
    if not lists or len(set(lists)) != len(lists):
        raise ConfigError(
            f"{label} must name each list once, e.g. 'top,new,best,ask,show', got {raw!r}"
        )
    return lists


def _track_depth(label: str, raw: Any) -> dict[str, int]:
    """``top=90,new=30`` (others keep their default), or one number for every list."""
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif str(raw).strip().isdigit():
        pairs = [(name, raw) for name in STORY_LISTS]
    else:
        pairs = []
        for part in str(raw).replace(",", " ").split():
            name, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(
                    f"{label} must look like 'top=90,new=30' or be one number, got {raw!r}"
                )
            pairs.append((name, value))
    depth = dict(DEFAULT_TRACK_DEPTH)
    for name, value in pairs:
        depth[_story_list(label, name)] = _whole(1, MAX_POSTS_LIMIT)(f"{label} for {name}", value)
    return depth


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "database_url": _database_url,
    "data_dir": _path,
    "rocksdb_path": _path,
    "runs_dir": _path,
    "hn_api_url": _api_url,
    "score_threshold": _whole(0),
    "posts_limit": _whole(1, MAX_POSTS_LIMIT),
    "story_list": _story_list,
    "auto_migrate": _flag,
    "concurrency": _whole(1, 1000),
    "connect_timeout": _seconds(0),
    "read_timeout": _seconds(0),
    "retry_attempts": _whole(1, 20),
    "run_deadline": _seconds(0),
    "cron": _cron,
    "misfire_grace_minutes": _whole(1, 24 * 60),
    "cell_timeout": _seconds(0),
    "run_timeout": _seconds(0),
    "retention_days": _whole(0),
    "drain_timeout": _seconds(0),
    "report_cron": _cron,
    "notebook": _path,
    "reports_dir": _path,
    "shared_dir": _path,
    "metrics_addr": _address,
    "notify_urls": _notify_urls,
    "digest_cron": _cron,
    "track_every": _whole(0, 60),
    "track_lists": _track_lists,
    "track_depth": _track_depth,
    "track_keep_days": _whole(0),
    "items_every": _whole(0, 60),
    "items_null_retries": _whole(1, 100),
    "items_settle_hours": _seconds(0, "hours"),
    "items_rate": _seconds(0, "requests a second"),
    "llm_url": _api_url,
    "llm_model": _text,
    "llm_api_key": _text,
    "llm_timeout": _seconds(0),
    "content_top": _whole(0, MAX_POSTS_LIMIT),
    "content_every": _whole(0, 60),
    "content_host_delay": _seconds(0),
    "content_user_agent": _text,
    "content_max_bytes": _whole(1024),
    "content_allow": _allow_list,
}


def validate(name: str, value: Any, label: str | None = None) -> Any:
    """Parse one setting's value as ``Settings`` would; a ConfigError names ``label``."""
    return _PARSERS[name](label or name, value)


def make_dir(path: Path, label: str) -> None:
    """Create ``path`` (and parents) or raise one ConfigError line naming ``label`` and the fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{label} {str(path)!r} cannot be created ({exc.strerror}); "
            "point it at a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{label} {str(path)!r} is not writable; point it at a writable directory"
        )


def env_name(field_name: str) -> str:
    """The environment variable behind a settings field."""
    return f"HNLAB_{field_name.upper()}"


@dataclass(frozen=True)
class Settings:
    """hnlab's validated configuration. Build it with ``Settings.from_env()``."""

    database_url: str | None = None
    data_dir: Path = Path("data")
    rocksdb_path: Path | None = None
    runs_dir: Path | None = None
    hn_api_url: str = DEFAULT_HN_API_URL
    score_threshold: int = 50
    posts_limit: int = 100
    story_list: str = "top"
    auto_migrate: bool = True
    concurrency: int = 100
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    retry_attempts: int = 4
    run_deadline: float = 300.0
    cron: str = DEFAULT_CRON
    misfire_grace_minutes: int = 10
    cell_timeout: float = 600.0
    run_timeout: float = 1800.0
    retention_days: int = 30
    drain_timeout: float = 300.0
    report_cron: str = "15 6 * * *"
    notebook: Path | None = None
    reports_dir: Path = Path("reports")
    shared_dir: Path = Path("/var/lib/hnlab")
    metrics_addr: str | None = None
    notify_urls: tuple[str, ...] = ()
    digest_cron: str = "0 8 * * *"
    track_every: int = 1
    track_lists: tuple[str, ...] = ("top", "new", "best", "ask", "show")
    track_depth: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TRACK_DEPTH))
    track_keep_days: int = 0
    items_every: int = 1
    items_null_retries: int = 5
    items_settle_hours: float = 2.0
    items_rate: float = 100.0
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 60.0
    content_top: int = 30
    content_every: int = 5
    content_host_delay: float = 1.0
    content_user_agent: str = DEFAULT_USER_AGENT
    content_max_bytes: int = 5_000_000
    content_allow: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        option_names: Mapping[str, str] | None = None,
    ) -> Settings:
        """Read HNLAB_* variables, apply non-None ``overrides`` and validate everything.

        ``option_names`` maps a field to the CLI option that overrode it, so an error
        names what the user actually typed.
        """
        env = os.environ if environ is None else environ
        option_names = option_names or {}
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for name, parse in _PARSERS.items():
            label = env_name(name)
            raw: Any = env.get(label)
            if raw is not None and raw.strip() == "" and name != "database_url":
                raw = None
            if overrides and overrides.get(name) is not None:
                raw = overrides[name]
                label = option_names.get(name, label)
            if raw is None:
                continue
            values[name] = parse(label, raw)
            labels[name] = label
        return cls(**values, labels=labels)

    def __post_init__(self) -> None:
        data_dir = Path(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        if self.rocksdb_path is None:
            object.__setattr__(self, "rocksdb_path", data_dir / "content.rocksdb")
        if self.runs_dir is None:
            object.__setattr__(self, "runs_dir", data_dir / "runs")

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"Settings({shown})"

    @property
    def rocksdb(self) -> Path:
        """RocksDB directory (always set after construction)."""
        assert self.rocksdb_path is not None
        return self.rocksdb_path

    @property
    def runs(self) -> Path:
        """Directory of output notebooks (always set after construction)."""
        assert self.runs_dir is not None
        return self.runs_dir

    @property
    def collect_notebook(self) -> Path:
        """The notebook each run executes: HNLAB_NOTEBOOK, or the checkout's collect.ipynb."""
        return self.notebook or NOTEBOOKS_DIR / "collect.ipynb"

    @property
    def postgres_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data."""
        return self.data_dir / "postgres"

    @property
    def uses_embedded(self) -> bool:
        """True when no database URL is set and hnlab runs its own PostgreSQL."""
        return self.database_url is None

    @property
    def display_url(self) -> str:
        """The database URL with its password masked."""
        return mask_url(self.database_url)

    def label(self, name: str) -> str:
        """The name the user knows a setting by: the CLI option or HNLAB_ variable."""
        return self.labels.get(name, env_name(name))

    def with_values(self, **values: Any) -> Settings:
        """A copy with some fields replaced (values are validated like overrides)."""
        checked: dict[str, Any] = {
            k: _PARSERS[k](env_name(k), v) if v is not None else None for k, v in values.items()
        }
        if "data_dir" in checked:
            for derived in ("rocksdb_path", "runs_dir"):
                if derived not in self.labels and derived not in checked:
                    checked[derived] = None
        return replace(self, **checked)

    def ensure_dirs(self) -> None:
        """Create the data, runs and RocksDB parent directories, or fail naming the setting."""
        for name, path in (
            ("data_dir", self.data_dir),
            ("runs_dir", self.runs),
            ("rocksdb_path", self.rocksdb.parent),
        ):
            make_dir(path, f"{self.label(name)} directory")

    def to_env(self) -> dict[str, str]:
        """The settings as HNLAB_* variables, for child processes (kernels read these).

        Paths are made absolute, since a child may run in another directory. The
        database URL keeps its password: it goes into an environment, never a file.
        """
        env = {
            env_name(name): str(value)
            for name, value in self.as_dict().items()
            if value is not None and name not in ("database_url", "notify_urls", "llm_api_key")
        }
        if self.database_url:
            env["HNLAB_DATABASE_URL"] = self.database_url
        if self.llm_api_key:
            env["HNLAB_LLM_API_KEY"] = self.llm_api_key
        if self.notify_urls:
            env["HNLAB_NOTIFY_URLS"] = " ".join(self.notify_urls)
        for name, path in (
            ("data_dir", self.data_dir),
            ("rocksdb_path", self.rocksdb),
            ("runs_dir", self.runs),
        ):
            env[env_name(name)] = str(path.resolve())
        return env

    def as_dict(self) -> dict[str, Any]:
        """Settings as plain values, the database password masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "labels":
                continue
            value = getattr(self, f.name)
            if f.name == "database_url":
                value = mask_url(value)
            elif f.name == "notify_urls":
                value = ", ".join(mask_notify_url(u) for u in value) or None
            elif f.name == "llm_url":
                value = mask_url(value) if value else None
            elif f.name == "llm_api_key":
                value = mask_secret(value)
            elif f.name in ("track_lists", "content_allow"):
                value = ",".join(value) if value or f.name == "track_lists" else None
            elif f.name == "track_depth":
                value = ",".join(f"{name}={depth}" for name, depth in value.items())
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out
