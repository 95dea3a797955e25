"""The WARC archive (ISO 28500): every response as it came, with the request that asked.

Files live under ``$HNLAB_DATA_DIR/warc/YYYY/MM/DD/hnlab-<time>-<pid>.warc.gz``; each
record is its own gzip member, so a file is appended to and any record is read back
from its offset alone. The database keeps the file (relative to the data directory)
and the offset of each story's final response record; ``read`` gives that response's
status, headers and body again, with no network.

Any WARC tool opens these files: ``pywb``'s ``wb-manager add``, ReplayWeb.page, or
``warcio index``.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from hnlab import __version__
from hnlab.content.fetcher import Hop


@dataclass(frozen=True)
class Stored:
    """A response read back from the archive."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # transfer- and content-decoded

    @property
    def content_type(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return None


def _warc_date(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Archive:
    """``with Archive(data_dir) as archive: file, offset = archive.write(hops)``.

    A file is opened on the first write and named after that moment."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self._file: BinaryIO | None = None
        self._name: str | None = None
        self._writer: Any = None
        self._lock = threading.Lock()  # writes come from worker threads

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None

    def _open(self) -> tuple[BinaryIO, Any]:
        from warcio.warcwriter import WARCWriter

        if self._file is None:
            now = datetime.now(UTC)
            folder = self.root / "warc" / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"hnlab-{now:%Y%m%d%H%M%S}-{os.getpid()}.warc.gz"
            self._file = (folder / name).open("ab")
            self._name = (folder / name).relative_to(self.root).as_posix()
            self._writer = WARCWriter(self._file, gzip=True)
            info = self._writer.create_warcinfo_record(
                name,
                {"software": f"hnlab/{__version__} warcio", "format": "WARC File Format 1.1"},
            )
            self._writer.write_record(info)
        assert self._writer is not None
        return self._file, self._writer

    def write(self, hops: list[Hop]) -> tuple[str, int] | None:
        """Write a request and a response record for each hop that has a whole
        response; return the file and offset of the last response, or None.
        Thread-safe: one fetch's records are written together."""
        with self._lock:
            return self._write(hops)

    def _write(self, hops: list[Hop]) -> tuple[str, int] | None:
        from warcio.statusandheaders import StatusAndHeaders

        last: tuple[str, int] | None = None
        for hop in hops:
            if hop.raw is None or hop.status is None:
                continue
            handle, writer = self._open()
            parts = urlsplit(hop.url)
            target = parts.path or "/"
            if parts.query:
                target = f"{target}?{parts.query}"
            request = writer.create_warc_record(
                hop.url,
                "request",
                payload=io.BytesIO(b""),
                length=0,
                http_headers=StatusAndHeaders(
                    f"GET {target} HTTP/1.1",
                    hop.request_headers  # as sent, Host included
                    if any(k.lower() == "host" for k, _ in hop.request_headers)
                    else [("Host", parts.netloc), *hop.request_headers],
                    is_http_request=True,
                ),
                warc_headers_dict={"WARC-Date": _warc_date(hop.at)},
            )
            response = writer.create_warc_record(
                hop.url,
                "response",
                payload=io.BytesIO(hop.raw),
                length=len(hop.raw),
                http_headers=StatusAndHeaders(
                    f"{hop.status} {hop.reason}".strip(),
                    _without_chunking(hop.response_headers),
                    protocol="HTTP/1.1",
                ),
                warc_headers_dict={"WARC-Date": _warc_date(hop.at)},
            )
            request.rec_headers.add_header(
                "WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID")
            )
            writer.write_record(request)
            offset = handle.tell()
            writer.write_record(response)
            handle.flush()
            for record in (request, response):
                record.raw_stream.close()  # a buffer warcio may have spooled
            last = (self._name or "", offset)
        return last


def _without_chunking(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The body is stored de-chunked, so Transfer-Encoding would mislead a reader."""
    return [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]


def read(path: Path, offset: int) -> Stored:
    """Read one response record back: status, headers and the decoded body."""
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as stream:
        stream.seek(offset)
        record = next(iter(ArchiveIterator(stream)))
        if record.rec_type != "response" or record.http_headers is None:
            raise ValueError(f"{path} at {offset} is a {record.rec_type} record, not a response")
        status = int(record.http_headers.get_statuscode() or 0)
        headers = list(record.http_headers.headers)
        body = record.content_stream().read()
        return Stored(record.rec_headers.get_header("WARC-Target-URI"), status, headers, body)
