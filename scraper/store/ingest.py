"""Ingesting one fetched page: raw body + raw page row + parsed records, in one transaction.

The page is parsed before the transaction opens (parsing is pure and the slowest
step, so the write lock is held only for the writes). A page the parser cannot
read is still stored raw, with its error on the raw page row, so nothing fetched
is ever lost and ``reviews reparse`` can read it again once the parser improves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from scraper.config import StoreSettings
from scraper.errors import ParseError, ScraperError, StoreError
from scraper.records import FetchedPage, PageKind, PageResult
from scraper.schema.tables import fetch_errors, raw_pages
from scraper.store.bodies import body_sha256, store_body
from scraper.store.driverexec import inserted_ids
from scraper.store.engine import store_error, write_transaction
from scraper.store.parsing import PARSER_VERSION, ParseOutcome, outcome_digest, parse_fetched
from scraper.store.upsert import RecordCounts, store_records

__all__ = [
    "PAGE_REFUSALS",
    "PARSER_VERSION",
    "IngestReport",
    "ParseOutcome",
    "ingest_or_refusal",
    "ingest_page",
    "page_refused",
    "parse_fetched",
    "record_fetch_error",
    "refused_for_its_values",
    "same_capture",
    "write_page",
]

#: SQLSTATEs worth running the page's transaction again for (PostgreSQL).
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure
_ATTEMPTS = StoreSettings().ingest_attempts
_RETRY_WAIT = StoreSettings().ingest_retry_wait


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What ``ingest_page`` stored for one page.

    ``error`` is the page's ParseError (the raw page is stored all the same) and
    ``result`` what the parser read, None when it could not read the page at all.
    """

    raw_page_id: int
    page_kind: PageKind | None
    reviews_new: int
    reviews_updated: int
    reviews_unchanged: int
    error: ParseError | None
    result: PageResult | None
    #: The same capture (body, URL, time) was stored before: nothing was written.
    already_stored: bool = False


def ingest_page(
    engine: Engine,
    page: FetchedPage,
    *,
    source: str = "http",
    crawl_run_id: int | None = None,
    parsed: ParseOutcome | None = None,
) -> IngestReport:
    """Store *page* (body, raw page row, records, observations) in one transaction.

    *parsed* skips parsing when the caller already parsed the body. Returns an
    IngestReport; a page that fails to parse is stored raw and its ParseError is in
    the report (with ``raw_page_id`` set), not raised. Raises StoreError naming the
    database and URL when the database refuses the page (nothing of it is stored).
    """
    outcome = parsed or parse_fetched(page.body, page.final_url, page.charset)
    digest = body_sha256(page.body)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with write_transaction(engine) as connection:
                report = write_page(
                    connection,
                    page,
                    outcome,
                    digest=digest,
                    source=source,
                    crawl_run_id=crawl_run_id,
                )
            break
        except DBAPIError as error:
            if attempt < _ATTEMPTS and _retryable(error):
                time.sleep(_RETRY_WAIT * attempt)
                continue
            raise page_refused(engine, page, error) from error
    if outcome.error is not None:
        outcome.error.raw_page_id = report.raw_page_id
    return report


def write_page(
    connection: Connection,
    page: FetchedPage,
    outcome: ParseOutcome,
    *,
    digest: str,
    source: str,
    crawl_run_id: int | None,
    records_digest: str | None = None,
) -> IngestReport:
    """Store *page* (its body's sha256 is *digest*) and its parse *outcome* inside the
    caller's write transaction, unless this capture is stored already; return the report.
    *records_digest* is ``outcome_digest(outcome)`` when the caller has it already.

    Database errors propagate as SQLAlchemy errors (the caller rolls back).
    """
    stored = same_capture(connection, page, digest=digest)
    if stored is not None:  # a re-run of an import: this capture is in the archive
        counts = RecordCounts(unchanged=len(outcome.result.reviews) if outcome.result else 0)
        return _report(stored, outcome, counts, already_stored=True)
    raw_page_id = _insert_raw_page(
        connection, page, digest, source, crawl_run_id, outcome, records_digest
    )
    records = outcome.result.reviews if outcome.result is not None else ()
    counts = store_records(
        connection, raw_page_id=raw_page_id, observed_at=page.fetched_at, records=records
    )
    return _report(raw_page_id, outcome, counts, already_stored=False)


def ingest_or_refusal(
    engine: Engine,
    page: FetchedPage,
    *,
    source: str,
    parsed: ParseOutcome | None = None,
) -> IngestReport | StoreError:
    """``ingest_page``, but a page the database refuses for its own values comes back
    as its StoreError (nothing of it stored) for the caller to name and go on; a
    database that fails for its own state (locked, full, gone) still raises."""
    try:
        return ingest_page(engine, page, source=source, parsed=parsed)
    except StoreError as refusal:
        if not refused_for_its_values(refusal):
            raise
        return refusal


#: The driver errors that refuse one page's rows for values of their own (a constraint,
#: a value out of range or ill-formed), not the database for its own state (locked,
#: full, read-only, gone): an import or a reparse goes on after the first, never after
#: the second.
PAGE_REFUSALS = (IntegrityError, DataError)


