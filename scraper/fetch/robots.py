"""robots.txt per RFC 9309, parsed by protego and cached per host.

Outcomes of fetching ``/robots.txt`` (RFC 9309 section 2.3.1):

- 2xx: its rules apply, matched against our product token; cached ``robots_ttl``.
- 4xx (and a redirect chain too long to follow): no rules, everything allowed.
- 5xx, 429 or a network error: everything disallowed for that host. The failure is
  kept only ``failure_ttl`` seconds, so a later request fetches robots.txt again.

``RobotsCache`` loads files through a loader the ``Fetcher`` provides (so the
robots fetch itself is throttled and identified like any request) and can keep
them in a ``RobotsStore`` (the crawler keeps them in the ``hosts`` table so all
its processes share one copy).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from protego import Protego

from scraper.config import ROBOTS_TOKEN, FetchSettings
from scraper.fetch.urls import host_key

__all__ = [
    "REFUSED",
    "RobotsCache",
    "RobotsFile",
    "RobotsLoader",
    "RobotsPolicy",
    "RobotsStore",
    "capped_crawl_delay",
    "robots_token",
]

log = logging.getLogger(__name__)

#: The error text of a robots.txt fetch whose connection was refused (nothing
#: listens there): the Fetcher turns it into a quick ConnectionRefused.
REFUSED = "connection refused"


@dataclass(frozen=True, slots=True)
class RobotsFile:
    """One fetch of a host's robots.txt.

    ``status`` is None when no HTTP answer came (``error`` says why); ``body`` is
    the text read (at most ``robots_max_bytes``) for a 2xx answer, else None.
    """

    host: str
    status: int | None
    body: str | None
    fetched_at: datetime
    error: str | None = None

    @property
    def failed(self) -> bool:
        """True for 5xx, 429 or no answer: the host is disallowed until a later fetch.

        RFC 9309 lists 429 among the 4xx that allow everything; a host that asks us
        to slow down on robots.txt is treated as unavailable instead (as Google does).
        """
        return self.status is None or self.status >= 500 or self.status == 429


#: Fetches the robots.txt of a host key (``scheme://netloc``); never raises for
#: network trouble: it returns a RobotsFile with ``status=None`` and ``error``.
RobotsLoader = Callable[[str], RobotsFile]


class RobotsPolicy(Protocol):
    """Decides which URLs our user agent may fetch, and how slowly."""

    def allowed(self, url: str) -> bool:
        """Return True when robots.txt lets our user agent fetch *url*."""
        ...

    def crawl_delay(self, host: str) -> float | None:
        """Return the seconds the host asks between requests, or None."""
        ...

    def unavailable(self, host: str) -> str | None:
        """Return why the host's robots.txt could not be read (so all is disallowed
        for now, and worth retrying later), or None when it was read."""
        ...


class RobotsStore(Protocol):
    """Persistence hook: where fetched robots.txt files outlive the process."""

    def load(self, host: str) -> RobotsFile | None:
        """Return the stored file for *host*, or None."""
        ...

    def save(self, robots: RobotsFile) -> None:
        """Store *robots* (replacing the host's previous file)."""
        ...


def robots_token(user_agent: str) -> str:
    """Return the product token of *user_agent* (``name`` of ``name/1.0 (+url)``)."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or ROBOTS_TOKEN


@dataclass(slots=True)
class _Entry:
    file: RobotsFile
    rules: Protego | None
    loaded_at: float


class RobotsCache:
    """An in-memory ``RobotsPolicy``, optionally backed by a ``RobotsStore``.

    ``loader`` may be left None: a ``Fetcher`` given this cache binds its own.
    ``clock`` gives wall-clock epoch seconds (injectable for tests).
    """

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        loader: RobotsLoader | None = None,
        store: RobotsStore | None = None,
        failure_ttl: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or FetchSettings()
        self.loader = loader
        self.store = store
        #: Seconds a failed fetch keeps the host disallowed (settings.robots_failure_ttl).
        self.failure_ttl = self.settings.robots_failure_ttl if failure_ttl is None else failure_ttl
        self.token = robots_token(self.settings.user_agent)
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._warned: set[str] = set()

    def allowed(self, url: str) -> bool:
        """Return True when *url* may be fetched (loading robots.txt first if needed).

        Raises BadURL for a non-http(s) URL.
        """
        entry = self._entry(host_key(url))
        if entry.file.failed:
            return False
        if entry.rules is None:
            return True
        return bool(entry.rules.can_fetch(url, self.token))

    def crawl_delay(self, host: str) -> float | None:
        """Return the larger of the host's Crawl-delay and Request-rate interval, or None.

        A value above ``max_crawl_delay`` is cut to it, with a warning once per host.
        """
        entry = self._entry(host)
        if entry.rules is None:
            return None
        delay = _rules_delay(entry.rules, self.token)
        cap = self.settings.max_crawl_delay
        if delay is not None and delay > cap:
            if host not in self._warned:
                self._warned.add(host)
                log.warning(
                    "%s: robots.txt asks for %g s between requests; keeping %g s "
                    "(the most we wait)",
                    host,
                    delay,
                    cap,
                )
            return cap
        return delay

    def unavailable(self, host: str) -> str | None:
        """Return why *host*'s robots.txt is unreadable right now, or None."""
        file = self._entry(host).file
        if not file.failed:
            return None
        if file.status is not None:
            return f"robots.txt answered {file.status}"
        if file.error == REFUSED:
            return f"robots.txt could not be fetched: {REFUSED}"
        return f"robots.txt could not be fetched ({file.error or 'no answer'})"

    def forget(self, host: str) -> None:
        """Drop the cached file of *host*, so the next check fetches it again."""
        with self._lock:
            self._entries.pop(host, None)

    def _entry(self, host: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(host)
            if entry is not None and self._fresh(entry.file, entry.loaded_at):
                return entry
            host_lock = self._host_locks.setdefault(host, threading.Lock())
        # One thread loads a host's file while others wanting it wait; other hosts
        # are not held up.
        with host_lock:
            with self._lock:
                entry = self._entries.get(host)
            if entry is None or not self._fresh(entry.file, entry.loaded_at):
                entry = self._load(host)
                with self._lock:
                    self._entries[host] = entry
            return entry

    def _fresh(self, file: RobotsFile, loaded_at: float) -> bool:
        ttl = self.failure_ttl if file.failed else self.settings.robots_ttl
        age = self._clock() - min(loaded_at, file.fetched_at.timestamp())
        return age < ttl

    def _load(self, host: str) -> _Entry:
        file = self.store.load(host) if self.store is not None else None
        if file is None or not self._fresh(file, file.fetched_at.timestamp()):
            if self.loader is None:
                raise RuntimeError("RobotsCache has no loader: give it one or use it in a Fetcher")
            file = self.loader(host)
            if self.store is not None:
                self.store.save(file)
        return _Entry(file=file, rules=_parse(file), loaded_at=self._clock())


def _rules_delay(rules: Protego, token: str) -> float | None:
    delays: list[float] = []
    delay = rules.crawl_delay(token)
    if delay is not None:
        delays.append(float(delay))
    rate = rules.request_rate(token)
    if rate is not None and rate.requests:
        delays.append(rate.seconds / rate.requests)
    return max(delays) if delays else None


def capped_crawl_delay(text: str, token: str, cap: float) -> float | None:
    """Return the interval the robots.txt *text* asks *token* for, at most *cap*."""
    delay = _rules_delay(Protego.parse(text), token)
    return None if delay is None else min(delay, cap)


def _parse(file: RobotsFile) -> Protego | None:
    if file.failed or file.status is None or not 200 <= file.status < 300:
        return None
    return Protego.parse(file.body or "")
