"""Importing saved pages from disk: the same store path as a fetch, with ``source="file"``.

A saved page has no HTTP exchange behind it: its URL comes from ``--url`` or from
the page's own canonical link (a ``file://`` URL when it has none), and its
capture time from ``--fetched-at`` or else the file's modification time, which is
when the browser or tool saved it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from scraper.errors import ScraperError, UsageError
from scraper.records import FetchedPage
from scraper.store.ingest import IngestReport, ingest_page, parse_fetched

__all__ = ["Imported", "check_page_url", "expand_paths", "import_paths", "parse_fetched_at"]


@dataclass(frozen=True, slots=True)
class Imported:
    """One file handled by ``import_paths``: its report, or why it was not stored.

    ``error`` is the page's ParseError when the page was stored raw only, or the
    reason nothing was stored (an unreadable file); ``report`` is None then.
    """

    path: Path
    url: str | None
    report: IngestReport | None
    error: ScraperError | None


def parse_fetched_at(value: str) -> datetime:
    """Return *value* (ISO 8601; no zone means UTC) as an aware UTC datetime.

    Raises UsageError naming ``--fetched-at`` and the value when it is not a time.
    """
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(
            f"--fetched-at: {value!r} is not an ISO 8601 time (e.g. 2022-10-01T12:00:00Z)"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_page_url(url: str) -> str:
    """Return *url* when it is an absolute http(s) URL; raise UsageError naming it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise UsageError(f"--url: {url!r} is not an absolute http(s) URL")
    return url


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Return the files to import: files as given, folders as their ``*.html`` files.

    Raises UsageError naming the first path that does not exist.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.html") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{item}: no such file or folder")
    return found


def import_paths(
    engine: Engine,
    files: Iterable[Path],
    *,
    url: str | None = None,
    fetched_at: datetime | None = None,
) -> Iterator[Imported]:
    """Store each file as a raw page with its records; yield one Imported per file.

    A file that cannot be read is yielded with its error and the next one runs.
    Raises StoreError when the database refuses a page.
    """
    for path in files:
        try:
            body = path.read_bytes()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError as error:
            reason = error.strerror or str(error)
            yield Imported(path, url, None, UsageError(f"{path}: cannot read: {reason}"))
            continue
        yield _import_one(engine, path, body, url, fetched_at or modified)


def _import_one(
    engine: Engine, path: Path, body: bytes, url: str | None, fetched_at: datetime
) -> Imported:
    outcome = parse_fetched(body, url, None)
    page_url = url or (outcome.result.url if outcome.result is not None else None)
    page_url = page_url or path.resolve().as_uri()
    if outcome.error is not None:
        outcome.error.url = outcome.error.url or page_url
    page = FetchedPage(
        requested_url=page_url,
        final_url=page_url,
        status=None,
        headers=(),
        body=body,
        fetched_at=fetched_at,
    )
    report = ingest_page(engine, page, source="file", parsed=outcome)
    return Imported(path, page_url, report, report.error)
