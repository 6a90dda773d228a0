"""``archive``: fetch a list of URLs once each, politely, and store them, recorded as
one ``crawl_runs`` row (command ``archive``) and remembering each URL's validators
the way the crawler does, so archiving a page again is a conditional request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scraper.config import FetchSettings
from scraper.crawl._runs import RunFigures, finish_run, start_run
from scraper.crawl._seeds import crawl_key
from scraper.crawl._stored import Validators, load_validators, save_validators
from scraper.errors import FetchError, RobotsDisallowed, ScraperError, URLFailed
from scraper.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from scraper.fetch.client import Fetcher
    from scraper.records import FetchedPage
    from scraper.store.ingest import IngestReport

__all__ = ["Archived", "archive_pages"]


@dataclass(frozen=True, slots=True)
class Archived:
    """One URL handled by ``archive``.

    ``report`` is what was stored (None when nothing new was: the page could not be
    fetched, or it answered 304); ``error`` the fetch error, or the ParseError of a
    page stored raw only; ``unchanged_since`` the stored raw page a 304 confirmed.
    """

    url: str
    report: IngestReport | None = None
    error: ScraperError | None = None
    unchanged_since: int | None = None


def archive_pages(
    engine: Engine, urls: Iterable[str], *, settings: FetchSettings, delay: float
) -> Iterator[Archived]:
    """Fetch each URL once (repeats by canonical form skipped) and store it; yield one
    Archived per URL, in order, while recording the run in ``crawl_runs``.

    Failures are recorded in ``fetch_errors`` and yielded; the next URL still runs.
    Raises StoreError when the database refuses (the run is closed as ``failed``).
    """
    from scraper.fetch import Fetcher, canonicalize

    given = list(urls)
    options = {"delay": delay, "user_agent": settings.user_agent}
    run_id = start_run(
        engine,
        crawl_key=crawl_key(given, mode="archive"),
        seeds=given,
        options=options,
        job=None,
        command="archive",
    )
    figures = RunFigures()
    outcome = "interrupted"
    message: str | None = "stopped before the last URL"
    seen: set[str] = set()
    try:
        with Fetcher(settings, delay=delay) as fetcher:
            for url in given:
                try:
                    canonical = canonicalize(url)
                except FetchError as error:
                    yield _failed(engine, run_id, figures, url, error)
                    continue
                if canonical not in seen:
                    seen.add(canonical)
                    yield _archive_guarded(engine, fetcher, run_id, figures, url, canonical)
        outcome, message = ("page_errors" if figures.errors else "success"), None
    except Exception as error:
        outcome, message = "failed", f"{type(error).__name__}: {error}"
        raise
    finally:
        finish_run(engine, run_id, figures, outcome=outcome, message=message)


def _archive_guarded(
    engine: Engine,
    fetcher: Fetcher,
    run_id: int,
    figures: RunFigures,
    url: str,
    canonical: str,
) -> Archived:
    """``_archive_one``; anything unforeseen tied to this URL (a value the database
    refuses, a bug) fails the URL, not the run. A database that went away does not."""
    from scraper.crawl._database import database_lost

    try:
        return _archive_one(engine, fetcher, run_id, figures, url, canonical)
    except Exception as error:
        if database_lost(error):
            raise
        detail = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return _failed(engine, run_id, figures, url, URLFailed(detail, url=url))


def _archive_one(
    engine: Engine,
    fetcher: Fetcher,
    run_id: int,
    figures: RunFigures,
    url: str,
    canonical: str,
) -> Archived:
    from scraper.store.ingest import ingest_page

    known = load_validators(engine, canonical)
    try:
        page = fetcher.fetch(
            url,
            etag=known.etag if known else None,
            last_modified=known.last_modified if known else None,
        )
    except FetchError as error:
        return _failed(engine, run_id, figures, url, error)
    figures.pages += 1
    if page.status == 304 and known is not None:
        figures.not_modified += 1
        _remember(engine, canonical, page, known.raw_page_id, known)
        return Archived(url, unchanged_since=known.raw_page_id)
    report = ingest_page(engine, page, source="http", crawl_run_id=run_id)
    _remember(engine, canonical, page, report.raw_page_id, known)
    figures.reviews_new += report.reviews_new
    figures.reviews_updated += report.reviews_updated
    figures.reviews_unchanged += report.reviews_unchanged
    figures.errors += report.error is not None
    return Archived(url, report=report, error=report.error)


def _remember(
    engine: Engine, url: str, page: FetchedPage, raw_page_id: int | None, known: Validators | None
) -> None:
    with write_transaction(engine) as conn:
        save_validators(conn, url, page, raw_page_id, known)


def _failed(
    engine: Engine, run_id: int, figures: RunFigures, url: str, error: ScraperError
) -> Archived:
    from scraper.store.ingest import record_fetch_error

    record_fetch_error(engine, url, error, crawl_run_id=run_id)
    if isinstance(error, RobotsDisallowed):
        figures.robots_skipped += 1
    figures.errors += 1
    return Archived(url, error=error)
