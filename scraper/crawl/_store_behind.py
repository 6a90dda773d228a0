"""Storing one page behind the fetch of the next: a worker's helper thread.

Storing a page (compressing it, writing its records) takes longer than fetching
the next one on a quick site, and it needs no network: a worker hands each page
to its ``StoreBehind`` once its next link is known and goes on to the next request
while the page is parsed in full and stored. At most one page waits to be stored
per worker, so a ``kill -9`` loses no more than the pages in flight (their frontier
rows stay leased and are fetched again on resume), and each page is still one
transaction.

A page's store waits until the worker's next request has left (``release``, which
the worker's Fetcher calls as it sends), or at most ``store_hold`` seconds: the few
milliseconds between an answer and the next request (finding the next link, leasing
it, the throttle's wait, sending) then have the interpreter to themselves, instead of
sharing it with the store's tens of milliseconds of Python, and the store runs while
the site answers. On a loaded machine that sharing put the store's time into the
gaps the site sees. (A crawl with no delay has no gap to keep: its stores start at
once, ``hold=0``.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from scraper.config import CrawlTuning

if TYPE_CHECKING:
    from scraper.crawl._frontier import FrontierItem
    from scraper.crawl._page import Fetched, URLOutcome

__all__ = ["StoreBehind"]

#: The longest a page's store waits for the next request's turn (module doc).
STORE_HOLD = CrawlTuning().store_hold


class StoreBehind:
    """Runs ``finish(fetched)`` for one page at a time in a thread of its own."""

    def __init__(
        self, finish: Callable[[Fetched], URLOutcome], *, hold: float = STORE_HOLD
    ) -> None:
        self._finish = finish
        self._hold = hold
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crawl-store")
        self._pending: tuple[Future[URLOutcome], FrontierItem] | None = None
        self._go = threading.Event()

    @property
    def item(self) -> FrontierItem | None:
        """The URL whose page is being stored, if any."""
        return self._pending[1] if self._pending is not None else None

    def submit(self, fetched: Fetched) -> None:
        """Start storing *fetched*; the previous page must have been collected."""
        if self._pending is not None:
            raise RuntimeError("collect the page being stored before handing over another")
        self._go = go = threading.Event()
        self._pending = (self._pool.submit(self._store, fetched, go), fetched.item)

    def release(self) -> None:
        """Let the page handed over be stored now (the next request has left)."""
        self._go.set()

    def _store(self, fetched: Fetched, go: threading.Event) -> URLOutcome:
        go.wait(self._hold)
        return self._finish(fetched)

    def collect(self) -> URLOutcome | None:
        """Wait for the page being stored; return its outcome (None: there was none).

        Raises what storing it raised.
        """
        if self._pending is None:
            return None
        future, _ = self._pending
        self._pending = None
        self.release()
        return future.result()

    def close(self) -> FrontierItem | None:
        """Let a store still running end (it commits or rolls back whole) and stop the
        thread; return the URL of a page that was not stored, to give back."""
        item = self.item
        try:
            self.collect()
            item = None
        except BaseException:  # the crawl is ending on another error: that one is told
            pass
        finally:
            self._pool.shutdown(wait=True)
        return item
