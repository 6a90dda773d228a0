"""What every request handler shares: the read-only engine, settings and caches."""

from __future__ import annotations

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
    """Values kept for *seconds*: counts of whole lists and rankings, which would
    otherwise read every review on each request of a large archive."""

    def __init__(self, seconds: float, size: int = 256) -> None:
        self._seconds = seconds
        self._size = size
        self._values: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], T]) -> T:
        """Return the value kept for *key*, or make, keep and return a new one."""
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < self._seconds:
            return found[1]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            if len(self._values) >= self._size:
                self._values.clear()
            self._values[key] = (now, value)
        return value


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
        self.cache = TimedCache(self.settings.cache_seconds)

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
