import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hnlab.errors import CacheCorruptError, CacheError, CacheLockedError
from hnlab.hn.items import Post
from hnlab.store.cache import RocksDBStore, metadata_key

T = datetime(2026, 2, 13, 22, 0, 0, 123456, tzinfo=UTC)


def seed_post(hn_id: int = 40000001, title: str = "Article Title") -> Post:
    return Post(
        hn_id=hn_id,
        title=title,
        author="username",
        url="https://example.com/article",
        domain="example.com",
        score=250,
        comment_count=42,
        created_at=datetime(2026, 2, 13, 10, 0, tzinfo=UTC),
        collected_at=T,
        type="story",
    )


def test_round_trip_is_the_seed_json_as_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "content.rocksdb"
    with RocksDBStore(path) as store:
        assert store.put_metadata([seed_post()]) == 1
        assert store.get_metadata(40000001) == {
            "hn_id": 40000001,
            "title": "Article Title",
            "author": "username",
            "url": "https://example.com/article",
            "points": 250,
            "num_comments": 42,
            "post_type": "story",
            "created_at": "2026-02-13T10:00:00.000000",
            "collected_at": "2026-02-13T22:00:00.123456",
        }
        raw = store.db.get(metadata_key(40000001))
        assert isinstance(raw, bytes) and json.loads(raw.decode("utf-8"))["points"] == 250
        assert store.get_stats() == {"total_keys": 1, "db_path": str(path)}
        assert store.missing([40000001, 7]) == [7]
        assert store.get_metadata(7) is None


def test_non_ascii_titles_are_stored_as_utf8(tmp_path: Path) -> None:
    with RocksDBStore(tmp_path / "c") as store:
        store.put_metadata([seed_post(1, "Zürich “quotes” 日本")])
        assert store.db.get(metadata_key(1)).decode("utf-8").count("日本") == 1
        assert store.get_metadata(1)["title"] == "Zürich “quotes” 日本"  # type: ignore[index]


HOLD_WRITER = textwrap.dedent("""
    import sys, time
    from datetime import datetime, UTC
    from hnlab.store.cache import RocksDBStore
    from hnlab.hn.items import Post
    T = datetime(2026, 1, 1, tzinfo=UTC)
    with RocksDBStore(sys.argv[1]) as store:
        for i in range(1, 4):
            store.put_metadata([Post(hn_id=i, title=f"t{i}", author=None, url=None, domain=None,
                                     score=i, comment_count=0, created_at=T, collected_at=T,
                                     type="story")])
            store.db.flush()
        print("ready", flush=True)
        sys.stdin.readline()
        store.put_metadata([Post(hn_id=99, title="late", author=None, url=None, domain=None,
                                 score=1, comment_count=0, created_at=T, collected_at=T,
                                 type="story")])
        store.db.flush()
        print("wrote", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def writer(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "content.rocksdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield path, proc
    proc.kill()
    proc.communicate()


def test_a_second_writer_gets_cache_locked_error(writer) -> None:  # type: ignore[no-untyped-def]
    path, _ = writer
    with pytest.raises(CacheLockedError) as info:
        RocksDBStore(path).open()
    assert str(info.value) == (
        f"RocksDB at {path} is locked by another writer; analysts should open it with "
        "mode='read_only' or mode='secondary'"
    )


def test_readers_never_block_a_writer_in_another_process(writer) -> None:  # type: ignore[no-untyped-def]
    path, proc = writer
    with RocksDBStore(path, mode="read_only") as ro:
        assert [m["hn_id"] for m in ro.iter_metadata()] == [1, 2, 3]
    with RocksDBStore(path, mode="secondary") as sec:
        assert sec.get_stats()["total_keys"] == 3
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "wrote"
        sec.catch_up()
        assert sec.get_metadata(99)["title"] == "late"  # type: ignore[index]


def test_readers_cannot_write(tmp_path: Path) -> None:
    with RocksDBStore(tmp_path / "c") as store:
        store.put_metadata([seed_post(1)])
    with (
        RocksDBStore(tmp_path / "c", mode="read_only") as ro,
        pytest.raises(CacheError, match="writes need mode='write'"),
    ):
        ro.put_metadata([seed_post(2)])


def test_opening_a_missing_cache_read_only_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match=r"no RocksDB cache at .*; run a collection first"):
        RocksDBStore(tmp_path / "nothing", mode="read_only").open()


def test_a_corrupt_sst_block_raises_instead_of_ending_early(tmp_path: Path) -> None:
    path = tmp_path / "c"
    with RocksDBStore(path) as store:
        store.put_metadata(seed_post(i, "t" * 200) for i in range(1, 5001))
        store.db.flush()
    sst = next(path.glob("*.sst"))
    data = bytearray(sst.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    sst.write_bytes(bytes(data))
    for mode in ("read_only", "secondary"):
        with (
            RocksDBStore(path, mode=mode) as store,
            pytest.raises(CacheCorruptError, match=r"corrupt .*hnlab cache rebuild"),
        ):
            store.get_stats()
