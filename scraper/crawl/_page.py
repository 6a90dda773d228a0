"""What is done to one frontier URL, start to finish: fetch it (conditionally), store
it, queue its next page, and decide what a failure means (retry later, give up, slow
down, stop). ``PageHandler.handle`` is the entry; ``URLOutcome`` what it returns.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl._budget import DatabaseThrottle
from scraper.crawl._database import database_lost
from scraper.crawl._frontier import Frontier, FrontierItem
from scraper.crawl._seeds import ARCHIVE, follow
from scraper.crawl._stored import (
    Validators,
    find_stored,
    save_validators,
    stored_next_url,
)
from scraper.errors import (
    BadURL,
    ConnectionRefused,
    FetchError,
    HTTPStatusError,
    NotHTML,
    ParseError,
    RateLimited,
    RobotsDisallowed,
    ScraperError,
    SiteBlocked,
    URLFailed,
    is_transient,
)
from scraper.fetch.urls import host_key
from scraper.records import FetchedPage, PageKind
from scraper.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from scraper.fetch.client import Fetcher
    from scraper.sites import NextLink
    from scraper.sites._pages import PageLook
    from scraper.store.ingest import IngestReport, ParseOutcome

__all__ = ["FINAL_EVENTS", "Event", "Fetched", "PageHandler", "URLOutcome"]


class Event(enum.StrEnum):
    """What became of one frontier URL."""

    STORED = "stored"  # fetched (200) and ingested
    NOT_MODIFIED = "not_modified"  # 304: the stored capture still holds
    FRESH = "fresh"  # checked recently (refresh_after): not requested at all
    RECOVERED = "recovered"  # stored by a run that died before marking it done
    ROBOTS = "robots"  # robots.txt disallows it: never requested
    RETRY = "retry"  # transient failure: queued again for later
    REFUSED = "refused"  # 403/429: host slowed down, URL queued again
    FAILED = "failed"  # given up on (error recorded)


#: The events that end a URL for this run (the others queue it again).
FINAL_EVENTS = frozenset(
    {Event.STORED, Event.NOT_MODIFIED, Event.FRESH, Event.RECOVERED, Event.ROBOTS, Event.FAILED}
)


@dataclass(frozen=True, slots=True)
class URLOutcome:
    """One URL's outcome: ``report`` is what storing its page did (``STORED``),
    ``error`` what failed, ``raw_page_id`` the capture it ended on, if any."""

    event: Event
    url: str
    message: str | None = None
    report: IngestReport | None = None
    error: ScraperError | None = None
    raw_page_id: int | None = None

    @property
    def page_error(self) -> bool:
        """Stored, but the parser could not read it."""
        return self.report is not None and self.report.error is not None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A page fetched and its next link read: what is left is queueing that link
    (``PageHandler.queue_follow``), parsing the page in full (``look``, unless ``parsed``
    is there) and storing it (``PageHandler.finish``), which the crawl does while it
    fetches the next. ``next_url``: the link read."""

    item: FrontierItem
    page: FetchedPage
    known: Validators | None
    parsed: ParseOutcome | None
    look: PageLook | None = None
    next_url: str | None = None
    #: ``next_url`` normalised, to be queued by ``PageHandler.queue_follow`` before
    #: the page is stored (None: nothing to follow).
    follow: str | None = None


