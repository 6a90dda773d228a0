"""The per-host budget, shared through the ``hosts`` table by every crawling process.

``hosts.next_request_at`` (epoch seconds) is the earliest instant anyone may start
the next request to the host. A worker takes its turn with one compare-and-set::

    UPDATE hosts SET next_request_at = now + interval + HOLD
    WHERE host = :host AND next_request_at <= now

Exactly one of several racing workers (threads, processes, machines) changes the
row; the others read the new time and sleep until then. While the request is on
its way the host is *held*, so one request at a time is in flight. When its
answer is in (``release``), the holder sets the next start one interval after

    min(answer, left + min(TRANSIT_ALLOWANCE, TRANSIT_SHARE * interval))

where *left* is the instant the request's last byte was written (the instant the
claim committed, when the Fetcher does not say); see ``scraper.fetch.throttle``.
The interval is one between request starts, as the issue asks, so a crawl idles
no longer than politeness requires; but the server logged the request somewhere
between start and answer, and counting from a quick answer (a nearby site,
loopback) means that however late a descheduled process's request reached the
server, the next one arrives at least an interval after it, as the server sees
it. A slow answer (a far site) adds at most the allowance, which also covers a
request that reached the server that much late.

A holder that died (``kill -9``) blocks the host for ``hold`` seconds at most.

No time further ahead than ``max_wait`` (Retry-After's cap) is ever written, and
one found there (an older version stored a Retry-After of year 2100) is taken as
"now": an absurd stored time must not keep a host from ever being crawled again.

Processes on several machines compare wall clocks: keep them NTP-synchronised.

The table also carries the politeness state that must outlive one process: the
count of consecutive refusals (403/429/block pages), which stretches the interval
(doubling per refusal) and, past a limit, stops the crawl.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from scraper.config import ROBOTS_TOKEN, CrawlTuning, FetchSettings
from scraper.fetch.robots import RobotsFile
from scraper.fetch.throttle import counted_from
from scraper.schema.tables import hosts
from scraper.store.dialect import insert
from scraper.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["DatabaseRobotsStore", "DatabaseThrottle"]

#: The host's hold on a claimed turn, and how refusals stretch its interval.
_TUNING = CrawlTuning()
#: The furthest ahead a host's next request time is stored: Retry-After's cap.
_MAX_WAIT = FetchSettings().max_retry_after


class DatabaseThrottle:
    """A ``Throttle`` whose per-host schedule lives in the database (see module doc)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_sleep: float = _TUNING.max_turn_sleep,
        hold: float = _TUNING.host_hold,
        alone: bool = False,
        max_wait: float = _MAX_WAIT,
    ) -> None:
        self.engine = engine
        self.hold = hold
        self.max_wait = max_wait
        #: No other process uses this database (a SQLite file takes one crawler):
        #: one request at a time per host is then kept in memory, and a host with no
        #: interval to keep costs the database nothing.
        self.alone = alone
        self._gates: dict[str, threading.Lock] = {}
        self._pushed: dict[str, float] = {}  # push_back times, for in-memory turns
        self._clock = clock
        self._sleep = sleep
        # Long waits are cut into pieces so a pushed-back or relaxed schedule is seen.
        self._max_sleep = max_sleep
        self._known: set[str] = set()
        self._seen_refusals: dict[str, int] = {}
        # alone: per host, the earliest next start (stored or pushed) and the last start
        self._next_at: dict[str, float] = {}
        self._last_start: dict[str, float] = {}
        # (host, held_until or None for an in-memory turn, interval, start) per thread
        self._held = threading.local()

    def wait_turn(self, host: str, min_interval: float) -> None:
        """Block until this worker may start a request to *host*; claim that turn.

        The interval after this request is *min_interval* doubled for each refusal
        the host gave recently. A turn this thread still holds is released first
        (its request is over: this thread is about to send another). Raises
        StoreError when the database refuses.
        """
        self.release()
        self._ensure_row(host)
        if not self.alone:
            self._claim(host, min_interval)
            return
        self._enter_gate(host)
        try:
            self._claim_here(host, min_interval)
        except BaseException:
            self._gates[host].release()  # no turn taken: the gate must not stay shut
            raise

    def _claim_here(self, host: str, min_interval: float) -> None:
        """Claim the host's turn in memory (``alone``: no other process crawls this
        database), so no page costs the database a write for pacing: on SQLite that
        write would queue behind the page being stored. What earlier runs stored for
        the host (its next allowed time, its refusals) is read once."""
        if host not in self._next_at:
            with self.engine.connect() as conn:
                stored = conn.execute(
                    sa.select(hosts.c.next_request_at).where(hosts.c.host == host)
                ).scalar()
                self._refusals(conn, host)
            now = self._clock()
            stored = float(stored or 0.0)
            self._next_at[host] = stored if stored <= now + self.max_wait else now
        interval = min(_stretched(min_interval, self._seen_refusals.get(host, 0)), self.max_wait)
        while True:
            # At least the interval after the last start (it may have grown since: a
            # Crawl-delay, refusals), and no earlier than the last answer allows.
            start = max(self._next_at[host], self._last_start.get(host, -interval) + interval)
            now = self._clock()
            if start <= now:
                break
            self._sleep(min(start - now, self._max_sleep))
        self._last_start[host] = now
        self._held.turn = (host, None, interval, now)

    def _claim(self, host: str, min_interval: float) -> None:
        """Claim the host's turn in the database (module doc), sleeping until it is due."""
        while True:
            now = self._clock()
            with write_transaction(self.engine) as conn:
                refusals = self._refusals(conn, host)
                interval = min(_stretched(min_interval, refusals), self.max_wait)
                held_until = now + interval + self.hold
                due = sa.or_(
                    hosts.c.next_request_at <= now,
                    hosts.c.next_request_at > now + self.max_wait + interval + self.hold,
                )
                claimed = conn.execute(
                    sa.update(hosts)
                    .where(hosts.c.host == host, due)
                    .values(next_request_at=held_until)
                ).rowcount
                if not claimed:
                    next_at = conn.execute(
                        sa.select(hosts.c.next_request_at).where(hosts.c.host == host)
                    ).scalar_one()
            if claimed:
                # Read after the commit: the request leaves now, not when we asked.
                self._held.turn = (host, held_until, interval, self._clock())
                return
            self._sleep(min(max(next_at - self._clock(), 0.0), self._max_sleep))

    def release(self, interval: float | None = None, *, sent_ago: float | None = None) -> None:
        """This thread's request is answered: set the host's next turn an interval
        after the request's start (see the module doc for which instant counts).

        *interval* replaces the one claimed with the turn (robots.txt just told us
        its Crawl-delay); *sent_ago* is how long ago the request left. Does nothing
        when the thread holds no turn, or when its hold was replaced meanwhile (a
        Retry-After push, or the hold expired and someone else claimed).
        """
        turn = getattr(self._held, "turn", None)
        if turn is None:
            return
        self._held.turn = None
        host, held_until, claimed_interval, started = turn
        if self.alone:
            self._gates[host].release()
        if interval is None:
            interval = claimed_interval
        now = self._clock()
        since = counted_from(now, started, interval, sent_ago)
        if held_until is None:
            # An in-memory turn: the next one counts from *since*. Nothing is written
            # until ``flush``.
            self._next_at[host] = max(self._next_at.get(host, 0.0), since + interval)
            return
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(hosts)
                .where(
                    hosts.c.host == host,
                    sa.func.abs(hosts.c.next_request_at - held_until) < 1e-6,
                )
                .values(next_request_at=since + interval)
            )

    def answered(self, interval: float | None = None, *, sent_ago: float | None = None) -> None:
        """The Fetcher's word that this thread's request got its answer: ``release``."""
        self.release(interval, sent_ago=sent_ago)

    def push_back(self, host: str, seconds: float) -> None:
        """Let no one start a request to *host* for *seconds* from now (Retry-After),
        *seconds* cut to ``max_wait``."""
        self.release()
        self._ensure_row(host)
        until = self._clock() + min(max(seconds, 0.0), self.max_wait)
        self._pushed[host] = max(self._pushed.get(host, 0.0), until)
        if host in self._next_at:
            self._next_at[host] = max(self._next_at[host], until)
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(hosts)
                .where(hosts.c.host == host, hosts.c.next_request_at < until)
                .values(next_request_at=until)
            )

    def flush(self) -> None:
        """Store each host's next allowed time kept in memory (``alone``), so the next
        run keeps the interval too. Called when the crawl ends."""
        if not self._next_at:
            return
        absurd = self._clock() + self.max_wait
        with write_transaction(self.engine) as conn:
            for host, when in self._next_at.items():
                later = sa.or_(hosts.c.next_request_at < when, hosts.c.next_request_at > absurd)
                conn.execute(
                    sa.update(hosts).where(hosts.c.host == host, later).values(next_request_at=when)
                )

    def _enter_gate(self, host: str) -> None:
        """Take *host*'s in-process gate (one request at a time), once any Retry-After
        pause pushed by this process has run out."""
        gate = self._gates.setdefault(host, threading.Lock())  # setdefault is atomic
        while True:
            gate.acquire()
            wait = self._pushed.get(host, 0.0) - self._clock()
            if wait <= 0:
                return
            gate.release()
            self._sleep(min(wait, self._max_sleep))

    def note_refusal(self, host: str) -> int:
        """Count one more consecutive refusal from *host*; return the new count."""
        self._ensure_row(host)
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(hosts).where(hosts.c.host == host).values(refusals=hosts.c.refusals + 1)
            )
            return self._refusals(conn, host)

    def clear_refusals(self, host: str) -> None:
        """The host served a good page: back to the normal pace."""
        if self._seen_refusals.get(host) == 0:
            return  # none when this worker last looked: spare a write per page
        self._seen_refusals[host] = 0
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(hosts)
                .where(hosts.c.host == host, hosts.c.refusals != 0)
                .values(refusals=0)
            )

    def refusals(self, host: str) -> int:
        """Return the current count of consecutive refusals from *host*."""
        with self.engine.connect() as conn:
            return self._refusals(conn, host)

    def _refusals(self, conn: Connection, host: str) -> int:
        value = conn.execute(sa.select(hosts.c.refusals).where(hosts.c.host == host)).scalar()
        self._seen_refusals[host] = int(value or 0)
        return self._seen_refusals[host]

    def _ensure_row(self, host: str) -> None:
        if host in self._known:
            return
        with write_transaction(self.engine) as conn:
            exists = conn.execute(sa.select(hosts.c.host).where(hosts.c.host == host)).first()
            if exists is None:
                conn.execute(_new_host(conn, host))
        self._known.add(host)


