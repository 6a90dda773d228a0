"""The per-host request budget: consecutive request starts to one host are at least
``min_interval`` seconds apart.

``Throttle`` is the protocol the Fetcher calls before every request it starts (the
robots.txt fetch, each retry and each redirect hop included). ``LocalThrottle``
keeps the budget in this process; a database-backed throttle with the same one
method shares it between processes (see ``scraper.crawl``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["LocalThrottle", "Throttle"]


class Throttle(Protocol):
    """Paces request starts per host."""

    def wait_turn(self, host: str, min_interval: float) -> None:
        """Block until a request to *host* may start, then claim that start.

        *host* is a host key (``scheme://netloc``). After this returns, the next
        call for the same host returns no earlier than *min_interval* seconds
        after this one did.
        """
        ...


class LocalThrottle:
    """An in-process, thread-safe ``Throttle``.

    Each caller reserves the next free start time under a lock and then sleeps
    outside it, so threads waiting for different hosts never block each other and
    threads waiting for one host start in turn, *min_interval* apart.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_start: dict[str, float] = {}

    def wait_turn(self, host: str, min_interval: float) -> None:
        """Block until a request to *host* may start; see ``Throttle.wait_turn``."""
        with self._lock:
            now = self._clock()
            previous = self._last_start.get(host)
            start = now if previous is None else max(now, previous + max(min_interval, 0.0))
            self._last_start[host] = start
        if start > now:
            self._sleep(start - now)
            # A late wake-up (a busy machine) moves this start, and so the next one.
            woke = self._clock()
            if woke > start:
                with self._lock:
                    if self._last_start.get(host) == start:
                        self._last_start[host] = woke
