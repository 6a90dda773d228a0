"""Job locks on real SQLite files and a real PostgreSQL schema: acquire, refuse,
renew, release, and take-over of a lock whose holder stopped renewing it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from scraper.errors import JobAlreadyRunning
from scraper.jobs.locks import JobLock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_second_contender_is_refused_naming_the_holder(engine: Engine) -> None:
    clock = Clock()
    first = JobLock(engine, "daily", owner="host-a:1:aaaa", clock=clock, ttl=60)
    first.acquire()
    second = JobLock(engine, "daily", owner="host-b:2:bbbb", clock=clock, ttl=60)
    with pytest.raises(JobAlreadyRunning) as refused:
        second.acquire()
    assert "'daily'" in str(refused.value)
    assert "host-a:1:aaaa" in str(refused.value)
    # Another job is independent.
    JobLock(engine, "weekly", owner="host-b:2:bbbb", clock=clock).acquire()


def test_release_lets_the_next_run_in(engine: Engine) -> None:
    first = JobLock(engine, "daily")
    first.acquire()
    first.release()
    second = JobLock(engine, "daily")
    second.acquire()
    assert second.taken_over is None
    holder = second.holder()
    assert holder is not None and holder.owner == second.owner


def test_release_never_deletes_someone_elses_lock(engine: Engine) -> None:
    clock = Clock()
    old = JobLock(engine, "daily", owner="old:1:x", clock=clock, ttl=60)
    old.acquire()
    clock.now += timedelta(seconds=61)
    new = JobLock(engine, "daily", owner="new:2:y", clock=clock, ttl=60)
    new.acquire()
    old.release()  # the killed-and-revived run cleans up: must not free the new holder
    holder = new.holder()
    assert holder is not None and holder.owner == "new:2:y"


def test_an_expired_lock_is_taken_over_and_its_old_owner_learns_it(engine: Engine) -> None:
    clock = Clock()
    killed = JobLock(engine, "daily", owner="dead:1:x", clock=clock, ttl=60)
    killed.acquire()
    clock.now += timedelta(seconds=59)
    with pytest.raises(JobAlreadyRunning):
        JobLock(engine, "daily", clock=clock, ttl=60).acquire()
    clock.now += timedelta(seconds=2)
    taker = JobLock(engine, "daily", owner="live:2:y", clock=clock, ttl=60)
    taker.acquire()
    assert taker.taken_over is not None and taker.taken_over.owner == "dead:1:x"
    assert killed.renew() is False and killed.lost
    assert taker.renew() is True


def test_renewal_keeps_a_long_run_locked(engine: Engine) -> None:
    clock = Clock()
    lock = JobLock(engine, "daily", clock=clock, ttl=60)
    lock.acquire()
    for _ in range(5):  # an hour-long run renewing every 40 s keeps its lock
        clock.now += timedelta(seconds=40)
        assert lock.renew()
        with pytest.raises(JobAlreadyRunning):
            JobLock(engine, "daily", clock=clock, ttl=60).acquire()


@pytest.mark.slow
def test_heartbeat_thread_renews_and_exit_releases(engine: Engine) -> None:
    # A ttl well above the renewal interval (ttl / 4): a heartbeat thread a loaded
    # machine wakes late must not let the lock lapse before the contender tries.
    with JobLock(engine, "daily", ttl=1.2) as lock:
        first = lock.holder()
        assert first is not None
        deadline = time.monotonic() + 10
        while (later := lock.holder()) is not None and later.expires_at <= first.expires_at:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lock"
            time.sleep(0.02)
        assert later is not None  # renewed, never dropped
        with pytest.raises(JobAlreadyRunning):
            JobLock(engine, "daily", ttl=1.2).acquire()
    assert lock.holder() is None


def test_concurrent_contenders_exactly_one_wins(engine: Engine) -> None:
    winners: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(6)

    def contend(index: int) -> None:
        lock = JobLock(engine, "daily", owner=f"worker:{index}:z")
        start.wait()
        try:
            lock.acquire()
        except JobAlreadyRunning:
            refused.append(lock.owner)
        else:
            winners.append(lock.owner)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == 5
