"""What every request handler shares: the read-only engine, settings and caches."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from scraper.config import ServeSettings
from scraper.serve.history import PageBodies

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy import Connection, Engine

__all__ = ["ServeState", "TimedCache"]

T = TypeVar("T")


class TimedCache:
    """Values kept for *seconds*: counts of whole lists, rankings, a search's facets,
    which would otherwise read much of a large archive on each request.

    A value past its time is still answered while one background thread makes the
    new one (so a request never waits for a refresh), and a value nobody has yet is
    made once however many requests ask for it at the same moment.
    """

    def __init__(self, engine: Engine, seconds: float, size: int = 256) -> None:
        self._engine = engine
        self._seconds = seconds
        self._size = size
        self._values: dict[Any, tuple[float, Any]] = {}
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
            if len(self._values) >= self._size and key not in self._values:
                oldest = min(self._values, key=lambda k: self._values[k][0])
                del self._values[oldest]
                self._making.pop(oldest, None)
            self._values[key] = (time.monotonic(), value)


@dataclass
class ServeState:
    """The server's shared state (one per process)."""

    engine: Engine
    settings: ServeSettings
    templates: Environment
    bodies: PageBodies = field(init=False)
    cache: TimedCache = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = PageBodies(self.settings.parsed_pages)
        self.cache = TimedCache(self.engine, self.settings.cache_seconds)

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