def refused_for_its_values(error: StoreError) -> bool:
    """Whether *error* (``page_refused``'s) refused the page for its own values
    (``PAGE_REFUSALS``)."""
    return isinstance(error.__cause__, PAGE_REFUSALS)


def page_refused(engine: Engine, page: FetchedPage, error: DBAPIError) -> StoreError:
    """The StoreError for *page*, which the database of *engine* refused with *error*
    (its cause, also when it is not raised: ``refused_for_its_values`` reads it)."""
    failure = store_error(engine, error)
    failure.url = page.final_url
    failure.__cause__ = error
    return failure


def _report(
    raw_page_id: int, outcome: ParseOutcome, counts: RecordCounts, *, already_stored: bool
) -> IngestReport:
    return IngestReport(
        raw_page_id=raw_page_id,
        page_kind=outcome.kind,
        reviews_new=counts.new,
        reviews_updated=counts.updated,
        reviews_unchanged=counts.unchanged,
        error=outcome.error,
        result=outcome.result,
        already_stored=already_stored,
    )


#: Namespace of the capture locks among PostgreSQL advisory locks (two-key form, so
#: they never meet the one-key username and frontier locks).
_CAPTURE_LOCK_SPACE = 7341
_CAPTURE_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")


def same_capture(
    connection: Connection, page: FetchedPage, *, digest: str | None = None
) -> int | None:
    """Return the id of a raw page holding this very capture (same body sha256, final
    URL and capture time), or None; call it inside the page's write transaction.

    A capture is one raw page however many times it is imported: on SQLite the
    write lock (BEGIN IMMEDIATE) serializes the check and the insert; on PostgreSQL a
    transaction-long advisory lock on the capture's identity does, so two writers
    importing the same file at once store it once.
    """
    digest = digest or body_sha256(page.body)
    if connection.dialect.name == "postgresql":
        key = f"{digest} {page.final_url} {page.fetched_at.isoformat()}"
        connection.execute(_CAPTURE_LOCK, {"space": _CAPTURE_LOCK_SPACE, "key": key})
    found = connection.execute(
        _SAME_CAPTURE, {"sha": digest, "url": page.final_url, "at": page.fetched_at}
    ).scalar()
    return int(found) if found is not None else None


def _unindexed(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """*column* as an expression no index serves (``coalesce(c, c)``, the same value)."""
    return sa.func.coalesce(column, column)


#: Found through the body's sha256, nearly unique. SQLite, which keeps no statistics,
#: took the index on ``fetched_at`` or ``final_url`` instead: an import that gives
#: every file one ``--fetched-at`` then read every page stored at that time, for
#: each page (a cost growing with the archive). The other two are kept from any index.
_SAME_CAPTURE = (
    sa.select(raw_pages.c.id)
    .where(
        raw_pages.c.body_sha256 == sa.bindparam("sha"),
        _unindexed(raw_pages.c.final_url) == sa.bindparam("url"),
        _unindexed(raw_pages.c.fetched_at) == sa.bindparam("at", type_=raw_pages.c.fetched_at.type),
    )
    .limit(1)
)


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRY_SQLSTATES


def _insert_raw_page(
    connection: Connection,
    page: FetchedPage,
    digest: str,
    source: str,
    crawl_run_id: int | None,
    outcome: ParseOutcome,
    records_digest: str | None,
) -> int:
    stored = store_body(connection, page.body, url=page.final_url, digest=digest)
    kind = outcome.kind
    row = {
        "requested_url": page.requested_url,
        "final_url": page.final_url,
        "status": page.status,
        "headers": [list(pair) for pair in page.headers],
        "request_headers": [list(pair) for pair in page.request_headers] or None,
        "fetched_at": page.fetched_at,
        "body_sha256": stored.sha256,
        "source": source,
        "crawl_run_id": crawl_run_id,
        "page_kind": kind.value if kind is not None else None,
        "review_count": len(outcome.result.reviews) if outcome.result is not None else 0,
        "parse_error": outcome.error_text,
        "parser_version": PARSER_VERSION,
        "records_sha256": records_digest or outcome_digest(outcome),
        "next_url": outcome.next_url,
    }
    (raw_page_id,) = inserted_ids(connection, _INSERT_RAW_PAGE, [row])
    return raw_page_id


_INSERT_RAW_PAGE = sa.insert(raw_pages)


def record_fetch_error(
    engine: Engine,
    url: str,
    error: ScraperError,
    *,
    crawl_run_id: int | None = None,
    raw_page_id: int | None = None,
) -> None:
    """Store one row in ``fetch_errors`` for *error* at *url*.

    Raises StoreError naming the database when it refuses the row.
    """
    row = {
        "url": url,
        "occurred_at": datetime.now(UTC),
        "error": type(error).__name__,
        "message": error.message,
        "status": getattr(error, "status", None),
        "raw_page_id": raw_page_id if raw_page_id is not None else error.raw_page_id,
        "crawl_run_id": crawl_run_id,
    }
    try:
        with write_transaction(engine) as connection:
            connection.execute(sa.insert(fetch_errors), row)
    except DBAPIError as failure:
        raise store_error(engine, failure) from failure
