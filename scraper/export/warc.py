"""Export stored raw pages as WARC files (ISO 28500, WARC/1.1) with warcio.

Each file starts with a ``warcinfo`` record. Each stored raw page becomes a
``request`` / ``response`` pair carrying its original status line and headers
and the body as served; a body already written earlier in the export becomes a
``revisit`` record (identical-payload-digest profile) instead of a second copy.
Pages imported from files (no HTTP exchange behind them) become ``resource``
records. Every record is gzipped on its own, and a new file is started once the
current one passes the size limit.

The archive keeps bodies with the transfer and content encodings removed, so
headers that would make a replay tool decode the body again
(``Content-Encoding``, ``Transfer-Encoding``) are renamed ``X-Archive-Orig-*``
(the convention pywb uses) and ``Content-Length`` is made true to the body;
``scraper.export.warcimport`` undoes this on the way back in.
"""

from __future__ import annotations

import base64
import hashlib
import http
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scraper import __version__
from scraper.config import ExportSettings
from scraper.export.cdxj import CdxjIndex
from scraper.export.partial import WrittenAside

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Select

__all__ = [
    "DEFAULT_MAX_SIZE",
    "ORIG_PREFIX",
    "REQUESTED_URL_HEADER",
    "WarcExport",
    "export_warc",
    "served_headers",
    "warc_paths",
]

_SETTINGS = ExportSettings()
DEFAULT_MAX_SIZE = _SETTINGS.warc_max_size
ORIG_PREFIX = "X-Archive-Orig-"
#: Extension field keeping the URL asked for when a redirect ended elsewhere.
REQUESTED_URL_HEADER = "WARC-X-Requested-URL"
_RENAMED = ("content-encoding", "transfer-encoding")


@dataclass(slots=True)
class WarcExport:
    """What an export wrote: files, and how many pages went in each way."""

    files: list[Path] = field(default_factory=list)
    indexes: list[Path] = field(default_factory=list)
    responses: int = 0
    revisits: int = 0
    resources: int = 0
    robots: int = 0


def warc_paths(first: Path) -> Iterator[Path]:
    """Yield the file names of an export: *first*, then ``name-00001.warc.gz``, ..."""
    yield first
    name = first.name
    stem = name[: -len(".warc.gz")] if name.endswith(".warc.gz") else first.stem
    number = 1
    while True:
        yield first.with_name(f"{stem}-{number:05d}.warc.gz")
        number += 1