@dataclass
class PageHandler:
    """Processes frontier URLs for one crawl (shared by its worker threads)."""

    engine: Engine
    frontier: Frontier
    throttle: DatabaseThrottle
    settings: CrawlSettings
    fetch_settings: FetchSettings
    run_id: int
    #: Consecutive block pages per host, seen by this process's workers.
    _blocks: dict[str, int] = field(default_factory=dict)
    _blocks_lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(
        self,
        item: FrontierItem,
        fetcher: Fetcher,
        known: Validators | None,
        *,
        defer: bool = False,
    ) -> URLOutcome | Fetched:
        """Handle one leased URL and return its outcome. *known* is what
        ``load_many_validators`` found for it (read when it was leased).

        With *defer* (a full crawl), a good page comes back as ``Fetched``: its next
        link read, to be queued by ``queue_follow`` and stored by ``finish``. Raises
        SiteBlocked when the host refused us ``max_refusals`` times in a row (the URL
        is queued again first) or served block pages, StoreError when the database
        fails.
        """
        if item.attempts > 1:
            recovered = find_stored(self.engine, item.url, self.frontier.crawl_key, item.added_at)
            if recovered is not None:
                self.frontier.mark_done(item, raw_page_id=recovered)
                if self.settings.mode != ARCHIVE:
                    self._follow(item, stored_next_url(self.engine, recovered))
                return URLOutcome(Event.RECOVERED, item.url, raw_page_id=recovered)
        fresh_for = self.settings.refresh_after
        # Only a full crawl leaves recently checked pages alone: an incremental one
        # must ask for its listings' newest pages every time (new reviews land there),
        # and its stale pages were chosen for it when the crawl started.
        if (
            self.settings.mode == "full"
            and known is not None
            and fresh_for is not None
            and known.age(_now()) < fresh_for
        ):
            return self._fresh(item, known)
        try:
            page = fetcher.fetch(
                item.url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        except FetchError as error:
            return self._fetch_failed(item, error, fetcher)
        # The Fetcher told the throttle when the answer came: the host's next
        # interval already runs, overlapping the parsing and storing below.
        if page.status == 304 and known is not None:
            return self._not_modified(item, page, known)
        deferred = defer and self.settings.mode == "full"
        look, link = _look(page) if deferred else (None, None)
        if link is None:
            # Parsed here, before the next request: a block page must stop the crawl
            # before another request goes out, and the next page's URL is in this one.
            parsed = _parse(page, look)
            if not deferred or parsed.kind is PageKind.BLOCKED:
                return self._store(item, page, known, parsed)
            next_url = parsed.next_url
        else:
            # The site read the next link and "no block page" off the tree without the
            # full parse, which runs while the next page is fetched (``finish``).
            parsed, next_url = None, link.url
        # Not a block page: the host's run of block pages ends now, not when this page's
        # deferred store finishes (a block page fetched meanwhile is not "in a row").
        self._no_block(item.host)
        follow = self._next(item, next_url)
        # ``follow`` is queued (``queue_follow``) before this page is stored, so it can be
        # fetched meanwhile. A crash before the store leaves this page leased: it is
        # fetched again.
        return Fetched(
            item, page, known, parsed, look if parsed is None else None, next_url, follow
        )

    def queue_follow(self, fetched: Fetched, conn: Connection | None = None) -> None:
        """Queue a ``Fetched`` page's next page (in *conn*'s transaction, if given)."""
        if fetched.follow is not None:
            self._queue(fetched.item, fetched.follow, conn)

    def finish(self, fetched: Fetched) -> URLOutcome:
        """Parse a ``Fetched`` page in full if it is not yet, store it and mark its URL
        done; return the outcome."""
        parsed = fetched.parsed
        if parsed is None:
            parsed = _parse(fetched.page, fetched.look)
        # The link the full parse reads is the one queued (``Site.next_link``); were
        # it another, it is queued with the page, so no chain ends on a site's slip.
        queued = parsed.next_url == fetched.next_url
        return self._store(fetched.item, fetched.page, fetched.known, parsed, follow_queued=queued)

    # --- the page came ---------------------------------------------------------------

    def _store(
        self,
        item: FrontierItem,
        page: FetchedPage,
        known: Validators | None,
        parsed: ParseOutcome,
        *,
        follow_queued: bool = False,
    ) -> URLOutcome:
        from scraper.store.ingest import ingest_page

        try:
            report = ingest_page(self.engine, page, crawl_run_id=self.run_id, parsed=parsed)
        except Exception as error:
            if database_lost(error):
                raise
            return self._unstorable(item, page, error)
        if report.page_kind is PageKind.BLOCKED:
            return self._blocked(item, report)
        result = report.result
        next_url = None if result is None or self._ends_chain(report) else result.next_url
        if follow_queued:
            next_url = None
        self._complete(item, page, report.raw_page_id, next_url, known)
        return URLOutcome(
            Event.STORED,
            item.url,
            message=report.error.message if report.error else None,
            report=report,
            error=report.error,
            raw_page_id=report.raw_page_id,
        )

    def _ends_chain(self, report: IngestReport) -> bool:
        """Return True when an incremental crawl stops following this page's chain.

        Listings read newest first: once a page shows one review we already hold,
        every later page holds only older ones, so asking for it costs the site a
        request for nothing. A page bringing no new review at all ends it too.
        """
        if self.settings.mode != "incremental":
            return False
        seen_before = report.reviews_updated + report.reviews_unchanged
        return report.reviews_new == 0 or seen_before > 0

    def _not_modified(self, item: FrontierItem, page: FetchedPage, known: Validators) -> URLOutcome:
        # Unchanged since the stored capture: not parsed or stored again, but its chain
        # is still followed in a full crawl (later pages may have changed).
        next_url = None
        if self.settings.mode == "full":
            next_url = stored_next_url(self.engine, known.raw_page_id)
        self._complete(item, page, known.raw_page_id, next_url, known)
        return URLOutcome(Event.NOT_MODIFIED, item.url, raw_page_id=known.raw_page_id)

    def _complete(
        self,
        item: FrontierItem,
        page: FetchedPage,
        raw_page_id: int | None,
        next_url: str | None,
        known: Validators | None,
    ) -> None:
        """The host answered well: its validators, the row done and the next page queued,
        in one transaction (a crash leaves all or nothing of it)."""
        self.throttle.clear_refusals(item.host)
        self._no_block(item.host)
        follow = self._next(item, next_url)
        with write_transaction(self.engine) as conn:
            save_validators(conn, item.url, page, raw_page_id, known)
            self.frontier.mark_done(item, raw_page_id=raw_page_id, conn=conn)
            if follow is not None:
                self._queue(item, follow, conn)

    def _no_block(self, host: str) -> None:
        if self._blocks.get(host):
            with self._blocks_lock:
                self._blocks[host] = 0

    def _fresh(self, item: FrontierItem, known: Validators) -> URLOutcome:
        age = known.age(_now())
        self.frontier.mark_skipped(item, f"fresh: checked {age:.0f} s ago")
        if self.settings.mode == "full":
            self._follow(item, stored_next_url(self.engine, known.raw_page_id))
        return URLOutcome(Event.FRESH, item.url, raw_page_id=known.raw_page_id)

    def _follow(self, item: FrontierItem, next_url: str | None) -> None:
        follow = self._next(item, next_url)
        if follow is not None:
            self._queue(item, follow, None)

    def _next(self, item: FrontierItem, next_url: str | None) -> str | None:
        """Return the URL to queue after *item* (normalised), or None (always in an
        archive: it follows no link)."""
        if not next_url or self.settings.mode == ARCHIVE:
            return None
        try:
            return follow(item.url, next_url, mode=self.settings.mode)
        except BadURL as error:
            self._record(item.url, error)
            return None

    def _queue(self, item: FrontierItem, url: str, conn: Connection | None) -> None:
        self.frontier.add(
            [(url, host_key(url))], depth=item.depth + 1, discovered_from=item.url, conn=conn
        )

    # --- the page did not come ---------------------------------------------------------

    def _fetch_failed(self, item: FrontierItem, error: FetchError, fetcher: Fetcher) -> URLOutcome:
        if isinstance(error, RobotsDisallowed):
            self._record(item.url, error)
            self.frontier.mark_skipped(item, error.message)
            return URLOutcome(Event.ROBOTS, item.url, message=error.message, error=error)
        status = getattr(error, "status", None)
        patience = self.fetch_settings.max_retry_after
        if isinstance(error, RateLimited) and (error.retry_after or 0.0) > patience:
            return self._sent_away(item, error)
        if isinstance(error, RateLimited) or (
            isinstance(error, HTTPStatusError) and status in self.fetch_settings.statuses.refusal
        ):
            retry_after = error.retry_after if isinstance(error, RateLimited) else None
            if retry_after:
                self.throttle.push_back(item.host, retry_after)
            self._record(item.url, error)
            return self._refused(item, error, wait=retry_after)
        self._record(item.url, error)
        retry = not isinstance(error, ConnectionRefused)  # the Fetcher tried it twice already
        if retry and is_transient(error) and item.attempts < self.settings.max_url_attempts:
            self.frontier.retry_later(item, self._backoff(item, fetcher), error.message)
            return URLOutcome(Event.RETRY, item.url, message=error.message, error=error)
        if isinstance(error, NotHTML):
            self.frontier.mark_skipped(item, error.message)
        else:
            self.frontier.mark_failed(item, error.message)
        return URLOutcome(Event.FAILED, item.url, message=error.message, error=error)

    def _refused(
        self, item: FrontierItem, error: FetchError, *, wait: float | None = None
    ) -> URLOutcome:
        """The host refused us: count it (shared by all workers), slow down, maybe stop."""
        reason = error.message
        refusals = self.throttle.note_refusal(item.host)
        outcome = URLOutcome(Event.REFUSED, item.url, message=reason, error=error)
        if item.attempts >= self.settings.max_url_attempts:
            # Refused every time it was asked: this URL ends, whatever the others do.
            message = f"{reason}, {item.attempts} times: given up"
            self.frontier.mark_failed(item, message)
            given_up = URLFailed(message, url=item.url)
            outcome = URLOutcome(Event.FAILED, item.url, message=message, error=given_up)
        else:
            pause = max(wait or 0.0, self.settings.delay * 2**refusals)
            pause = min(pause, self.fetch_settings.max_retry_after)
            self.frontier.retry_later(item, _after(pause), reason)
        if refusals >= self.settings.max_refusals:
            raise SiteBlocked(
                f"{item.host} refused {refusals} requests in a row (last: {reason}); "
                "stopping instead of hammering it. Wait before crawling it again.",
                url=item.url,
            )
        return outcome

    def _sent_away(self, item: FrontierItem, error: RateLimited) -> URLOutcome:
        """A Retry-After beyond our patience: the whole host said "not now". Nothing
        is waited for; the host's next allowed time and the URL's are kept within the
        cap (never the year 2100), and the crawl stops so a later run continues."""
        patience = self.fetch_settings.max_retry_after
        self.throttle.push_back(item.host, patience)
        self._record(item.url, error)
        self.frontier.retry_later(item, _after(patience), error.message)
        raise SiteBlocked(
            f"{item.host} asks us to wait {error.retry_after:.0f} s ({error.status} with "
            f"Retry-After), more than the {patience:g} s we wait: stopping; crawl it "
            "again later",
            url=item.url,
        )

    def _blocked(self, item: FrontierItem, report: IngestReport) -> URLOutcome:
        """A block page (captcha, "access denied"): stored raw and recorded, the URL is
        never asked for again, and a second one in a row from the host stops the crawl."""
        reason = report.error.message if report.error else "a block page"
        message = f"served a block page ({reason})"
        error = URLFailed(message, url=item.url)
        self._record(item.url, error, raw_page_id=report.raw_page_id)
        self.frontier.mark_failed(item, message)
        refusals = self.throttle.note_refusal(item.host)  # slows the host down meanwhile
        with self._blocks_lock:
            blocks = self._blocks[item.host] = self._blocks.get(item.host, 0) + 1
        limit = self.settings.max_block_pages
        if blocks >= limit or refusals >= self.settings.max_refusals:
            raise SiteBlocked(
                f"{item.host} served {blocks} block page(s) in a row (last: {item.url}); "
                "stopping instead of hammering it. Wait before crawling it again.",
                url=item.url,
            )
        return URLOutcome(
            Event.FAILED, item.url, message=message, error=error, raw_page_id=report.raw_page_id
        )

    def _unstorable(self, item: FrontierItem, page: FetchedPage, error: Exception) -> URLOutcome:
        """The page came but its records could not be stored (a value the database
        refuses, a bug): keep the raw page alone when the database takes it, record
        the failure, give up on the URL."""
        from scraper.store.ingest import ParseOutcome, ingest_page

        detail = f"could not store its records: {type(error).__name__}: {error}"
        detail = detail.splitlines()[0][:500]
        raw_only = ParseOutcome(None, ParseError(detail, url=item.url))
        raw_page_id = None
        try:
            raw_page_id = ingest_page(
                self.engine, page, crawl_run_id=self.run_id, parsed=raw_only
            ).raw_page_id
        except Exception as again:
            if database_lost(again):
                raise
        return self.give_up(item, URLFailed(detail, url=item.url), raw_page_id=raw_page_id)

    def give_up(
        self, item: FrontierItem, error: ScraperError, *, raw_page_id: int | None = None
    ) -> URLOutcome:
        """Record *error* for *item* and mark it failed; return that outcome."""
        outcome = self.record_failure(item.url, error, raw_page_id=raw_page_id)
        self.frontier.mark_failed(item, error.message)
        return outcome

    def record_failure(
        self, url: str, error: ScraperError, *, raw_page_id: int | None = None
    ) -> URLOutcome:
        """Record *error* for *url* (in ``fetch_errors``); return the failed outcome."""
        self._record(url, error, raw_page_id=raw_page_id)
        return URLOutcome(
            Event.FAILED, url, message=error.message, error=error, raw_page_id=raw_page_id
        )

    def _backoff(self, item: FrontierItem, fetcher: Fetcher) -> datetime:
        settings = self.fetch_settings
        wait = min(settings.backoff_max, settings.backoff_initial * 2 ** (item.attempts - 1))
        if fetcher.robots.unavailable(item.host) is not None:
            # robots.txt could not be read: the host stays disallowed until it is
            # fetched again, so asking sooner would only fail again.
            wait = max(wait, settings.robots_failure_ttl)
        return _after(wait)

    def _record(self, url: str, error: ScraperError, *, raw_page_id: int | None = None) -> None:
        from scraper.store.ingest import record_fetch_error

        record_fetch_error(
            self.engine, url, error, crawl_run_id=self.run_id, raw_page_id=raw_page_id
        )


def _look(page: FetchedPage) -> tuple[PageLook | None, NextLink | None]:
    """The page's tree and, when its site can tell without the full parse, its next
    link (``Site.next_link``); (None, None) when the page cannot be read as HTML."""
    from scraper.sites import look_at

    try:
        look = look_at(page.body, page.final_url, charset=page.charset)
    except Exception:  # the full parse (parse_fetched) says what is wrong with it
        return None, None
    return look, look.next_link()


def _parse(page: FetchedPage, look: PageLook | None) -> ParseOutcome:
    """The page's full parse (``store.ingest.parse_fetched``), on *look*'s tree when
    there is one; never raises for a bad page."""
    from scraper.store.parsing import judge_parse, parse_fetched

    if look is None:
        return parse_fetched(page.body, page.final_url, page.charset)
    return judge_parse(look.result, page.final_url)  # the same rules, on the built tree


def _now() -> datetime:
    return datetime.now(UTC)


def _after(seconds: float) -> datetime:
    return _now() + timedelta(seconds=seconds)
