"""Storing one page behind the fetch of the next: a worker's helper thread.

Storing a page (compressing it, writing its records) takes longer than fetching
the next one on a quick site, and it needs no network: a worker hands each page
to its ``StoreBehind`` once its next link is known and goes on to the next request
while the page is parsed in full and stored. At most one page waits to be stored
per worker, so a ``kill -9`` loses no more than the pages in flight (their frontier
rows stay leased and are fetched again on resume), and each page is still one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scraper.crawl._frontier import FrontierItem
    from scraper.crawl._page import Fetched, URLOutcome

__all__ = ["StoreBehind"]


class StoreBehind:
    """Runs ``finish(fetched)`` for one page at a time in a thread of its own."""

    def __init__(self, finish: Callable[[Fetched], URLOutcome]) -> None:
        self._finish = finish
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crawl-store")
        self._pending: tuple[Future[URLOutcome], FrontierItem] | None = None

    @property
    def item(self) -> FrontierItem | None:
        """The URL whose page is being stored, if any."""
        return self._pending[1] if self._pending is not None else None

    def submit(self, fetched: Fetched) -> None:
        """Start storing *fetched*; the previous page must have been collected."""
        if self._pending is not None:
            raise RuntimeError("collect the page being stored before handing over another")
        self._pending = (self._pool.submit(self._finish, fetched), fetched.item)

    def collect(self) -> URLOutcome | None:
        """Wait for the page being stored; return its outcome (None: there was none).

        Raises what storing it raised.
        """
        if self._pending is None:
            return None
        future, _ = self._pending
        self._pending = None
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
