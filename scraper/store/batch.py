"""Writing a stream of pages (``reviews import``) several to a transaction on SQLite.

One transaction per page made SQLite commit, and FTS5 write a new segment of the
full-text index, for every page: about a fifth of a real page's store time, and the
segments of single pages are merged again and again as the archive grows. Here a
batch of pages shares one transaction (``StoreSettings.sqlite_batch_pages`` pages,
or as many as arrive in ``batch_seconds``), each page inside its own SAVEPOINT:

- a page the database refuses is rolled back alone; the pages before it in the batch
  are committed and reported, then its StoreError is raised (as ``ingest_page``
  raises it: the import stops there);
- a page is reported only once its batch is committed, so every page reported is
  stored; a crash loses the pages of the open batch, none of them reported, and a
  second run stores them (the capture check skips the ones committed before).

PostgreSQL keeps one transaction per page (``ingest_page``, whose retries of a
deadlock run one page's transaction again).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.records import FetchedPage
from scraper.store.bodies import body_sha256
from scraper.store.engine import write_transaction
from scraper.store.ingest import IngestReport, ingest_page, page_refused, write_page
from scraper.store.parsing import ParseOutcome, parse_fetched

__all__ = ["PageJob", "ingest_pages"]

_Key = TypeVar("_Key")


class PageJob(NamedTuple, Generic[_Key]):
    """One page to store, with *key* (the caller's) handed back beside its report.

    A job without a *page* stores nothing: it comes back with no report, in order.
    """

    key: _Key
    page: FetchedPage | None = None
    outcome: ParseOutcome | None = None
    #: The body's sha256 and ``outcome_digest`` of the outcome, when the caller has
    #: them already (a parse worker computed them).
    digest: str | None = None
    records_digest: str | None = None


def ingest_pages(
    engine: Engine,
    jobs: Iterable[PageJob[_Key]],
    *,
    source: str,
    settings: StoreSettings | None = None,
) -> Iterator[tuple[_Key, IngestReport | None]]:
    """Store the pages of *jobs* in order; yield (key, report) per job once it is committed.

    A job's report is None when it had no page. Raises StoreError naming the
    database and URL when the database refuses a page, after yielding every job
    before it (nothing of the refused page is stored).
    """
    settings = settings or StoreSettings()
    if engine.dialect.name != "sqlite" or settings.sqlite_batch_pages <= 1:
        for job in jobs:
            report = None
            if job.page is not None:
                report = ingest_page(engine, job.page, source=source, parsed=job.outcome)
            yield job.key, report
        return
    pending = iter(jobs)
    for job in pending:
        if job.page is None:  # nothing to write: no transaction for it
            yield job.key, None
            continue
        done, refused = _write_batch(engine, job, pending, source, settings)
        yield from done
        if refused is not None:
            raise refused


def _write_batch(
    engine: Engine,
    first: PageJob[_Key],
    pending: Iterator[PageJob[_Key]],
    source: str,
    settings: StoreSettings,
) -> tuple[list[tuple[_Key, IngestReport | None]], StoreError | None]:
    """Write *first* and the next jobs of *pending* in one transaction; return their
    reports (committed) and the error of a page the database refused, which ends the batch."""
    done: list[tuple[_Key, IngestReport | None]] = []
    refused: StoreError | None = None
    with write_transaction(engine) as connection:
        started = time.monotonic()
        job: PageJob[_Key] | None = first
        while job is not None:
            if job.page is not None:
                try:
                    done.append((job.key, _write_one(connection, job, job.page, source)))
                except DBAPIError as error:
                    refused = page_refused(engine, job.page, error)
                    _check_open(connection, refused)
                    break
                if len(done) >= settings.sqlite_batch_pages:
                    break
                if time.monotonic() - started >= settings.batch_seconds:
                    break
            else:
                done.append((job.key, None))
            job = next(pending, None)
    for _, report in done:
        if report is not None and report.error is not None:
            report.error.raw_page_id = report.raw_page_id
    return done, refused


def _write_one(
    connection: Connection, job: PageJob[_Key], page: FetchedPage, source: str
) -> IngestReport:
    outcome = job.outcome or parse_fetched(page.body, page.final_url, page.charset)
    digest = job.digest or body_sha256(page.body)
    with connection.begin_nested():  # SAVEPOINT: a refused page rolls back alone
        return write_page(
            connection,
            page,
            outcome,
            digest=digest,
            source=source,
            crawl_run_id=None,
            records_digest=job.records_digest if job.outcome is not None else None,
        )


def _check_open(connection: Connection, refused: StoreError) -> None:
    """Raise *refused* when SQLite ended the whole transaction with the page's error
    (a full disk, an I/O error): the batch's earlier pages are gone, none is reported."""
    raw = connection.connection.dbapi_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        raise refused
