"""RocksDBStore: the post-metadata cache in RocksDB (rocksdict, raw mode).

Keys are ``metadata:{hn_id}``; values are UTF-8 JSON bytes with the seed's keys,
so any RocksDB tool can read them. Runs open the store in ``write`` mode only
while they write; analysts use ``read_only`` or ``secondary`` and never take
the writer's lock.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from hnlab.errors import CacheCorruptError, CacheError, CacheLockedError
from hnlab.hn.items import Post

Mode = Literal["write", "read_only", "secondary"]
KEY_PREFIX = b"metadata:"


def metadata_key(hn_id: int) -> bytes:
    """The seed's key format: ``metadata:{hn_id}``."""
    return KEY_PREFIX + str(hn_id).encode()


class RocksDBStore:
    """The metadata cache. Use as a context manager: ``with RocksDBStore(path) as store:``."""

    def __init__(
        self, path: str | Path, mode: Mode = "write", secondary_path: str | Path | None = None
    ) -> None:
        if mode not in ("write", "read_only", "secondary"):
            raise CacheError(
                f"RocksDBStore mode must be write, read_only or secondary, got {mode!r}"
            )
        self.path = Path(path)
        self.mode: Mode = mode
        self._secondary_path = Path(secondary_path) if secondary_path else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._db: Any = None

    # -- life cycle ---------------------------------------------------------------------
    def open(self) -> RocksDBStore:
        """Open the database in this store's mode."""
        from rocksdict import AccessType, Options, Rdict

        if self._db is not None:
            return self
        options = Options(raw_mode=True)
        options.create_if_missing(self.mode == "write")
        try:
            if self.mode == "write":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = Rdict(str(self.path), options)
            else:
                if not (self.path / "CURRENT").exists():
                    raise CacheError(
                        f"no RocksDB cache at {self.path}; run a collection first "
                        "or set HNLAB_ROCKSDB_PATH"
                    )
                if self.mode == "read_only":
                    access = AccessType.read_only(False)
                else:
                    if self._secondary_path is None:
                        self._tmp = tempfile.TemporaryDirectory(prefix="hnlab-rocks-secondary-")
                        self._secondary_path = Path(self._tmp.name)
                    access = AccessType.secondary(str(self._secondary_path))
                self._db = Rdict(str(self.path), options, access_type=access)
        except CacheError:
            raise
        except Exception as exc:
            message = str(exc)
            if "lock" in message.lower() and "LOCK" in message:
                raise CacheLockedError(str(self.path)) from None
            if "Corruption" in message:
                raise CacheCorruptError(
                    f"RocksDB at {self.path} is corrupt ({message.splitlines()[0]}); "
                    "run 'hnlab cache rebuild'"
                ) from None
            raise CacheError(f"cannot open RocksDB at {self.path}: {message}") from None
        return self

    def close(self) -> None:
        """Close the database (and drop a temporary secondary directory)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._secondary_path = None

    def __enter__(self) -> RocksDBStore:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """True while the database is open."""
        return self._db is not None

    @property
    def db(self) -> Any:
        if self._db is None:
            raise CacheError(f"RocksDB at {self.path} is not open; use 'with RocksDBStore(...)'")
        return self._db

    # -- writes -------------------------------------------------------------------------
    def put_metadata(self, posts: Iterable[Post]) -> int:
        """Write every post's metadata in one WriteBatch; return how many were written."""
        from rocksdict import WriteBatch

        if self.mode != "write":
            raise CacheError(
                f"RocksDB at {self.path} is open {self.mode}; writes need mode='write'"
            )
        batch = WriteBatch(raw_mode=True)
        count = 0
        for post in posts:
            batch.put(metadata_key(post.hn_id), _dump(post.to_metadata()))
            count += 1
        if count:
            try:
                self.db.write(batch)
            except Exception as exc:
                raise CacheError(f"cannot write to RocksDB at {self.path}: {exc}") from None
        return count

    # -- reads --------------------------------------------------------------------------
    def catch_up(self) -> None:
        """A secondary instance: replay what the writer has added since opening."""
        if self.mode == "secondary":
            self.db.try_catch_up_with_primary()

    def get_metadata(self, hn_id: int) -> dict[str, Any] | None:
        """One post's metadata, or None."""
        raw = self.db.get(metadata_key(hn_id))
        return None if raw is None else _load(raw)

    def missing(self, hn_ids: Iterable[int]) -> list[int]:
        """Which of ``hn_ids`` have no metadata entry."""
        ids = list(hn_ids)
        if not ids:
            return []
        values = self.db.get([metadata_key(i) for i in ids])
        return [i for i, v in zip(ids, values, strict=True) if v is None]

    def iter_metadata(self) -> Iterator[dict[str, Any]]:
        """Every metadata value in key order; raises CacheCorruptError instead of stopping early.

        rocksdict's own iterators end silently on a corrupt block, so this walks a
        raw iterator and checks its status at the end.
        """
        it = self.db.iter()
        it.seek(KEY_PREFIX)
        while it.valid():
            key = it.key()
            if not key.startswith(KEY_PREFIX):
                break
            yield _load(it.value())
            it.next()
        try:
            it.status()
        except Exception as exc:
            raise CacheCorruptError(
                f"RocksDB at {self.path} is corrupt ({str(exc).splitlines()[0]}); "
                "run 'hnlab cache rebuild' to rebuild it from PostgreSQL"
            ) from None

    def get_stats(self) -> dict[str, Any]:
        """The seed's stats: ``{"total_keys": int, "db_path": str}`` (a full, checked scan)."""
        total = sum(1 for _ in self.iter_metadata())
        return {"total_keys": total, "db_path": str(self.path)}


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _load(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise CacheCorruptError(f"metadata value is not a JSON object: {raw[:60]!r}")
    return value
