"""Import review pages from WARC files: ours, or any other tool's (wget, browsertrix).

Every ``response`` (and ``resource``) record whose URL looks like a review page
and whose payload is HTML goes through the archive's normal ingest, as if it
had just been fetched at the record's WARC-Date: the raw page is kept, parsed,
and the history updated. ``revisit`` records get their payload from the record
they refer to (in the same run's files). A page already stored with the same
final URL, time and body is skipped, so importing a file twice adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scraper.errors import UsageError
from scraper.export.warc import ORIG_PREFIX, REQUESTED_URL_HEADER
from scraper.records import FetchedPage

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["WarcImport", "import_warcs", "is_review_url", "iter_warc_pages"]

# The MAL review pages (shared/mal-pages.md): an entry's reviews, a permalink,
# the recent reviews, a user's reviews.
_REVIEW_PATH = re.compile(
    r"^/(?:(?:anime|manga)/\d+(?:/[^/]*)?/reviews|reviews\.php|profile/[^/]+/reviews)/?$"
)
_RESTORED = {f"{ORIG_PREFIX}{name}".lower() for name in ("Content-Encoding", "Transfer-Encoding")}


def is_review_url(url: str) -> bool:
    """Return True when *url*'s path is one of the MAL review pages."""
    return bool(_REVIEW_PATH.match(urlsplit(url).path))


@dataclass(slots=True)
class WarcImport:
    """What an import did: pages stored, skipped, and the problems met (named)."""

    pages: int = 0
    already_stored: int = 0
    not_review_pages: int = 0
    reviews: int = 0
    errors: list[str] = field(default_factory=list)


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


#: Where each payload was seen: digest -> (file, offset of its record).
PayloadIndex = dict[str, tuple[Path, int]]


def iter_warc_pages(
    path: Path, report: WarcImport, seen: PayloadIndex | None = None
) -> Iterator[FetchedPage]:
    """Yield the review pages held in the WARC file at *path*, in file order.

    Records that are not review pages are counted in *report*; a revisit whose
    original is neither in this file nor in *seen* (earlier files of the same
    import) is named in ``report.errors``. Raises UsageError when *path* cannot
    be opened or is not a WARC file.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    seen = {} if seen is None else seen
    try:
        _check_warc(path)
        with path.open("rb") as stream:
            records = ArchiveIterator(stream)
            requests = _Requests()
            for record in records:
                if record.rec_type == "request":
                    requests.add(record)
                    continue
                page = _page(record, seen, report, path, requests)
                if page is not None:
                    if record.rec_type != "revisit":
                        # Asked only now: warcio reads the record to its end to answer.
                        digest = record.rec_headers.get_header("WARC-Payload-Digest")
                        seen.setdefault(digest or "", (path, records.get_record_offset()))
                    yield page
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error
    except ArchiveLoadFailed as error:
        raise UsageError(f"{path}: not a WARC file ({error})") from error


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


def _payload_at(where: tuple[Path, int]) -> bytes:
    """Read the payload of the record at *where* again (revisits: constant memory)."""
    from warcio.archiveiterator import ArchiveIterator

    with where[0].open("rb") as stream:
        stream.seek(where[1])
        record = next(iter(ArchiveIterator(stream)))
        return bytes(record.content_stream().read())


class _Requests:
    """Request headers waiting for their response, linked either way by
    WARC-Concurrent-To (ours point at the response, wget's response at the request)."""

    LIMIT = 1000  # unanswered requests kept at most (memory stays bounded)

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


def _page(
    record: Any, seen: PayloadIndex, report: WarcImport, path: Path, requests: _Requests
) -> FetchedPage | None:
    if record.rec_type not in ("response", "resource", "revisit"):
        return None
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    headers = _stored_headers(record.http_headers) if record.http_headers else ()
    if not is_review_url(url) or not _is_html(record, headers):
        report.not_review_pages += 1
        return None
    digest = record.rec_headers.get_header("WARC-Payload-Digest")
    if record.rec_type == "revisit":
        original = seen.get(digest or "")
        if original is None:
            report.errors.append(
                f"{path}: revisit of {url}: the record it refers to was not imported"
            )
            return None
        body = _payload_at(original)
    else:
        body = record.content_stream().read()
    status = None if record.rec_type == "resource" else record.http_headers.get_statuscode()
    return FetchedPage(
        requested_url=record.rec_headers.get_header(REQUESTED_URL_HEADER) or url,
        final_url=url,
        status=int(status) if status else None,
        headers=headers,
        body=body,
        fetched_at=_fetched_at(record),
        request_headers=requests.take(record),
    )


def _already_stored(engine: Engine, page: FetchedPage) -> bool:
    import sqlalchemy as sa

    from scraper.schema.tables import raw_pages
    from scraper.store.bodies import body_sha256

    with engine.connect() as conn:
        found = conn.execute(
            sa.select(raw_pages.c.id).where(
                raw_pages.c.final_url == page.final_url,
                raw_pages.c.fetched_at == page.fetched_at,
                raw_pages.c.body_sha256 == body_sha256(page.body),
            )
        ).first()
    return found is not None


def import_warcs(engine: Engine, paths: Iterable[Path]) -> WarcImport:
    """Ingest the review pages of every WARC file in *paths* (``source="warc"``).

    Returns the counts; a page that fails to parse is still stored (by ingest)
    and named in ``errors``, and the other pages and files go on. Raises
    StoreError when the database fails.
    """
    from scraper.store.ingest import ingest_page

    report = WarcImport()
    seen: PayloadIndex = {}
    for path in paths:
        try:
            for page in iter_warc_pages(path, report, seen):
                if _already_stored(engine, page):
                    report.already_stored += 1
                    continue
                outcome = ingest_page(engine, page, source="warc")
                report.pages += 1
                if outcome.result is not None:
                    report.reviews += len(outcome.result.reviews)
                if outcome.error is not None:  # stored raw all the same
                    report.errors.append(f"{page.final_url}: {outcome.error.message}")
        except UsageError as error:
            report.errors.append(str(error))
    return report
