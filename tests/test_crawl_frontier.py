"""The crawler's database parts alone, on a real SQLite file and a real PostgreSQL
schema: the frontier (leases, expiry, retry times, resume), the shared per-host
throttle, the robots.txt store, and seed normalisation."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy.engine import Engine

from scraper.crawl import (
    DatabaseRobotsStore,
    DatabaseThrottle,
    Frontier,
    FrontierItem,
    crawl_key,
    normalise,
    stale_pages,
)
from scraper.errors import BadURL
from scraper.fetch.robots import RobotsFile
from scraper.store.engine import open_engine

HOST = "http://127.0.0.1:8000"


def urls(*paths: str) -> list[tuple[str, str]]:
    return [(f"{HOST}{path}", HOST) for path in paths]


def test_two_workers_never_lease_the_same_url(engine: Engine) -> None:
    one = Frontier(engine, "k", owner="one")
    two = Frontier(engine, "k", owner="two")
    assert one.add(urls("/a", "/b", "/c")) == 3
    assert one.add(urls("/a", "/d")) == 1  # /a is known: never queued twice
    got: dict[str, list[str]] = {"one": [], "two": []}

    def take(frontier: Frontier) -> None:
        while items := frontier.lease(1):
            got[frontier.owner].extend(item.url for item in items)

    threads = [threading.Thread(target=take, args=(f,)) for f in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leased = got["one"] + got["two"]
    assert sorted(leased) == sorted(url for url, _ in urls("/a", "/b", "/c", "/d"))
    assert one.counts().leased == 4


@pytest.mark.slow
@pytest.mark.slow  # waits for a lease to run out
def test_expired_leases_are_handed_out_again(engine: Engine) -> None:
    # A lease long enough that a loaded machine cannot let it run out before the
    # second worker's first try (at a load of 8 on 2 cores a stall of a second is
    # possible); then wait for the expiry itself, not a guessed time.
    quick = Frontier(engine, "k", owner="quick", lease_seconds=3.0)
    quick.add(urls("/a"))
    [first] = quick.lease()
    other = Frontier(engine, "k", owner="other")
    assert other.lease() == []
    [again] = _lease_when_due(other)
    assert again.url == first.url and again.attempts == 2


def _lease_when_due(frontier: Frontier, seconds: float = 10.0) -> list[FrontierItem]:
    """Lease one URL as soon as one is due (failing after *seconds*)."""
    deadline = time.monotonic() + seconds
    while not (items := frontier.lease()):
        assert time.monotonic() < deadline, "nothing became due"
        time.sleep(0.02)
    return items


@pytest.mark.slow
def test_retry_later_waits_for_not_before_and_done_rows_stay_done(engine: Engine) -> None:
    frontier = Frontier(engine, "k", owner="w")
    frontier.add(urls("/a", "/b"))
    a, b = frontier.lease(2)
    retry_at = datetime.now(UTC) + timedelta(seconds=1.0)  # far enough for a busy machine
    frontier.retry_later(a, retry_at, "503")
    frontier.mark_done(b)
    assert frontier.lease() == []
    due = frontier.next_due_at()
    assert due is not None and due > datetime.now(UTC)
    [back] = _lease_when_due(frontier)
    assert datetime.now(UTC) >= retry_at  # not handed out before its time
    assert back.url == a.url
    frontier.mark_failed(back, "gone")
    assert frontier.next_due_at() is None
    counts = frontier.counts()
    assert (counts.done, counts.failed, counts.open) == (1, 1, 0)


def test_prepare_resumes_unfinished_and_restarts_finished_crawls(engine: Engine) -> None:
    frontier = Frontier(engine, "k", owner="w")
    seeds = urls("/seed")
    assert frontier.prepare(seeds) == "new"
    frontier.add(urls("/p2"))
    assert frontier.prepare(seeds) == "resumed"
    assert frontier.counts().total == 2
    for item in frontier.lease(2):
        frontier.mark_done(item)
    assert frontier.prepare(seeds) == "restarted"  # finished: the same command crawls again
    assert frontier.counts().queued == 1
    assert frontier.prepare(seeds, resume=False) == "restarted"
    assert Frontier(engine, "other", owner="w").counts().total == 0  # keys do not mix


def test_a_url_given_back_mid_attempt_keeps_its_attempt_count(engine: Engine) -> None:
    # A crawl stopped (SIGTERM) while processing a URL may have stored its page
    # already: the attempt must count, so the next worker looks for that page first
    # instead of storing it twice. URLs never handed to a worker do not count.
    frontier = Frontier(engine, "k", owner="w")
    frontier.add(urls("/a", "/b"))
    a, b = frontier.lease(2)
    frontier.release(a, attempted=True)
    frontier.release(b)
    again = {item.url: item.attempts for item in frontier.lease(2)}
    assert again == {a.url: 2, b.url: 1}


def test_leases_of_a_dead_process_are_reclaimed_at_once(engine: Engine) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    gone = Frontier(engine, "k", owner=f"{host}:{dead.pid}:x", lease_seconds=3600)
    alive = Frontier(engine, "k", owner=f"{host}:1:x", lease_seconds=3600)  # pid 1 lives
    gone.add(urls("/a", "/b"))
    gone.lease(1)
    alive.lease(1)
    assert gone.reclaim_dead_leases() == 1
    [item] = alive.lease()
    assert item.url == f"{HOST}/a" and item.attempts == 2


@pytest.mark.slow
def test_the_throttle_spaces_turns_across_workers(engine: Engine, db_url: str) -> None:
    second_engine = open_engine(db_url)  # as another process would have
    starts: list[float] = []
    lock = threading.Lock()
    readings = threading.local()

    def clock() -> float:
        readings.last = time.time()
        return float(readings.last)

    def worker(throttle: DatabaseThrottle) -> None:
        for _ in range(4):
            throttle.wait_turn(HOST, 0.05)
            # The start as the throttle read it, its last reading before returning: a
            # time read here is late by however long a loaded machine left this thread
            # waiting, and a late start followed by a prompt one reads as a short gap.
            with lock:
                starts.append(readings.last)
            throttle.release()

    throttles = [
        DatabaseThrottle(engine, clock=clock),
        DatabaseThrottle(second_engine, clock=clock),
    ]
    threads = [threading.Thread(target=worker, args=(t,)) for t in throttles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second_engine.dispose()
    starts.sort()
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert len(starts) == 8 and min(gaps) >= 0.05


@pytest.mark.slow
def test_push_back_and_refusals_delay_every_worker(engine: Engine) -> None:
    throttle = DatabaseThrottle(engine)
    throttle.wait_turn(HOST, 0.0)
    throttle.push_back(HOST, 0.3)  # Retry-After: 0.3
    began = time.monotonic()
    DatabaseThrottle(engine).wait_turn(HOST, 0.0)
    assert time.monotonic() - began >= 0.25
    assert throttle.note_refusal(HOST) == 1
    assert throttle.note_refusal(HOST) == 2
    throttle.release()
    began = time.monotonic()
    throttle.wait_turn(HOST, 0.02)  # the turn claimed above has to run out first
    throttle.release()
    throttle.wait_turn(HOST, 0.02)  # two refusals: 0.05 s base doubled twice
    assert time.monotonic() - began >= 0.2
    throttle.clear_refusals(HOST)
    assert throttle.refusals(HOST) == 0


def test_robots_files_are_shared_through_the_hosts_table(engine: Engine) -> None:
    store = DatabaseRobotsStore(engine)
    assert store.load(HOST) is None
    fetched = datetime.now(UTC).replace(microsecond=0)
    text = "User-agent: *\nDisallow: /x\nCrawl-delay: 3\n"
    store.save(RobotsFile(host=HOST, status=200, body=text, fetched_at=fetched))
    loaded = DatabaseRobotsStore(engine).load(HOST)
    assert loaded is not None
    assert (loaded.status, loaded.body, loaded.fetched_at) == (200, text, fetched)
    store.save(RobotsFile(host=HOST, status=None, body=None, fetched_at=fetched, error="down"))
    failed = store.load(HOST)
    assert failed is not None and failed.failed


def test_seeds_are_normalised() -> None:
    plain = "https://MyAnimeList.net/anime/1/Cowboy_Bebop/reviews?p=1#top"
    assert normalise(plain) == (
        "https://myanimelist.net/anime/1/Cowboy_Bebop/reviews?preliminary=on&spoiler=on"
    )
    assert normalise(plain, mode="incremental").endswith("&sort=newest&spoiler=on")
    assert normalise(plain.replace("spoiler", "x") + "&spoiler=off").count("spoiler=on") == 1
    other = "https://myanimelist.net/reviews.php?p=2&t=anime"
    assert normalise(other) == other  # only entry listings hide reviews
    with pytest.raises(BadURL):
        normalise("mailto:someone@example.org")
    a, b = "http://x/a", "http://x/b"
    assert crawl_key([a, b], mode="full") == crawl_key([b, a, a], mode="full")
    assert crawl_key([a], mode="full") != crawl_key([a], mode="incremental")


def test_stale_pages_are_the_old_pages_of_the_seeds_own_listings(engine: Engine) -> None:
    import sqlalchemy as sa

    from scraper.schema.tables import url_validators

    now = datetime.now(UTC)
    anime = f"{HOST}/reviews.php?t=anime"
    checked = {
        anime: now - timedelta(days=9),  # a seed: asked for anyway
        f"{HOST}/reviews.php?p=2&t=anime": now - timedelta(days=9),
        f"{HOST}/reviews.php?filter=1&p=3&t=anime": now - timedelta(days=8),
        f"{HOST}/reviews.php?p=4&t=anime": now - timedelta(hours=1),  # fresh
        f"{HOST}/reviews.php?p=2&t=manga": now - timedelta(days=9),  # another listing
        f"{HOST}/reviews.phpx?p=2&t=anime": now - timedelta(days=9),  # another address
    }
    with engine.begin() as conn:
        conn.execute(
            sa.insert(url_validators),
            [
                {"url": url, "last_checked_at": at, "last_status": 200}
                for url, at in checked.items()
            ],
        )
    assert stale_pages(engine, [anime], 7 * 86400.0, now=now) == [
        f"{HOST}/reviews.php?p=2&t=anime",
        f"{HOST}/reviews.php?filter=1&p=3&t=anime",
    ]
