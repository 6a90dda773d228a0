"""The crawl frontier: a persistent, shared queue of URLs in the ``frontier`` table.

One crawl's URLs share a ``crawl_key`` (derived from its seeds and mode), so running
the same command again finds the unfinished rows and resumes. Several processes,
on one machine or many, lease rows from the same table:

- on PostgreSQL the lease is ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
  LOCKED)``: two workers never get the same row and never wait for each other;
- on SQLite the same single statement runs in one write transaction, which SQLite
  serialises for the whole file.

A lease expires after ``lease_seconds``; a worker that died (``kill -9``) leaves
its rows leased, and the next lease call after expiry hands them out again.

Row states: ``queued`` → ``leased`` → ``done`` | ``failed`` | ``skipped``, or back
to ``queued`` with a ``not_before`` time (retry later).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl._process import owner_is_dead
from scraper.schema.tables import frontier
from scraper.store.dialect import insert
from scraper.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Frontier", "FrontierCounts", "FrontierItem"]

QUEUED, LEASED, DONE, FAILED, SKIPPED = "queued", "leased", "done", "failed", "skipped"
_OPEN_STATES = (QUEUED, LEASED)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FrontierItem:
    """One leased URL: ``attempts`` counts leases, this one included."""

    id: int
    url: str
    host: str
    depth: int
    attempts: int
    discovered_from: str | None
    added_at: datetime


@dataclass(frozen=True, slots=True)
class FrontierCounts:
    """How many rows of one crawl are in each state."""

    queued: int = 0
    leased: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def open(self) -> int:
        """Rows still to be fetched (queued or leased)."""
        return self.queued + self.leased

    @property
    def total(self) -> int:
        return self.queued + self.leased + self.done + self.failed + self.skipped


class Frontier:
    """The URLs of one crawl (one ``crawl_key``), shared by every worker."""

    def __init__(
        self,
        engine: Engine,
        crawl_key: str,
        *,
        owner: str,
        lease_seconds: float = CrawlSettings().lease_seconds,
        max_wait: float = FetchSettings().max_retry_after,
    ) -> None:
        self.engine = engine
        self.crawl_key = crawl_key
        self.owner = owner
        self.lease_seconds = lease_seconds
        #: A ``not_before`` further ahead than this is taken as now: no URL waits for
        #: an absurd time an older version stored (a Retry-After of the year 2100).
        self.max_wait = max_wait
        self._leasing: sa.Update | None = None
        self._adding: dict[str, Any] = {}

    # --- filling -------------------------------------------------------------------

    def add(
        self,
        urls: Iterable[tuple[str, str]],
        *,
        depth: int = 0,
        discovered_from: str | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Queue ``(canonical_url, host)`` pairs not yet in this crawl; return how many were new.

        A URL already present in any state is left alone: that is what makes "no URL
        fetched twice in a run" hold even when two workers discover the same link.
        With *conn*, the rows are written in that (the caller's) transaction.
        """
        rows = [
            self._row(url, host, depth=depth, discovered_from=discovered_from)
            for url, host in dict(urls).items()
        ]
        if not rows:
            return 0
        added = 0
        with self._writing(conn) as writer:
            statement = self._add_statement(writer)
            for row in rows:
                added += len(writer.execute(statement, row).all())
        return added

    def _add_statement(self, conn: Connection) -> Any:
        """The INSERT of one frontier row, built once per dialect (building it costs
        more than running it); its values are bound parameters."""
        name = conn.dialect.name
        if name not in self._adding:
            columns = ("crawl_key", "url", "host", "depth", "discovered_from", "state")
            values: dict[str, Any] = {c: sa.bindparam(c) for c in (*columns, "attempts")}
            values["added_at"] = sa.bindparam("added_at", type_=frontier.c.added_at.type)
            # RETURNING, not rowcount: drivers disagree on rowcount after DO NOTHING.
            self._adding[name] = (
                insert(conn, frontier)
                .values(values)
                .on_conflict_do_nothing()
                .returning(frontier.c.id)
            )
        return self._adding[name]

    def prepare(self, seeds: Iterable[tuple[str, str]], *, resume: bool = True) -> str:
        """Get the crawl ready to run with *seeds* (``(canonical_url, host)`` pairs).

        Returns ``"resumed"`` when unfinished rows of the same crawl were found (and
        *resume* is true), ``"restarted"`` when a finished (or, without *resume*,
        unfinished) crawl was cleared to start over, else ``"new"``. Leases held by
        dead processes on this machine are handed back first. Check and reset run
        in one transaction under a per-crawl lock, so workers starting together
        agree: one starts the crawl, the others join it.
        """
        self.reclaim_dead_leases()
        f = frontier.c
        mine = f.crawl_key == self.crawl_key
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": self.crawl_key},
                )
            total, still_open = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count(sa.case((f.state.in_(_OPEN_STATES), 1))),
                ).where(mine)
            ).one()
            state = "new"
            if total and resume and still_open:
                state = "resumed"
            elif total:
                conn.execute(sa.delete(frontier).where(mine))
                state = "restarted"
            for url, host in dict(seeds).items():
                row = self._row(url, host, depth=0, discovered_from=None)
                conn.execute(insert(conn, frontier).values(row).on_conflict_do_nothing())
        return state

    def reclaim_dead_leases(self) -> int:
        """Queue again the rows leased by processes of this machine that are gone
        (``kill -9``) without waiting for their leases to expire; return how many."""
        f = frontier.c
        with self.engine.connect() as conn:
            owners = (
                conn.execute(
                    sa.select(f.lease_owner)
                    .where(f.crawl_key == self.crawl_key, f.state == LEASED)
                    .distinct()
                )
                .scalars()
                .all()
            )
        dead = [owner for owner in owners if owner_is_dead(owner)]
        if not dead:
            return 0
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                sa.update(frontier)
                .where(f.crawl_key == self.crawl_key, f.state == LEASED, f.lease_owner.in_(dead))
                .values(state=QUEUED, lease_owner=None, lease_expires_at=None)
            )
        return int(result.rowcount)

    def reset(self) -> int:
        """Forget every row of this crawl (a fresh start); return how many were removed."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(sa.delete(frontier).where(frontier.c.crawl_key == self.crawl_key))
        return int(result.rowcount)

    def _row(
        self, url: str, host: str, *, depth: int, discovered_from: str | None
    ) -> dict[str, Any]:
        return {
            "crawl_key": self.crawl_key,
            "url": url,
            "host": host,
            "depth": depth,
            "discovered_from": discovered_from,
            "state": QUEUED,
            "attempts": 0,
            "added_at": _now(),
        }

    # --- leasing -------------------------------------------------------------------

    def lease(self, limit: int = 1, *, conn: Connection | None = None) -> list[FrontierItem]:
        """Lease up to *limit* URLs that are due; return them (empty when none is due now).

        Due means queued with no ``not_before`` in the future, or leased by a worker
        whose lease has expired. With *conn*, in that (the caller's) write transaction.
        """
        now = _now()
        values = {
            "now": now,
            "far": now + timedelta(seconds=self.max_wait),
            "expires": now + timedelta(seconds=self.lease_seconds),
            "limit": limit,
        }
        with self._writing(conn) as writer:
            rows = writer.execute(self._lease_statement(), values).all()
        items = [
            FrontierItem(
                id=row.id,
                url=row.url,
                host=row.host,
                depth=row.depth,
                attempts=row.attempts,
                discovered_from=row.discovered_from,
                added_at=row.added_at,
            )
            for row in rows
        ]
        return sorted(items, key=lambda item: item.id)

    def _lease_statement(self) -> sa.Update:
        """The lease statement, built once (building it costs more than running it):
        its times and limit are bound parameters."""
        if self._leasing is not None:
            return self._leasing
        f = frontier.c
        now = sa.bindparam("now", type_=f.not_before.type)
        due = sa.and_(
            f.crawl_key == self.crawl_key,
            sa.or_(
                f.state == QUEUED,
                sa.and_(f.state == LEASED, f.lease_expires_at < now),
            ),
            sa.or_(
                f.not_before.is_(None),
                f.not_before <= now,
                f.not_before > sa.bindparam("far", type_=f.not_before.type),
            ),
        )
        # SKIP LOCKED: a row another worker is leasing right now is passed over, not
        # waited for. SQLite ignores the clause; its write lock serialises the UPDATE.
        pick = (
            sa.select(f.id)
            .where(due)
            .order_by(f.id)
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .with_for_update(skip_locked=True)
        )
        self._leasing = (
            sa.update(frontier)
            .where(f.id.in_(pick.scalar_subquery()))
            .values(
                state=LEASED,
                lease_owner=self.owner,
                lease_expires_at=sa.bindparam("expires", type_=f.lease_expires_at.type),
                attempts=f.attempts + 1,
            )
            .returning(f.id, f.url, f.host, f.depth, f.attempts, f.discovered_from, f.added_at)
        )
        return self._leasing

    def give_up_exhausted(self, max_leases: int) -> list[tuple[str, int]]:
        """Mark failed the queued rows already leased *max_leases* times (each run on
        them ended before it could say how the URL went: killed, or stopped); return
        their ``(url, attempts)``. Run when a crawl starts, so a URL that takes its
        crawl down cannot be tried again by every re-run."""
        f = frontier.c
        message = f"given up after {max_leases} attempts that never finished"
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                sa.update(frontier)
                .where(
                    f.crawl_key == self.crawl_key,
                    f.state == QUEUED,
                    f.attempts >= max_leases,
                )
                .values(state=FAILED, last_error=message, done_at=_now())
                .returning(f.url, f.attempts)
            ).all()
        return [(row.url, int(row.attempts)) for row in rows]

    def extend_lease(self, item: FrontierItem) -> None:
        """Push this worker's lease on *item* forward (for a long wait on one URL)."""
        self._finish(item, state=LEASED, lease=True)

    # --- finishing -----------------------------------------------------------------

    def mark_done(
        self, item: FrontierItem, *, raw_page_id: int | None = None, conn: Connection | None = None
    ) -> None:
        """Record *item* as fetched and stored (``raw_page_id``: the stored page), in the
        caller's transaction when *conn* is given."""
        self._finish(item, state=DONE, raw_page_id=raw_page_id, done_at=_now(), conn=conn)

    def mark_failed(self, item: FrontierItem, error: str) -> None:
        """Record *item* as given up on, with the error's message."""
        self._finish(item, state=FAILED, last_error=error, done_at=_now())

    def mark_skipped(self, item: FrontierItem, reason: str) -> None:
        """Record *item* as deliberately not fetched (robots.txt, not HTML...)."""
        self._finish(item, state=SKIPPED, last_error=reason, done_at=_now())

    def retry_later(self, item: FrontierItem, not_before: datetime, error: str) -> None:
        """Give *item* back to the queue, due again at *not_before*."""
        self._finish(item, state=QUEUED, not_before=not_before, last_error=error)

    def release(self, item: FrontierItem, *, attempted: bool = False) -> None:
        """Give *item* back (the crawl stopped). Its attempt does not count unless
        *attempted*: then its page may already be stored, and the attempt count above
        one is what makes the next worker look for that page before fetching again."""
        if attempted:
            self._finish(item, state=QUEUED)
        else:
            self._finish(item, state=QUEUED, attempts=frontier.c.attempts - 1)

    def _finish(
        self,
        item: FrontierItem,
        *,
        state: str,
        lease: bool = False,
        conn: Connection | None = None,
        **values: Any,
    ) -> None:
        expires = _now() + timedelta(seconds=self.lease_seconds) if lease else None
        owner = self.owner if state == LEASED else None
        with self._writing(conn) as writer:
            writer.execute(
                sa.update(frontier)
                .where(frontier.c.id == item.id)
                .values(state=state, lease_owner=owner, lease_expires_at=expires, **values)
            )

    @contextmanager
    def _writing(self, conn: Connection | None) -> Iterator[Connection]:
        """Yield *conn* (the caller's transaction), or a new write transaction."""
        if conn is not None:
            yield conn
            return
        with write_transaction(self.engine) as own:
            yield own

    # --- looking -------------------------------------------------------------------

    def counts(self) -> FrontierCounts:
        """Return how many rows of this crawl are in each state."""
        f = frontier.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(f.state, sa.func.count())
                .where(f.crawl_key == self.crawl_key)
                .group_by(f.state)
            ).all()
        return FrontierCounts(**{str(state): int(count) for state, count in rows})

    def next_due_at(self) -> datetime | None:
        """When the earliest open row becomes due (None: nothing is open)."""
        f = frontier.c
        mine = f.crawl_key == self.crawl_key
        with self.engine.connect() as conn:
            queued = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.count(f.not_before), sa.func.min(f.not_before)
                ).where(mine, f.state == QUEUED)
            ).one()
            leased = conn.execute(
                sa.select(sa.func.min(f.lease_expires_at)).where(mine, f.state == LEASED)
            ).scalar()
        candidates = [_as_utc(leased)] if leased is not None else []
        total, with_time, earliest = queued
        if total > with_time:  # a queued row without not_before is due now
            candidates.append(_now())
        elif earliest is not None:
            earliest = _as_utc(earliest)
            absurd = earliest > _now() + timedelta(seconds=self.max_wait)
            candidates.append(_now() if absurd else earliest)  # absurd: due now (lease)
        return min(candidates) if candidates else None

    def has_rows(self) -> bool:
        """Return True when this crawl has any row at all."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(frontier.c.id).where(frontier.c.crawl_key == self.crawl_key).limit(1)
            ).first()
        return found is not None


def _as_utc(value: Any) -> datetime:
    # MIN() over a CASE loses the column type on SQLite: the value may come back as text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
