"""Parsing a page for the store, in this process or a worker process.

Kept apart from the store's database code: a parse worker imports this module
(and the site parsers), not SQLAlchemy, so it starts in a fraction of the time.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scraper import __version__
from scraper.errors import ParseError
from scraper.records import FetchedPage, PageKind, PageResult
from scraper.store.codec import body_sha256
from scraper.store.saved import SavedPage, read_saved

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PARSER_VERSION",
    "ParseOutcome",
    "ParsedFile",
    "Reparsed",
    "StoredPage",
    "outcome_digest",
    "parse_fetched",
    "parse_file",
    "reparse_body",
    "stored_page",
]

#: Stored on each raw page, so a reparse can tell which parser read it last.
PARSER_VERSION = __version__


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What the parser made of a page: a result, an error, or (for review pages) both."""

    result: PageResult | None
    error: ParseError | None

    @property
    def kind(self) -> PageKind | None:
        return self.result.kind if self.result is not None else None

    @property
    def next_url(self) -> str | None:
        return self.result.next_url if self.result is not None else None

    @property
    def error_text(self) -> str | None:
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error.message}"


#: Part of every digest: bump it when the store writes the same records differently
#: (``store_records``' rules), so that a reparse writes every page again.
RECORDS_FORMAT = "1"


def outcome_digest(outcome: ParseOutcome) -> str:
    """Return the hex sha256 of what storing *outcome* writes for its raw page: the
    page kind, the error, the next page's link, and every field of every review record.

    The records are pickled (a fixed protocol; 0.25 ms for a real page, ``repr`` took
    2 ms): equal pickles are equal records, so a page whose digest is unchanged
    stores the same rows again. A pickle that differs for equal records (another
    Python, say) only costs a write.
    """
    records = outcome.result.reviews if outcome.result is not None else ()
    kind = outcome.kind.value if outcome.kind is not None else None
    read = (RECORDS_FORMAT, kind, outcome.error_text, outcome.next_url, records)
    data = pickle.dumps(read, protocol=5)
    return hashlib.sha256(data).hexdigest()


def parse_fetched(body: bytes, url: str | None, charset: str | None) -> ParseOutcome:
    """Parse a page body; return its outcome, never raising for a bad page (see
    ``judge_parse``)."""
    from scraper.sites import parse_page

    return judge_parse(lambda: parse_page(body, url, charset=charset), url)


def judge_parse(parse: Callable[[], PageResult], url: str | None) -> ParseOutcome:
    """Run *parse* (a page's parse, for *url*) and return its outcome, never raising
    for a bad page.

    A page that is not a review page comes back with its result and the error that
    says so; a parser bug (any exception) is reported as a ParseError naming it, so
    that the page is still stored and can be reparsed once the parser is fixed.
    """
    try:
        result = parse()
    except ParseError as error:
        error.url = error.url or url
        return ParseOutcome(None, error)
    except Exception as error:  # anything else must not lose the fetched page either
        return ParseOutcome(None, ParseError.parser_bug(error, url))
    try:
        result.raise_for_kind()
    except ParseError as error:
        error.url = error.url or url
        return ParseOutcome(result, error)
    return ParseOutcome(result, None)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file parsed (perhaps in a worker process): its time and what the parser read."""

    path: Path
    modified: datetime
    outcome: ParseOutcome | None
    read_error: str | None = None
    #: What the file says (its body is the page), the sha256 of the body, and
    #: ``outcome_digest`` of the outcome: worked out where it was parsed, so a parse
    #: worker spares the writing process the work, and what is stored is what was parsed.
    saved: SavedPage | None = None
    body_sha256: str | None = None
    records_sha256: str | None = None


def parse_file(job: tuple[Path, str | None]) -> ParsedFile:
    path, url = job
    try:
        saved = read_saved(path.read_bytes())
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as error:
        return ParsedFile(path, datetime.now(UTC), None, error.strerror or str(error))
    charset = _charset(saved.headers)
    outcome = parse_fetched(saved.body, url or saved.url, charset)
    digest = body_sha256(saved.body)
    return ParsedFile(path, modified, outcome, None, saved, digest, outcome_digest(outcome))


def _charset(headers: Sequence[tuple[str, str]]) -> str | None:
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    _, found, charset = content_type.partition("charset=")
    return charset.strip().strip('"').split(";")[0] or None if found else None


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A stored raw page to parse again: what the parser needs and what it said last."""

    id: int
    final_url: str
    fetched_at: datetime
    charset: str | None
    page_kind: str | None
    review_count: int | None
    parse_error: str | None


def stored_page(
    page_id: int,
    final_url: str,
    headers: Sequence[Sequence[str]] | None,
    fetched_at: datetime,
    page_kind: str | None,
    review_count: int | None,
    parse_error: str | None,
) -> StoredPage:
    """A raw page's row as a StoredPage (its charset read from its *headers*)."""
    pairs = tuple((str(name), str(value)) for name, value in headers or ())
    charset = FetchedPage("", "", None, pairs, b"", fetched_at).charset
    return StoredPage(
        id=int(page_id),
        final_url=str(final_url),
        fetched_at=fetched_at,
        charset=charset,
        page_kind=page_kind,
        review_count=review_count,
        parse_error=parse_error,
    )


@dataclass(frozen=True, slots=True)
class Reparsed:
    """One stored page parsed again: *outcome* is None when it stores what is stored
    already; *failure* says why a page could not be read (then nothing is written for it)."""

    page: StoredPage
    outcome: ParseOutcome | None
    digest: str
    outdated: bool  # read last by another parser version
    failure: str | None = None


def reparse_body(
    page: StoredPage, body: bytes, records_sha256: str | None, parser_version: str | None
) -> Reparsed:
    """Parse stored *page*'s *body* again and say whether it would store something new
    (its digest differs from *records_sha256*, what its last parse stored)."""
    outcome = parse_fetched(body, page.final_url, page.charset)
    digest = outcome_digest(outcome)
    same = digest == records_sha256
    return Reparsed(page, None if same else outcome, digest, parser_version != PARSER_VERSION)
