"""The crawl loop: seeds → frontier → fetch → ingest → next page → ..., until the frontier of
the crawl is empty or a limit is reached, recorded as one row of ``crawl_runs``.

Worker threads (``concurrency``) each lease one URL at a time from the shared
frontier; other processes pointed at the same PostgreSQL database do the same, and
the per-host interval they all obey lives in the database (``DatabaseThrottle``).
In a full crawl each worker stores a page while it fetches the next
(``StoreBehind``): the site's interval runs while the page is stored, not after.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from scraper.config import CrawlSettings, CrawlTuning, FetchSettings
from scraper.crawl._budget import DatabaseRobotsStore, DatabaseThrottle
from scraper.crawl._database import database_lost, wait_for_database
from scraper.crawl._frontier import Frontier, FrontierCounts, FrontierItem
from scraper.crawl._page import Event, Fetched, PageHandler, URLOutcome
from scraper.crawl._runs import RunFigures, finish_run, mark_dead_runs, save_figures, start_run
from scraper.crawl._seeds import ARCHIVE
from scraper.crawl._store_behind import STORE_HOLD, StoreBehind
from scraper.crawl._stored import Validators, load_many_validators
from scraper.errors import INTERRUPTS, ScraperError, SiteBlocked, URLFailed

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from scraper.fetch.client import Fetcher
    from scraper.fetch.robots import RobotsCache, RobotsFile

__all__ = ["CrawlLoop", "CrawlProgress", "CrawlReport"]

T = TypeVar("T")

#: The loop's fixed numbers: how often figures are saved, how long one idle wait
#: lasts, how many URLs one lease takes with ``--delay 0``.
_TUNING = CrawlTuning()


@dataclass(frozen=True, slots=True)
class CrawlReport:
    """What one ``crawl`` did. ``outcome`` is the ``crawl_runs`` outcome:
    ``success``, ``page_errors`` or ``site_blocked``; ``open_urls`` counts URLs left
    queued (a limit stopped the run: the same command continues)."""

    run_id: int
    crawl_key: str
    pages: int
    reviews_new: int
    reviews_updated: int
    reviews_unchanged: int
    not_modified: int
    robots_skipped: int
    errors: int
    elapsed: float
    outcome: str
    message: str | None = None
    open_urls: int = 0
    rechecks: int = 0  # stale stored pages queued for a conditional re-check
    #: One line per URL that failed: ``URL: what went wrong``.
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CrawlProgress:
    """Sent to the ``progress`` callback after each URL."""

    url: str
    event: str
    message: str | None
    figures: RunFigures
    frontier: FrontierCounts
    #: The whole outcome (what was stored, the error) for callers that keep it.
    outcome: URLOutcome | None = None


ProgressCallback = Callable[[CrawlProgress], None]


class CrawlLoop:
    """Runs one crawl's workers to the end; see ``scraper.crawl.crawl``."""

    def __init__(
        self,
        engine: Engine,
        frontier: Frontier,
        *,
        settings: CrawlSettings,
        fetch_settings: FetchSettings,
        progress: ProgressCallback | None,
    ) -> None:
        self.engine = engine
        self.frontier = frontier
        self.settings = settings
        self.fetch_settings = fetch_settings
        self.mode = settings.mode
        self.progress = progress
        # A SQLite file is crawled by one process (see _crawl): its pacing can stay here.
        self.throttle = DatabaseThrottle(
            engine,
            alone=engine.dialect.name == "sqlite",
            max_wait=fetch_settings.max_retry_after,
        )
        self.figures = RunFigures()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._active = 0
        self._taken = 0  # URLs handed to workers
        # Leased but not yet handed out: (item, its stored validators, when leased).
        self._buffer: deque[tuple[FrontierItem, Validators | None, float]] = deque()
        self._limit_message: str | None = None
        self._started = time.monotonic()
        self._saved = self._started
        self._counts = FrontierCounts()
        self._counted = 0.0
        self.run_id = 0
        self._local = threading.local()  # each worker thread's Fetcher

    # --- the whole run ----------------------------------------------------------------

    def run(
        self,
        *,
        crawl_key: str,
        seeds: Sequence[str],
        options: dict[str, object],
        job: str | None,
        rejected: Sequence[tuple[str, ScraperError]] = (),
    ) -> CrawlReport:
        """Record the run, work until done, close the run; return its report.
        *rejected*: URLs given that cannot be fetched (not http(s)), recorded as failed.

        Raises SiteBlocked (the run closed as ``site_blocked``), StoreError, or
        KeyboardInterrupt / Terminated (closed as ``interrupted``); queued URLs stay for a resume.
        """
        mark_dead_runs(self.engine, crawl_key)
        command = "archive" if self.mode == ARCHIVE else "crawl"
        run_id = start_run(
            self.engine, crawl_key=crawl_key, seeds=seeds, options=options, job=job, command=command
        )
        self.run_id = run_id
        handler = PageHandler(
            engine=self.engine,
            frontier=self.frontier,
            throttle=self.throttle,
            settings=self.settings,
            fetch_settings=self.fetch_settings,
            run_id=run_id,
        )
        try:
            for url, error in rejected:
                self._tally(handler.record_failure(url, error))
            self._give_up_exhausted()
            self._work_all(handler)
        except SiteBlocked as error:
            self._close(run_id, "site_blocked", str(error))
            raise
        except BaseException as error:
            outcome = "interrupted" if isinstance(error, INTERRUPTS) else "failed"
            try:
                self._close(run_id, outcome, f"{type(error).__name__}: {error}")
            except Exception as closing:
                if not database_lost(closing):
                    raise
                # The database is gone: the run stays "running" until the next run
                # finds its process dead; what the user needs is the first error.
            raise
        outcome = "page_errors" if self.figures.errors else "success"
        message = self._limit_message
        self._close(run_id, outcome, message)
        return CrawlReport(
            run_id=run_id,
            crawl_key=crawl_key,
            elapsed=time.monotonic() - self._started,
            outcome=outcome,
            message=message,
            open_urls=self.frontier.counts().open,
            failures=tuple(self.failures),
            **self.figures.as_dict(),
        )

    def _give_up_exhausted(self) -> None:
        """URLs whose every run ended on them (killed, stopped) are given up on."""
        from scraper.store.ingest import record_fetch_error

        for url, attempts in self.frontier.give_up_exhausted(self.settings.max_url_leases):
            error = URLFailed(f"given up after {attempts} attempts that never finished", url=url)
            record_fetch_error(self.engine, url, error, crawl_run_id=self.run_id)
            self.figures.errors += 1
            self.failures.append(f"{url}: {error.message}")

    def interrupt(self, error: BaseException) -> None:
        """Stop the workers from another thread; ``run`` then raises *error* (an
        interrupt closes the run as ``interrupted``)."""
        with self._lock:
            if self._error is None:
                self._error = error
        self._stop.set()

    def _close(self, run_id: int, outcome: str, message: str | None) -> None:
        finish_run(self.engine, run_id, self.figures, outcome=outcome, message=message)

    def _work_all(self, handler: PageHandler) -> None:
        # The parsers and the store's page path load while the first requests (robots.txt,
        # its interval) are waited for, not between the first page and the second.
        warm_up = threading.Thread(target=_warm_up, name="crawl-warm-up")
        warm_up.start()
        robots = self._robots()
        threads = [
            threading.Thread(target=self._worker, args=(handler, robots), name=f"crawl-{n}")
            for n in range(max(self.settings.concurrency, 1) - 1)
        ]
        threads.append(warm_up)  # joined with the workers (long done by then)
        for thread in threads[:-1]:
            thread.start()
        try:
            self._worker(handler, robots)  # the calling thread is a worker too
        except BaseException:
            self._stop.set()
            raise
        finally:
            for thread in threads:
                thread.join()
            self._give_back_buffer()
            with suppress(Exception):  # best effort: the crawl may be ending on that error
                self.throttle.flush()
        if self._error is not None:
            raise self._error

    def _robots(self) -> RobotsCache:
        from scraper.fetch.robots import RobotsCache, robots_token

        token = robots_token(self.fetch_settings.user_agent)
        store = DatabaseRobotsStore(self.engine, token=token)
        # One cache for all workers, loading through the asking worker's own Fetcher:
        # no worker's Fetcher is lent to the others (it may be closing or not ready).
        return RobotsCache(self.fetch_settings, store=store, loader=self._load_robots)

    def _load_robots(self, host: str) -> RobotsFile:
        fetcher: Fetcher = self._local.fetcher
        return fetcher.load_robots(host)

    # --- one worker ---------------------------------------------------------------------

    def _worker(self, handler: PageHandler, robots: RobotsCache) -> None:
        from scraper.fetch.client import Fetcher

        host = [""]  # the host this worker is fetching from, for the backoff sleep

        def backoff_sleep(seconds: float) -> None:
            # The Fetcher's retry waits (Retry-After, 5xx backoff) hold back every
            # worker and process, not just this one: the host asked for a pause.
            if host[0]:
                self.throttle.push_back(host[0], seconds)
            time.sleep(seconds)

        behind = StoreBehind(
            lambda fetched: self._guarded(handler, fetched.item, handler.finish, fetched),
            # With no delay there is no gap to keep: the store starts at once.
            hold=STORE_HOLD if self.settings.delay > 0 else 0.0,
        )
        self._local.behind = behind
        self._local.orphans = []  # leased when the database went away
        try:
            with Fetcher(
                self.fetch_settings,
                delay=self.settings.delay,
                throttle=self.throttle,
                robots=robots,
                sleep=backoff_sleep,
                on_sent=behind.release,  # the page before is stored while this one comes
            ) as fetcher:
                self._local.fetcher = fetcher
                while not self._stop.is_set():
                    try:
                        orphans: list[FrontierItem] = self._local.orphans
                        while orphans:
                            self.frontier.release(orphans[0], attempted=True)
                            orphans.pop(0)
                        if not self._take_one(handler, fetcher, host):
                            self._collect()  # the last page stored
                            break
                    except Exception as error:
                        if not database_lost(error):
                            raise
                        self._wait_for_database(error)
        except BaseException as error:
            with self._lock:
                if self._error is None:
                    self._error = error
            self._stop.set()
            if threading.current_thread() is threading.main_thread():
                raise
        finally:
            unstored = behind.close()
            if unstored is not None:
                with suppress(Exception):  # the crawl is ending on an error already
                    self.frontier.release(unstored, attempted=True)

    def _take_one(self, handler: PageHandler, fetcher: Fetcher, host: list[str]) -> bool:
        """Lease and process one URL, or wait for one; return False when the run is over."""
        if not self._within_limits():
            return False
        with self._lock:
            taken = self._next_item()
            if taken is not None:
                self._active += 1
                self._taken += 1
            active = self._active
        if taken is None:
            if self._local.behind.item is not None:
                self._collect()  # its store may be what the frontier waits for
                return True
            return self._wait_for_work(active)
        item, known = taken
        host[0] = item.host
        handed_over = False
        try:
            outcome = self._guarded(handler, item, self._fetch, handler, item, fetcher, known)
            if isinstance(outcome, Fetched):
                self._collect()  # the previous page, stored while this one came
                self._lease_ahead(handler, outcome)
                self._local.behind.submit(outcome)
                handed_over = True
                return True
        except SiteBlocked:
            raise
        except BaseException as error:
            if isinstance(error, Exception) and database_lost(error):
                self._local.orphans.append(item)  # given back once the database is back
                raise
            # Not done, but perhaps stored (interrupted between storing the page and
            # marking it done): counting the attempt makes the next run look first.
            self.frontier.release(item, attempted=True)
            raise
        finally:
            host[0] = ""
            if not handed_over:
                with self._lock:
                    self._active -= 1
        self._tally(outcome)
        return True

    def _fetch(
        self, handler: PageHandler, item: FrontierItem, fetcher: Fetcher, known: Validators | None
    ) -> URLOutcome | Fetched:
        return handler.handle(item, fetcher, known, defer=self.mode == "full")

    def _collect(self) -> None:
        """Wait for this worker's page being stored, if any, and count its outcome."""
        behind: StoreBehind = self._local.behind
        item = behind.item
        if item is None:
            return
        try:
            outcome = behind.collect()
        except Exception as error:
            if database_lost(error):
                self._local.orphans.append(item)
            else:
                self.frontier.release(item, attempted=True)
            raise
        finally:
            with self._lock:
                self._active -= 1
        if outcome is not None:
            self._tally(outcome)

    def _guarded(
        self, handler: PageHandler, item: FrontierItem, call: Callable[..., T], *args: Any
    ) -> T | URLOutcome:
        """``call(*args)``; anything unforeseen tied to *item* ends that URL, not the
        crawl (the database going away, SiteBlocked and interrupts pass)."""
        try:
            return call(*args)
        except SiteBlocked:
            raise
        except Exception as error:
            if database_lost(error):
                raise
            detail = f"{type(error).__name__}: {error}".splitlines()[0][:500]
            return handler.give_up(item, URLFailed(detail, url=item.url))

    def _wait_for_database(self, error: Exception) -> None:
        """Wait for the database to answer again (see ``wait_for_database``)."""
        wait_for_database(
            self.engine, error, budget=self.settings.database_retry_seconds, stop=self._stop
        )

    def _next_item(self) -> tuple[FrontierItem, Validators | None] | None:
        """The next leased URL for a worker, with its stored validators (leasing more
        when none is left), or None when none is due. Called under ``self._lock``."""
        if not self._buffer:
            self._lease()
        while self._buffer:
            item, validators, leased_at = self._buffer.popleft()
            if time.monotonic() - leased_at < self.frontier.lease_seconds / 2:
                return item, validators
            # Held too long behind slow pages: its lease may run out mid-fetch and
            # another worker take it too. Hand it back while it is surely ours.
            self.frontier.release(item)
        return None

    def _lease(self, conn: Connection | None = None) -> None:
        """Lease the next URL(s) into the buffer (in *conn*'s write transaction, if
        given). Called under ``self._lock``."""
        room = _TUNING.lease_batch if self.settings.delay == 0 else 1
        if self.settings.max_pages is not None:
            room = min(room, self.settings.max_pages - self._taken)
        items = self.frontier.lease(max(room, 1), conn=conn)
        known = load_many_validators(self.engine, [item.url for item in items], conn=conn)
        now = time.monotonic()
        self._buffer.extend((item, known.get(item.url), now) for item in items)

    def _lease_ahead(self, handler: PageHandler, fetched: Fetched) -> None:
        """Queue *fetched*'s next page and lease the next URL, in one transaction,
        before the page starts being stored: on SQLite the store holds the one write
        lock, and a lease would wait for it; and the next request waits for both."""
        from scraper.store.engine import write_transaction

        with self._lock:
            limit = self.settings.max_pages
            lease = not self._buffer and (limit is None or self._taken < limit)
            if fetched.follow is None and not lease:
                return
            with write_transaction(self.engine) as conn:
                handler.queue_follow(fetched, conn)
                if lease:
                    self._lease(conn)

    def _give_back_buffer(self) -> None:
        """Queue again the URLs leased but never handed out (the run is ending)."""
        while self._buffer:
            self.frontier.release(self._buffer.popleft()[0])

    def _within_limits(self) -> bool:
        limit = self.settings.max_pages
        if limit is not None and self._taken >= limit:
            self._limit_message = f"stopped after {limit} pages (--max-pages)"
            return False
        max_time = self.settings.max_time
        if max_time is not None and time.monotonic() - self._started >= max_time:
            self._limit_message = f"stopped after {max_time:g} s (--max-time)"
            return False
        return True

    def _wait_for_work(self, active: int) -> bool:
        due = self.frontier.next_due_at()
        if due is None and active == 0:
            return False  # nothing open and nobody here is about to add anything
        wait = _TUNING.idle_poll if due is None else (due - datetime.now(UTC)).total_seconds()
        self._stop.wait(min(max(wait, 0.01), _TUNING.idle_poll))
        return True

    # --- figures ------------------------------------------------------------------------

    def _tally(self, outcome: URLOutcome) -> None:
        figures = self.figures
        with self._lock:
            if outcome.event in (Event.STORED, Event.NOT_MODIFIED):
                figures.pages += 1
            figures.not_modified += outcome.event is Event.NOT_MODIFIED
            figures.robots_skipped += outcome.event is Event.ROBOTS
            # A link robots.txt keeps us from is skipped; a URL the user named to
            # archive and that could not be is an error.
            robots_error = outcome.event is Event.ROBOTS and self.mode == ARCHIVE
            failed = outcome.event is Event.FAILED or outcome.page_error or robots_error
            figures.errors += failed
            if failed:
                self.failures.append(f"{outcome.url}: {outcome.message or 'failed'}")
            report = outcome.report
            if report is not None:
                figures.reviews_new += report.reviews_new
                figures.reviews_updated += report.reviews_updated
                figures.reviews_unchanged += report.reviews_unchanged
            now = time.monotonic()
            save = now - self._saved >= _TUNING.save_every
            if save:
                self._saved = now
            snapshot = RunFigures(**figures.as_dict())
        if save:
            save_figures(self.engine, self.run_id, snapshot)
        if self.progress is not None:
            self.progress(
                CrawlProgress(
                    outcome.url,
                    outcome.event.value,
                    outcome.message,
                    snapshot,
                    self._frontier_counts(now),
                    outcome,
                )
            )

    def _frontier_counts(self, now: float) -> FrontierCounts:
        # Counting is a query: a progress display does not need it more than 4 times a second.
        if now - self._counted >= 0.25:
            self._counts = self.frontier.counts()
            self._counted = now
        return self._counts


def _warm_up() -> None:
    """Import what handling the first page needs (about 0.1 s of modules)."""
    with suppress(Exception):  # a worker importing them meets the same error, and tells it
        import scraper.sites._pages
        import scraper.store.ingest  # noqa: F401
