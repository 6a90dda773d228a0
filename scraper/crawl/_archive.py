"""``archive``: the crawl of a list of URLs that follows no link.

The URLs go through the crawl's own path (``CrawlLoop`` and ``PageHandler``: the
frontier, the host budget and robots.txt store shared with every crawler, the same
handling of refusals and block pages, ``fetch_errors``, conditional requests with
the stored validators), recorded as one ``crawl_runs`` row with command ``archive``.
What this module adds is the caller's view: one ``Archived`` per URL, in the order
given, as soon as it and the URLs before it are done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from queue import SimpleQueue
from typing import TYPE_CHECKING

from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl._crawl import crawling
from scraper.crawl._loop import CrawlLoop, CrawlProgress
from scraper.crawl._page import FINAL_EVENTS, Event, URLOutcome
from scraper.crawl._seeds import ARCHIVE, crawl_key, normalise
from scraper.errors import INTERRUPTS, BadURL, ScraperError, URLFailed

if TYPE_CHECKING:
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


@dataclass(frozen=True, slots=True)
class _End:
    """The run is over (``error``: what ended it, if anything did)."""

    error: BaseException | None


def archive_pages(
    db_url: str, urls: Iterable[str], *, settings: FetchSettings, delay: float
) -> Iterator[Archived]:
    """Fetch each URL once (repeats by canonical form skipped) and store it; yield one
    Archived per URL, in order, while recording the run in ``crawl_runs``.

    Failures are recorded in ``fetch_errors`` and yielded; the next URL still runs.
    Raises StoreError when the database refuses, SiteBlocked when the site keeps
    refusing us, JobAlreadyRunning when a crawl holds the SQLite file.
    """
    from scraper.fetch.urls import host_key

    given = list(urls)
    names: dict[str, str] = {}  # each URL's frontier spelling → the URL as given
    rejected: dict[str, ScraperError] = {}
    for url in given:
        try:
            key = normalise(url, mode=ARCHIVE)
        except BadURL as error:
            key = url
            rejected.setdefault(url, error)
        names.setdefault(key, url)
    crawl_settings = CrawlSettings(delay=delay, concurrency=1, mode=ARCHIVE, refresh_after=None)
    key = crawl_key(given, mode=ARCHIVE)
    outcomes: SimpleQueue[URLOutcome | _End] = SimpleQueue()

    def keep(progress: CrawlProgress) -> None:
        if progress.outcome is not None and progress.outcome.event in FINAL_EVENTS:
            outcomes.put(progress.outcome)

    with crawling(db_url, key, settings=crawl_settings, fetch_settings=settings) as frontier:
        to_fetch = [name for name in names if name not in rejected]
        frontier.prepare([(url, host_key(url)) for url in to_fetch], resume=False)
        loop = CrawlLoop(
            frontier.engine,
            frontier,
            settings=crawl_settings,
            fetch_settings=settings,
            progress=keep,
        )

        def work() -> None:
            try:
                loop.run(
                    crawl_key=key,
                    seeds=given,
                    options={"delay": delay, "user_agent": settings.user_agent},
                    job=None,
                    rejected=list(rejected.items()),
                )
            except BaseException as error:
                outcomes.put(_End(error))
            else:
                outcomes.put(_End(None))

        # The loop works in a thread of its own so each URL is yielded as it is done.
        thread = threading.Thread(target=work, name="archive")
        thread.start()
        try:
            yield from _in_order(names, outcomes)
        except BaseException as error:
            stopped = error if isinstance(error, INTERRUPTS) else None
            loop.interrupt(stopped or KeyboardInterrupt("stopped before the last URL"))
            raise
        finally:
            thread.join()
        # Every URL is done: its frontier rows would only grow the table (an archive
        # is never resumed; the same URLs archived again start over).
        frontier.reset()


def _in_order(
    names: dict[str, str], outcomes: SimpleQueue[URLOutcome | _End]
) -> Iterator[Archived]:
    """Yield each URL's Archived in the order given, as soon as the URLs before it
    are done; then raise what ended the run, if anything did."""
    waiting = list(names)
    done: dict[str, Archived] = {}
    while not isinstance(got := outcomes.get(), _End):
        done[got.url] = _archived(names.get(got.url, got.url), got)
        while waiting and waiting[0] in done:
            yield done.pop(waiting.pop(0))
    yield from (done.pop(name) for name in waiting if name in done)
    if got.error is not None:
        raise got.error


def _archived(url: str, outcome: URLOutcome) -> Archived:
    if outcome.event is Event.STORED and outcome.report is not None:
        return Archived(url, report=outcome.report, error=outcome.report.error)
    if outcome.event in (Event.NOT_MODIFIED, Event.RECOVERED, Event.FRESH):
        return Archived(url, unchanged_since=outcome.raw_page_id)
    error = outcome.error or URLFailed(outcome.message or "failed", url=url)
    return Archived(url, error=error)