def _warc_date(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def served_headers(headers: Sequence[Sequence[str]], body_size: int) -> list[tuple[str, str]]:
    """Return response headers fit for the decoded body (see the module docstring)."""
    result: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _RENAMED and value.strip().lower() != "identity":
            result.append((ORIG_PREFIX + name, value))
        elif lowered == "content-length" and value.strip() != str(body_size):
            # The length of the encoded transfer: keep it, and say the true one.
            result.append((ORIG_PREFIX + name, value))
            result.append(("Content-Length", str(body_size)))
        else:
            result.append((name, value))
    return result


class _Writer:
    """One export run: the open file and its rollover, and revisit decisions.

    Record ids are derived from the raw page ids within a namespace drawn for
    this export, so a revisit can name the response it refers to without
    remembering anything: memory stays flat however many pages are written.
    """

    def __init__(
        self,
        first: Path,
        max_size: int,
        info: dict[str, str],
        cdxj: bool,
        earlier: Callable[[Any], Any],
        files: WrittenAside,
    ) -> None:
        self.files = files
        self.names = warc_paths(first)
        self.cdxj = cdxj
        self.index: CdxjIndex | None = None
        self.max_size = max_size
        self.info = info
        self.earlier = earlier
        self.namespace = uuid.uuid4()
        self.report = WarcExport()
        self.stream: IO[bytes] | None = None
        self.writer: Any = None

    def _id(self, raw_page_id: int, kind: str) -> str:
        return f"<urn:uuid:{uuid.uuid5(self.namespace, f'{raw_page_id}/{kind}')}>"

    def _open(self) -> None:
        from warcio.warcwriter import WARCWriter

        path = next(self.names)
        self.stream = self.files.aside(path).open("wb")
        self.report.files.append(path)
        self.index = CdxjIndex(path) if self.cdxj else None
        self.writer = WARCWriter(self.stream, gzip=True, warc_version="1.1")
        info = self.writer.create_warcinfo_record(path.name, self.info)
        self.writer.write_record(info)

    def _roll(self) -> None:
        if self.stream is None:
            self._open()
        elif self.stream.tell() >= self.max_size:
            self._close_file()
            self._open()

    def _close_file(self) -> None:
        assert self.stream is not None
        self.stream.close()
        if self.index is not None:
            self.index.write(self.files.aside(self.index.path))
            self.report.indexes.append(self.index.path)

    def close(self) -> None:
        if self.stream is None:
            self._open()  # an empty archive still gives a valid file with its warcinfo
        self._close_file()

    def _write(self, record: Any) -> None:
        """Write *record*; index it when it holds (or points to) a capture."""
        assert self.stream is not None
        offset = self.stream.tell()
        self.writer.write_record(record)
        if self.index is not None and record.rec_type in ("response", "revisit", "resource"):
            self.index.add(record, offset, self.stream.tell() - offset)

    def page(self, row: Any, body: bytes) -> None:
        """Write one raw page (request + response, revisit, or resource)."""
        self._roll()
        date = _warc_date(row.fetched_at)
        extra = {"WARC-Date": date}
        if row.requested_url != row.final_url:
            extra[REQUESTED_URL_HEADER] = row.requested_url
        if row.status is None:
            self._resource(row, body, extra)
            return
        from warcio.statusandheaders import StatusAndHeaders

        http_headers = StatusAndHeaders(
            f"{row.status} {_reason(row.status)}",
            served_headers(row.headers, len(body)),
            protocol="HTTP/1.1",
        )
        extra["WARC-Record-ID"] = self._id(row.id, "response")
        original = self.earlier(row)
        if original is None:
            response = self.writer.create_warc_record(
                row.final_url,
                "response",
                payload=BytesIO(body),
                length=len(body),
                http_headers=http_headers,
                warc_headers_dict=extra,
            )
            self.report.responses += 1
        else:
            response = self.writer.create_revisit_record(
                row.final_url,
                _payload_digest(body),  # what warcio wrote on the original response
                original.final_url,
                _warc_date(original.fetched_at),
                http_headers,
                warc_headers_dict=extra,
            )
            response.rec_headers.add_header("WARC-Refers-To", self._id(original.id, "response"))
            self.report.revisits += 1
        self._request(row, extra["WARC-Record-ID"], date)
        self._write(response)

    def robots(self, host: Any) -> None:
        """Write the robots.txt answer a crawl kept for *host* (a ``hosts`` row)."""
        from warcio.statusandheaders import StatusAndHeaders

        self._roll()
        body = (host.robots_txt or "").encode("utf-8")
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        headers.append(("Content-Length", str(len(body))))
        status = int(host.robots_status)
        record = self.writer.create_warc_record(
            f"{host.host}/robots.txt",
            "response",
            payload=BytesIO(body),
            length=len(body),
            http_headers=StatusAndHeaders(f"{status} {_reason(status)}", headers, "HTTP/1.1"),
            warc_headers_dict={"WARC-Date": _warc_date(host.robots_fetched_at)},
        )
        self._write(record)
        self.report.robots += 1

    def _request(self, row: Any, response_id: str, date: str) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        parts = urlsplit(row.final_url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # The headers as sent (httpx records Host too); none made up when none were kept.
        headers = [(name, value) for name, value in (row.request_headers or ())]
        request = self.writer.create_warc_record(
            row.final_url,
            "request",
            http_headers=StatusAndHeaders(f"GET {target} HTTP/1.1", headers, is_http_request=True),
            warc_headers_dict={
                "WARC-Date": date,
                "WARC-Record-ID": self._id(row.id, "request"),
                "WARC-Concurrent-To": response_id,
            },
        )
        self.writer.write_record(request)

    def _resource(self, row: Any, body: bytes, extra: dict[str, str]) -> None:
        content_type = next(
            (value for name, value in row.headers if name.lower() == "content-type"),
            "text/html; charset=utf-8",
        )
        record = self.writer.create_warc_record(
            row.final_url,
            "resource",
            payload=BytesIO(body),
            length=len(body),
            warc_content_type=content_type,
            warc_headers_dict=extra,
        )
        self._write(record)
        self.report.resources += 1


def _payload_digest(body: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def _earlier_capture(conn: Connection, pages: Select[Any] | None) -> Callable[[Any], Any]:
    """Return a lookup: the first exported HTTP capture with the same body as a row,
    if it comes before that row (then the row is written as a revisit of it)."""
    import sqlalchemy as sa

    from scraper.schema.tables import raw_pages

    def earlier(row: Any) -> Any:
        statement = (
            sa.select(raw_pages.c.id, raw_pages.c.final_url, raw_pages.c.fetched_at)
            .where(
                raw_pages.c.body_sha256 == row.body_sha256,
                raw_pages.c.id < row.id,
                raw_pages.c.status.is_not(None),
            )
            .order_by(raw_pages.c.id)
            .limit(1)
        )
        if pages is not None:
            statement = statement.where(raw_pages.c.id.in_(pages))
        return conn.execute(statement).first()

    return earlier


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def export_warc(
    engine: Engine,
    out: Path,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    pages: Select[Any] | None = None,
    description: str | None = None,
    cdxj: bool = False,
) -> WarcExport:
    """Write the stored raw pages (all, or those whose ids *pages* selects) as WARC files.

    With *cdxj*, each WARC file gets a sorted CDXJ index beside it (``<name>.cdxj``).

    Returns what was written. Raises StoreError when a body cannot be read back
    from the database, OSError when a file cannot be written.
    """
    import sqlalchemy as sa

    from scraper.schema.tables import raw_pages
    from scraper.store.bodies import load_body

    info = {
        "software": f"review-archiver/{__version__}",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": description or "raw pages of a review-archiver database",
    }
    statement = sa.select(raw_pages).order_by(raw_pages.c.id)
    if pages is not None:
        statement = statement.where(raw_pages.c.id.in_(pages))
    with WrittenAside() as files, engine.connect() as conn:
        writer = _Writer(out, max_size, info, cdxj, _earlier_capture(conn, pages), files)
        try:
            hosts: set[str] = set()
            rows_at_a_time = conn.execution_options(yield_per=_SETTINGS.warc_rows_per_fetch)
            result = rows_at_a_time.execute(statement)
            for rows in result.partitions():
                for row in rows:
                    writer.page(row, load_body(conn, row.body_sha256))
                    hosts.add(_origin(row.final_url))
            for host in _robots_answers(conn, None if pages is None else hosts):
                writer.robots(host)
        finally:
            writer.close()
    return writer.report


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _robots_answers(conn: Connection, hosts: set[str] | None) -> list[Any]:
    """The robots.txt answers kept in ``hosts`` (of *hosts* only, when given)."""
    import sqlalchemy as sa

    from scraper.schema.tables import hosts as table

    statement = (
        sa.select(table.c.host, table.c.robots_txt)
        .add_columns(table.c.robots_status, table.c.robots_fetched_at)
        .where(table.c.robots_status.is_not(None), table.c.robots_fetched_at.is_not(None))
        .order_by(table.c.host)
    )
    return [row for row in conn.execute(statement) if hosts is None or row.host in hosts]