def _stretched(interval: float, refusals: int) -> float:
    """The interval after *refusals* consecutive refusals: doubled for each one.

    A zero interval (``--delay 0``) still backs off, from ``CrawlTuning.min_slowdown_base``.
    """
    if refusals <= 0:
        return interval
    base = max(interval, _TUNING.min_slowdown_base)
    return base * float(2 ** min(refusals, _TUNING.max_slowdown_steps))


class DatabaseRobotsStore:
    """A ``RobotsStore`` keeping each host's robots.txt in the ``hosts`` table, so every
    crawling process (on any machine) fetches a host's file once per TTL, not once each.

    A failed fetch (5xx, no answer) is stored with no status and no text: readers
    treat it as "everything disallowed" for the short failure TTL only.
    """

    def __init__(self, engine: Engine, *, token: str = ROBOTS_TOKEN) -> None:
        self.engine = engine
        self.token = token  # the product token our rules are read for

    def load(self, host: str) -> RobotsFile | None:
        """Return the stored file for *host*, or None when it was never fetched."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    hosts.c.robots_txt, hosts.c.robots_status, hosts.c.robots_fetched_at
                ).where(hosts.c.host == host)
            ).first()
        if row is None or row.robots_fetched_at is None:
            return None
        return RobotsFile(
            host=host,
            status=row.robots_status,
            body=row.robots_txt,
            fetched_at=row.robots_fetched_at,
            error=None if row.robots_status is not None else "stored failure",
        )

    def save(self, robots: RobotsFile) -> None:
        """Store *robots* as the host's current file."""
        values = {
            "robots_txt": robots.body,
            "robots_status": robots.status,
            "robots_fetched_at": robots.fetched_at,
            # Kept for people reading the table (``reviews stats``); the fetcher reads
            # the rules themselves.
            "crawl_delay": self._crawl_delay(robots),
        }
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                sa.update(hosts).where(hosts.c.host == robots.host).values(**values)
            ).rowcount
            if not updated:
                conn.execute(_new_host(conn, robots.host))
                conn.execute(sa.update(hosts).where(hosts.c.host == robots.host).values(**values))

    def _crawl_delay(self, robots: RobotsFile) -> float | None:
        if robots.failed or robots.status is None or not 200 <= robots.status < 300:
            return None
        from protego import Protego

        delay = Protego.parse(robots.body or "").crawl_delay(self.token)
        return float(delay) if delay is not None else None


def _new_host(conn: Connection, host: str) -> sa.Executable:
    """An INSERT of a fresh ``hosts`` row that does nothing when the host is there."""
    row = {"host": host, "next_request_at": 0.0, "refusals": 0}
    statement: sa.Executable = insert(conn, hosts).values(row).on_conflict_do_nothing()
    return statement
