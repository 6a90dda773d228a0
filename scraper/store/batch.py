"""Writing a stream of pages (``reviews import``) several to a transaction on SQLite.

FTS5 writes a new segment of the full-text index for every statement that adds to
it, so the insert trigger wrote one per page, and the segments are merged again and
again as the archive grows. Here a batch of pages shares one transaction
(``StoreSettings.sqlite_batch_pages`` pages, or as many as arrive in
``batch_seconds``) and its new reviews are indexed in one statement: the writer of
``reviews import --jobs 2`` went from 9.8-10.0 to 9.0-9.2 ms CPU a real page (three
runs each, alternated, at load 6; committing per batch alone changed nothing
measurable). Rules:

- a page the database refuses rolls the batch back, the pages before it are written
  again in a transaction of their own, committed and reported, then the page is
  reported with its StoreError and the next batch begins after it, when the refusal
  was for the page's own values (``ingest.refused_for_its_values``); a database that
  refuses for its own state (locked, full, read-only) stops the import there, its
  StoreError raised;
- the batch's new reviews are indexed for full-text search in one statement before
  the commit (``scraper.store.ftsbatch``): one FTS5 segment per batch, not per page;
- its pages' statements run through the ``sqlite3`` driver with SQL that SQLAlchemy
  compiled once (``scraper.store.driverexec``): the same rows, for less of the
  writer's CPU than SQLAlchemy's execution of each statement;
- a page is reported only once its batch is committed, so every page reported is
  stored; a crash loses the pages of the open batch, none of them reported, and a
  second run stores them (the capture check skips the ones committed before). A stop
  signal (``interrupts``) waits for the statements in hand, not for the next parsed
  page: it rolls the open batch back as a crash would, or, arriving during the commit,
  leaves the batch stored but not yet reported (the next run names it already stored).

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
from scraper.interrupts import Unshielded
from scraper.records import FetchedPage
from scraper.store.bodies import body_sha256
from scraper.store.driverexec import driver_connection
from scraper.store.engine import store_error, write_transaction
from scraper.store.ftsbatch import DeferredIndex
from scraper.store.ingest import (
    IngestReport,
    ingest_or_refusal,
    page_refused,
    refused_for_its_values,
    write_page,
)
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
) -> Iterator[tuple[_Key, IngestReport | StoreError | None]]:
    """Store the pages of *jobs* in order; yield (key, report) per job once it is committed.

    A job's report is None when it had no page, and the StoreError (naming the database
    and URL) of a page the database refused for its own values: nothing of that page
    is stored, and the next job runs. Raises StoreError when the database refuses a page
    for its own state (locked, full, gone), after yielding every job before it.
    """
    settings = settings or StoreSettings()
    if engine.dialect.name != "sqlite" or settings.sqlite_batch_pages <= 1:
        for job in jobs:
            report: IngestReport | StoreError | None = None
            if job.page is not None:
                report = ingest_or_refusal(engine, job.page, source=source, parsed=job.outcome)
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
            key, failure = refused
            if not refused_for_its_values(failure):
                raise failure
            yield key, failure


class _Refused(Exception):
    """The database refused the page of job number *index* of the batch."""

    def __init__(self, index: int, error: StoreError) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def _write_batch(
    engine: Engine,
    first: PageJob[_Key],
    pending: Iterator[PageJob[_Key]],
    source: str,
    settings: StoreSettings,
) -> tuple[list[tuple[_Key, IngestReport | None]], tuple[_Key, StoreError] | None]:
    """Write *first* and the next jobs of *pending* in one transaction; return their
    reports (committed) and the key and error of a page the database refused, which
    ends the batch.

    No savepoint per page: a refused page rolls the whole transaction back (the
    batch's deferred full-text index with it), and the pages before it are written
    again in a transaction of their own (refusals are rare; a redo costs a batch).
    """
    taken: list[PageJob[_Key]] = [first]
    try:
        try:
            with write_transaction(engine) as connection:
                done = _write_jobs(connection, taken, pending, source, settings)
        except _Refused as refusal:
            earlier = taken[: refusal.index]
            refused = (taken[refusal.index].key, refusal.error)
            if not any(job.page is not None for job in earlier):
                return [(job.key, None) for job in earlier], refused
            with write_transaction(engine) as connection:
                done = _write_jobs(connection, earlier, iter(()), source, settings)
            return _settled(done), refused
    except _Refused as again:  # the database refused an earlier page the second time
        raise again.error from again.error.__cause__
    except DBAPIError as error:  # the commit itself: nothing of the batch is stored
        raise store_error(engine, error) from error
    return _settled(done), None


def _write_jobs(
    connection: Connection,
    taken: list[PageJob[_Key]],
    pending: Iterator[PageJob[_Key]],
    source: str,
    settings: StoreSettings,
) -> list[tuple[_Key, IngestReport | None]]:
    """Write the jobs of *taken*, then of *pending* (added to *taken*) until the batch is
    full or old; return each job's report. Raises _Refused for a page the database refuses."""
    done: list[tuple[_Key, IngestReport | None]] = []
    started = time.monotonic()
    index = DeferredIndex(connection)
    writer = driver_connection(connection)
    number = 0
    while True:
        if number == len(taken):
            following = None
            young = time.monotonic() - started < settings.batch_seconds
            if len(done) < settings.sqlite_batch_pages and young:
                # Waiting for the next parsed page (a worker's) is no database work: a
                # stop signal is raised here at once, and the open batch rolled back.
                with Unshielded():
                    following = next(pending, None)
            if following is None:
                index.finish()
                return done
            taken.append(following)
        job = taken[number]
        report = None
        if job.page is not None:
            page = job.page
            outcome = job.outcome or parse_fetched(page.body, page.final_url, page.charset)
            records = outcome.result.reviews if outcome.result is not None else ()
            index.before_page((record.site, record.id) for record in records)
            try:
                report = _write_one(writer, job, page, outcome, source)
            except DBAPIError as error:
                refused = page_refused(connection.engine, page, error)
                raise _Refused(number, refused) from error
        done.append((job.key, report))
        number += 1


def _settled(
    done: list[tuple[_Key, IngestReport | None]],
) -> list[tuple[_Key, IngestReport | None]]:
    """*done*, committed: each ParseError learns the raw page it is stored with."""
    for _, report in done:
        if report is not None and report.error is not None:
            report.error.raw_page_id = report.raw_page_id
    return done


def _write_one(
    connection: Connection,
    job: PageJob[_Key],
    page: FetchedPage,
    outcome: ParseOutcome,
    source: str,
) -> IngestReport:
    return write_page(
        connection,
        page,
        outcome,
        digest=job.digest or body_sha256(page.body),
        source=source,
        crawl_run_id=None,
        records_digest=job.records_digest if job.outcome is not None else None,
    )
