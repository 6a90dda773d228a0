"""What every request handler shares: the read-only engine, settings and caches."""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from scraper.config import ServeSettings
from scraper.serve.history import PageBodies

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy import Connection, Engine

    from scraper.serve.queries import ReviewFilter

__all__ = ["ServeState", "TimedCache"]

T = TypeVar("T")


class TimedCache:
    """Values kept for *seconds*: counts of whole lists, rankings, a search's facets,
    which would otherwise read much of a large archive on each request.

    A value past its time is still answered while one background thread makes the
    new one (so a request never waits for a refresh), and a value nobody has yet is
    made once however many requests ask for it at the same moment.
    """

    def __init__(self, engine: Engine, seconds: float, size: int) -> None:
        self._engine = engine
        self._seconds = seconds
        self._size = size
        self._values: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._making: dict[Any, threading.Lock] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def get(self, key: Any, conn: Connection, make: Callable[[Connection], T]) -> T:
        """Return the value for *key*, made with ``make(conn)`` when there is none yet."""
        with self._lock:
            found = self._values.get(key)
            stale = found is not None and time.monotonic() - found[0] >= self._seconds
            if stale and key not in self._refreshing:
                self._refreshing.add(key)
                threading.Thread(target=self._refresh, args=(key, make), daemon=True).start()
            making = self._making.setdefault(key, threading.Lock()) if found is None else None
        if found is not None:
            return found[1]  # type: ignore[no-any-return]
        assert making is not None
        with making:  # one request makes it; the others wait for it, then read it
            with self._lock:
                found = self._values.get(key)
            if found is None:
                value = make(conn)
                self._keep(key, value)
                return value
            return found[1]  # type: ignore[no-any-return]

    def _refresh(self, key: Any, make: Callable[[Connection], Any]) -> None:
        try:
            with self._engine.connect() as conn:
                self._keep(key, make(conn))
        except Exception as error:  # keep answering the old value; say why once
            print(f"reviews serve: refreshing {key!r} failed: {error}", file=sys.stderr)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _keep(self, key: Any, value: Any) -> None:
        with self._lock:
            self._values.pop(key, None)
            while len(self._values) >= self._size:  # the oldest made make way
                oldest, _ = self._values.popitem(last=False)
                self._making.pop(oldest, None)
            self._values[key] = (time.monotonic(), value)


@dataclass
class ServeState:
    """The server's shared state (one per process)."""

    engine: Engine
    settings: ServeSettings
    templates: Environment
    bodies: PageBodies = field(init=False)
    #: Per search: its first ids and its facets (many keys, the oldest make way).
    cache: TimedCache = field(init=False)
    #: The few whole lists: Jikan's list counts and rankings, the front page's totals
    #: (kept apart, so searches never push them out).
    lists: TimedCache = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = PageBodies(self.settings.parsed_pages)
        self.cache = TimedCache(
            self.engine, self.settings.cache_seconds, self.settings.cache_entries
        )
        self.lists = TimedCache(
            self.engine, self.settings.cache_seconds, self.settings.list_cache_entries
        )

    def search(
        self, conn: Connection, flt: ReviewFilter, *, offset: int, size: int
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """Return one page of *flt*'s records, how many there are (at most the count
        cap) and whether there are more than that.

        A bare full-text search on SQLite is counted by the full-text index itself
        (exactly), and each of its pages' ids are kept as asked. Otherwise the first
        ``count_cap + 1`` ids of a search are made once and kept (cached like
        counts), so its count and every page within them cost one read of the ids;
        pages past them are read directly.
        """
        from scraper.serve import queries

        cap = self.settings.count_cap
        if conn.dialect.name == "sqlite" and queries.search_only(flt):
            terms = flt.query.search or ""
            total = self.cache.get(
                ("fts", terms), conn, lambda c: queries.full_text_count(c, terms)
            )
            page = self.cache.get(
                ("page", flt, offset, size),
                conn,
                lambda c: queries.ordered_ids(c, flt, limit=size, offset=offset),
            )
            return queries.records_of(conn, page), total, False
        ids = self.cache.get(
            ("ids", flt), conn, lambda c: queries.ordered_ids(c, flt, limit=cap + 1)
        )
        if offset + size <= cap:
            records = queries.records_of(conn, ids[offset : offset + size])
        else:
            records = queries.review_page(conn, flt, offset=offset, size=size)
        return records, min(len(ids), cap), len(ids) > cap

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Yield a read-only connection; StoreError when the database refuses it."""
        from sqlalchemy.exc import DBAPIError

        from scraper.store.engine import store_error

        try:
            connection = self.engine.connect()
        except DBAPIError as error:
            raise store_error(self.engine, error) from error
        with connection:
            yield connection
