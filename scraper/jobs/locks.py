"""One lock per job, in the database, so runs never overlap.

The lock is a row of ``job_locks``: whoever holds the row runs the job. It lives in
the archive's database (not in a file) because the runs that must not overlap may
start on different machines sharing one PostgreSQL database.

- acquire: insert the row, or take over a row whose ``expires_at`` has passed (a run
  that was killed cannot release its lock; it simply stops renewing it). The
  take-over is a compare-and-set on the old owner, so two contenders cannot both win.
- renew: while the run goes on a heartbeat thread pushes ``expires_at`` forward.
- release: delete the row, only if it is still ours.

Times come from the local clock in UTC: machines sharing a database are expected
to keep their clocks in sync (NTP); the TTL of minutes dwarfs any sane skew.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql.dml import Delete, Update

from scraper.config import JobSettings
from scraper.errors import JobAlreadyRunning, StoreError
from scraper.schema.tables import job_locks
from scraper.store.engine import store_error, write_transaction

__all__ = ["JobLock", "LockHolder", "make_owner"]

log = logging.getLogger(__name__)

_SETTINGS = JobSettings()

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """Return a lock owner id naming this process: ``hostname:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or held) a job's lock, and until when."""

    job: str
    owner: str
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """Return a one-line description for messages."""
        return (
            f"held by {self.owner} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC unless renewed"
        )


class JobLock:
    """The lock of one job for one run; usable as a context manager with a heartbeat.

    ``with JobLock(engine, "daily"):`` acquires (raising JobAlreadyRunning when another
    live run holds it), renews every ``ttl / 4`` seconds from a daemon thread (see
    ``JobSettings``: the TTL and the renewals per TTL are settings there), and
    releases on exit.
    """

    def __init__(
        self,
        engine: Engine,
        job: str,
        *,
        ttl: float = _SETTINGS.lock_ttl,
        owner: str | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lock TTL must be positive")
        self.engine = engine
        self.job = job
        self.ttl = ttl
        self.owner = owner or make_owner()
        self.clock = clock
        #: The expired holder this lock was taken over from, if any.
        self.taken_over: LockHolder | None = None
        #: Set when a renewal found the lock no longer ours.
        self.lost = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # --- the three operations ----------------------------------------------------

    def acquire(self) -> None:
        """Take the lock. Raises JobAlreadyRunning naming the live holder, StoreError
        when the database refuses."""
        try:
            self._try_acquire()
        except IntegrityError:
            # Another process inserted the row between our read and our insert.
            raise self._refusal(self.holder()) from None
        except SQLAlchemyError as error:
            raise store_error(self.engine, error) from error

    def renew(self) -> bool:
        """Push the expiry forward; return False (and set ``lost``) when the lock is no
        longer ours. Raises StoreError when the database refuses."""
        expires_at = self.clock() + timedelta(seconds=self.ttl)
        if self._update_own(update(job_locks).values(expires_at=expires_at)) != 1:
            self.lost = True
        return not self.lost

    def release(self) -> None:
        """Delete the lock row if it is still ours. Raises StoreError on refusal."""
        self._update_own(delete(job_locks))

    def holder(self) -> LockHolder | None:
        """Return the current row of this job's lock (anyone's), or None."""

        with self.engine.connect() as conn:
            row = conn.execute(select(job_locks).where(job_locks.c.job == self.job)).first()
        if row is None:
            return None
        return LockHolder(row.job, row.owner, row.acquired_at, row.expires_at)

    # --- context manager with heartbeat -------------------------------------------

    def __enter__(self) -> JobLock:
        self.acquire()
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"lock-heartbeat-{self.job}", daemon=True
        )
        self._heartbeat.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self.release()

    def _beat(self) -> None:
        interval = self.ttl / _SETTINGS.lock_renewals_per_ttl
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    log.error(
                        "job %s: the lock was taken over by another run while this one "
                        "was still going (was the process suspended?)",
                        self.job,
                    )
                    return
            except StoreError as error:
                # Keep trying: a short database outage must not cost us the lock.
                log.warning("job %s: could not renew the lock: %s", self.job, error)

    # --- internals ------------------------------------------------------------------

    def _update_own(self, statement: Update | Delete) -> int:
        """Run *statement* on our own lock row only; return how many rows it touched."""
        own = statement.where(job_locks.c.job == self.job, job_locks.c.owner == self.owner)
        try:
            with write_transaction(self.engine) as conn:
                return conn.execute(own).rowcount
        except SQLAlchemyError as error:
            raise store_error(self.engine, error) from error

    def _try_acquire(self) -> None:
        now = self.clock()
        with write_transaction(self.engine) as conn:
            query = select(job_locks).where(job_locks.c.job == self.job)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                conn.execute(job_locks.insert().values(self._row(now)))
                return
            holder = LockHolder(row.job, row.owner, row.acquired_at, row.expires_at)
            if holder.expires_at > now:
                raise self._refusal(holder)
            if not self._take_over(conn, holder, now):
                raise self._refusal(self.holder())
            self.taken_over = holder

    def _take_over(self, conn: Connection, holder: LockHolder, now: datetime) -> bool:

        result = conn.execute(
            update(job_locks)
            .where(
                job_locks.c.job == self.job,
                job_locks.c.owner == holder.owner,
                job_locks.c.expires_at <= now,
            )
            .values(self._row(now))
        )
        return result.rowcount == 1

    def _row(self, now: datetime) -> dict[str, object]:
        return {
            "job": self.job,
            "owner": self.owner,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
            "crawl_run_id": None,
        }

    def _refusal(self, holder: LockHolder | None) -> JobAlreadyRunning:
        if holder is None:
            return JobAlreadyRunning(f"job {self.job!r} is already running (lock contended)")
        return JobAlreadyRunning(f"job {self.job!r} is already running: lock {holder.describe()}")
