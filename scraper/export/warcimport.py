"""Import review pages from WARC files: ours, or any other tool's (wget, browsertrix).

Every record is framed and checked first (``scraper.export.warcframes``): a
truncated or damaged record is named (file, offset, record id) and skipped, and
the rest of the file is read. Of the whole records, every ``response`` (and
``resource``) that answered 200 with HTML is parsed, and those the site parsers
read as review pages go through the archive's normal ingest, as if just fetched
at the record's WARC-Date: the raw page is kept, parsed, and the history
updated. Everything else (other statuses, redirects, robots.txt, images, pages
that are not reviews) is counted as skipped, by reason, and not stored.
``revisit`` records get their payload from the record they refer to (in the same
run's files). A capture already stored is one raw page still, so importing a file
twice adds nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scraper.config import ExportSettings
from scraper.errors import StoreError, UsageError
from scraper.export.warc import ORIG_PREFIX, REQUESTED_URL_HEADER
from scraper.export.warcframes import DamagedRecord, WarcRecord, iter_records, record_at
from scraper.records import FetchedPage, PageKind

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["SKIP_REASONS", "WarcImport", "import_warcs", "iter_warc_pages"]

_RESTORED = {f"{ORIG_PREFIX}{name}".lower() for name in ("Content-Encoding", "Transfer-Encoding")}

#: Why a response was not imported, as the summary names it.
SKIP_REASONS = (
    "robots.txt",
    "redirect",
    "error status",
    "not HTML",
    "too large",
    "not a review page",
    "blocked page",
)


@dataclass(slots=True)
class WarcImport:
    """What an import did: pages stored, responses skipped by reason, and problems.

    ``damaged`` names each record refused (file, offset, record id, why);
    ``errors`` the pages stored raw that did not parse, and files not read.
    """

    pages: int = 0
    already_stored: int = 0
    reviews: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    damaged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether anything was refused or failed (the CLI's exit code 3)."""
        return bool(self.damaged or self.errors)


def _stored_headers(http_headers: Any) -> tuple[tuple[str, str], ...]:
    """Undo what our WARC export did to the headers (see ``scraper.export.warc``)."""
    pairs = [(str(name), str(value)) for name, value in http_headers.headers]
    originals = {name.lower() for name, _ in pairs if name.lower().startswith(ORIG_PREFIX.lower())}
    result = []
    for name, value in pairs:
        lowered = name.lower()
        if lowered in _RESTORED or lowered == f"{ORIG_PREFIX}content-length".lower():
            result.append((name[len(ORIG_PREFIX) :], value))
        elif lowered == "content-length" and f"{ORIG_PREFIX}content-length".lower() in originals:
            continue  # the length we made true to the decoded body
        else:
            result.append((name, value))
    return tuple(result)


def _fetched_at(record: Any) -> datetime:
    value = record.rec_headers.get_header("WARC-Date") or ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_html(record: Any, headers: tuple[tuple[str, str], ...]) -> bool:
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    if record.rec_type == "resource":
        content_type = record.rec_headers.get_header("Content-Type")
    return content_type is None or "html" in content_type.lower()


#: Where each payload was seen: digest -> (file, offset, index of its record).
PayloadIndex = dict[str, tuple[Path, int, int]]


def _warcio_record(record: WarcRecord) -> Any:
    """The checked *record* read by warcio (HTTP headers, decoded content)."""
    from warcio.archiveiterator import ArchiveIterator

    return next(iter(ArchiveIterator(BytesIO(record.data))))


def iter_warc_pages(
    path: Path, report: WarcImport, seen: PayloadIndex | None = None
) -> Iterator[FetchedPage]:
    """Yield the 200 HTML responses held in the WARC file at *path*, in file order.

    Damaged records are named in ``report.damaged`` and skipped; other responses
    are counted in ``report.skipped`` by reason. A revisit whose original is
    neither in this file nor in *seen* (earlier files of the same import) is named
    in ``report.errors``. Raises UsageError when *path* cannot be opened or is not
    a WARC file.
    """
    seen = {} if seen is None else seen
    try:
        _check_warc(path)
        requests = _Requests()
        for framed in iter_records(path):
            if isinstance(framed, DamagedRecord):
                report.damaged.append(
                    f"{path}: damaged record at offset {framed.offset} "
                    f"({framed.record_id or 'no record id'}): {framed.reason}; skipped"
                )
                continue
            kind = framed.header("WARC-Type")
            if kind not in ("request", "response", "resource", "revisit"):
                continue
            if framed.block is None:
                report.skipped["too large"] += 1
                continue
            try:
                record = _warcio_record(framed)
                if kind == "request":
                    requests.add(record)
                    continue
                page = _page(record, seen, report, path, requests)
            except Exception as error:  # warcio's failures on odd input share no class
                report.damaged.append(
                    f"{path}: unreadable record at offset {framed.offset} "
                    f"({framed.header('WARC-Record-ID') or 'no record id'}): "
                    f"{type(error).__name__}: {error}; skipped"
                )
                continue
            digest = framed.header("WARC-Payload-Digest")
            if kind != "revisit" and digest:
                seen.setdefault(digest, (path, framed.offset, framed.index))
            if page is not None:
                yield page
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error


