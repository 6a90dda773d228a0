"""The per-host request budget: consecutive request starts to one host are at least
``min_interval`` seconds apart.

``Throttle`` is the protocol the Fetcher calls before every request it starts (the
robots.txt fetch, each retry and each redirect hop included) and once its answer
is in. ``LocalThrottle`` keeps the budget in this process; a database-backed
throttle with the same methods shares it between processes (see ``scraper.crawl``).

Which instant an interval counts from (``counted_from``): the moment the request
left (its last byte written; its start when that is not known), except that a
quick answer moves it to the answer, at most an allowance later. The server logs
a request somewhere between its departure and its answer; counting from a quick
answer keeps the gaps the server sees at least the interval however late a
request arrived, while a slow, far site costs at most the allowance per request:
``min(TRANSIT_ALLOWANCE, TRANSIT_SHARE * interval)``, so that a site answering in
about the interval is asked no slower than one request per interval plus 2.5 %.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from scraper.config import FetchSettings

__all__ = ["TRANSIT_ALLOWANCE", "TRANSIT_SHARE", "LocalThrottle", "Throttle", "counted_from"]

#: How far after a request left its answer may move the next start (module doc)...
TRANSIT_ALLOWANCE = FetchSettings().transit_allowance
#: ...and at most this share of the interval.
TRANSIT_SHARE = FetchSettings().transit_share


def counted_from(now: float, start: float, interval: float, sent_ago: float | None) -> float:
    """Return the instant the host's next interval counts from (see the module doc).

    *now* is the answer's arrival, *start* the turn's start, *sent_ago* how long ago
    the request's last byte was written (None: unknown), all on one clock.
    """
    left = start if sent_ago is None else max(start, now - sent_ago)
    return min(now, left + min(TRANSIT_ALLOWANCE, TRANSIT_SHARE * max(interval, 0.0)))


class Throttle(Protocol):
    """Paces request starts per host."""

    def wait_turn(self, host: str, min_interval: float) -> None:
        """Block until a request to *host* may start, then claim that start.

        *host* is a host key (``scheme://netloc``). After this returns, the next
        call for the same host returns no earlier than *min_interval* seconds
        after this one did.
        """
        ...

    def answered(self, interval: float | None = None, *, sent_ago: float | None = None) -> None:
        """The request of the turn this thread claimed last got its answer (or
        failed): the next start may count from now (see the module doc).

        *interval*, when given, replaces the interval claimed with the turn (the
        answer was robots.txt, and its Crawl-delay holds from the next request on).
        *sent_ago*: seconds since the request's last byte left, when known.
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
        self._interval: dict[str, float] = {}
        self._claimed = threading.local()  # (host, start) of this thread's last turn

    def wait_turn(self, host: str, min_interval: float) -> None:
        """Block until a request to *host* may start; see ``Throttle.wait_turn``."""
        with self._lock:
            now = self._clock()
            previous = self._last_start.get(host)
            start = now if previous is None else max(now, previous + max(min_interval, 0.0))
            self._last_start[host] = start
            self._interval[host] = max(min_interval, 0.0)
        if start > now:
            self._sleep(start - now)
            # A late wake-up (a busy machine) moves this start, and so the next one.
            woke = self._clock()
            if woke > start:
                with self._lock:
                    if self._last_start.get(host) == start:
                        self._last_start[host] = woke
                start = woke
        self._claimed.turn = (host, start)

    def answered(self, interval: float | None = None, *, sent_ago: float | None = None) -> None:
        """Count the host's next interval from this answer when it came quickly.

        (*interval* needs no keeping here: the next ``wait_turn`` brings the new one,
        and it is counted from this start.)"""
        turn = getattr(self._claimed, "turn", None)
        if turn is None:
            return
        self._claimed.turn = None
        host, start = turn
        with self._lock:
            since = counted_from(self._clock(), start, self._interval.get(host, 0.0), sent_ago)
            # Only while no later start was reserved meanwhile (threads share hosts).
            if self._last_start.get(host) == start:
                self._last_start[host] = since