def _check_warc(path: Path) -> None:
    """Raise UsageError unless *path* starts like a WARC file (plain or gzipped).

    warcio reads nearly anything as records of some kind; a text file would
    otherwise pass as a WARC with odd records in it.
    """
    import gzip

    with path.open("rb") as stream:
        start = stream.read(2)
        stream.seek(0)
        try:
            head = gzip.GzipFile(fileobj=stream).read(5) if start == b"\x1f\x8b" else stream.read(5)
        except (OSError, EOFError):
            head = b""
    if head != b"WARC/":
        raise UsageError(f"{path}: not a WARC file (it does not start with a WARC record)")


def _payload_at(where: tuple[Path, int, int]) -> bytes | None:
    """Read the payload of the record at *where* again (revisits: constant memory)."""
    framed = record_at(*where)
    if framed is None or framed.block is None:
        return None
    return bytes(_warcio_record(framed).content_stream().read())


class _Requests:
    """Request headers waiting for their response, linked either way by
    WARC-Concurrent-To (ours point at the response, wget's response at the request)."""

    LIMIT = ExportSettings().warc_pending_requests  # memory stays bounded

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[tuple[str, str], ...]] = {}

    def add(self, record: Any) -> None:
        if record.http_headers is None:
            return
        headers = tuple((str(k), str(v)) for k, v in record.http_headers.headers)
        ids = [record.rec_headers.get_header("WARC-Record-ID")]
        ids += [v for k, v in record.rec_headers.headers if k.lower() == "warc-concurrent-to"]
        for key in ids:
            if key:
                self.by_id[key] = headers
        while len(self.by_id) > self.LIMIT:
            self.by_id.pop(next(iter(self.by_id)))

    def take(self, record: Any) -> tuple[tuple[str, str], ...]:
        """Return the request headers belonging to response *record* (or none)."""
        keys = [record.rec_headers.get_header("WARC-Record-ID")]
        keys += [v for k, v in record.rec_headers.headers if k.lower() == "warc-concurrent-to"]
        for key in keys:
            if key and key in self.by_id:
                return self.by_id.pop(key)
        return ()


def _skip_reason(record: Any, url: str, headers: tuple[tuple[str, str], ...]) -> str | None:
    """Why this response is not a page to parse, or None when it is one."""
    if urlsplit(url).path == "/robots.txt":
        return "robots.txt"
    # A revisit may carry no HTTP headers at all: its original's status stands.
    if record.rec_type == "response" or (
        record.rec_type == "revisit" and record.http_headers is not None
    ):
        status = record.http_headers.get_statuscode() if record.http_headers else None
        if not status or not status.isdigit():
            return "error status"
        if 300 <= int(status) < 400:
            return "redirect"
        if int(status) != 200:
            return "error status"
    return None if _is_html(record, headers) else "not HTML"


def _page(
    record: Any, seen: PayloadIndex, report: WarcImport, path: Path, requests: _Requests
) -> FetchedPage | None:
    # WARC/1.0 writers (wget among them) may wrap the URI in angle brackets.
    url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    headers = _stored_headers(record.http_headers) if record.http_headers else ()
    reason = _skip_reason(record, url, headers)
    if reason is not None:
        report.skipped[reason] += 1
        requests.take(record)
        return None
    digest = record.rec_headers.get_header("WARC-Payload-Digest")
    if record.rec_type == "revisit":
        original = seen.get(digest) if digest else None
        body = _payload_at(original) if original is not None else None
        if body is None:
            report.errors.append(
                f"{path}: revisit of {url}: the record it refers to was not imported"
            )
            return None
    else:
        body = record.content_stream().read()
    status = None
    if record.rec_type != "resource" and record.http_headers is not None:
        status = record.http_headers.get_statuscode()
    return FetchedPage(
        requested_url=record.rec_headers.get_header(REQUESTED_URL_HEADER) or url,
        final_url=url,
        status=int(status) if status else None,
        headers=headers,
        body=body,
        fetched_at=_fetched_at(record),
        request_headers=requests.take(record),
    )


def import_warcs(engine: Engine, paths: Iterable[Path]) -> WarcImport:
    """Ingest the review pages of every WARC file in *paths* (``source="warc"``).

    Each 200 HTML response is parsed; what the site parsers do not read as a review
    page (or read as a block page) is counted as skipped and not stored. Returns the
    counts; a review page that fails to parse is still stored (by ingest) and named
    in ``errors``, and the other pages and files go on; so is a page the database
    refuses for its own values (nothing of it stored). Raises StoreError when the
    database fails.
    """
    from scraper.store.ingest import ingest_or_refusal, parse_fetched

    report = WarcImport()
    seen: PayloadIndex = {}
    for path in paths:
        try:
            for page in iter_warc_pages(path, report, seen):
                outcome = parse_fetched(page.body, page.final_url, page.charset)
                if outcome.kind is PageKind.NOT_REVIEW_PAGE:
                    report.skipped["not a review page"] += 1
                    continue
                if outcome.kind is PageKind.BLOCKED:
                    report.skipped["blocked page"] += 1
                    continue
                stored = ingest_or_refusal(engine, page, source="warc", parsed=outcome)
                if isinstance(stored, StoreError):  # refused for its values
                    report.errors.append(f"{page.final_url}: not stored: {stored.message}")
                    continue
                if stored.already_stored:
                    report.already_stored += 1
                    continue
                report.pages += 1
                if stored.result is not None:
                    report.reviews += len(stored.result.reviews)
                if stored.error is not None:  # stored raw all the same
                    report.errors.append(f"{page.final_url}: {stored.error.message}")
        except UsageError as error:
            report.errors.append(str(error))
    return report
