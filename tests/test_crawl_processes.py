"""``reviews crawl`` as real processes: killed with SIGKILL and resumed, three processes
sharing one frontier on PostgreSQL, a second crawler refused on SQLite, and the
recovery of a page stored by a process that died before marking it done.

Requests are counted and timed from the stand-in server's own log.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from standin import (
    StandinServer,
    StandinSite,
    query,
    serve_standin,
    stored_pages,
    stored_review_ids,
)

from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl import crawl

# Every test here starts crawler processes and waits for them.
pytestmark = pytest.mark.slow

LISTING = "/anime/"


@pytest.fixture
def server() -> Iterator[StandinServer]:
    site = StandinSite(seed=11)
    for mal_id in range(1, 5):
        site.add_entry("anime", mal_id, f"Entry_{mal_id}", f"Entry {mal_id}", reviews=70)
    with serve_standin(site) as running:
        yield running


def seeds(server: StandinServer) -> list[str]:
    return [server.standin.entry_url(server.base, "anime", n) for n in range(1, 5)]


def start(db: str, urls: list[str], *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "scraper", "crawl", *urls, "--db", db, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_complete_and_single(db_url: str, server: StandinServer) -> None:
    """Every page of every chain stored exactly once; every review present."""
    pages = stored_pages(db_url)
    assert len(pages) == 4 * 4  # four entries, 70 reviews = four pages each
    assert set(pages.values()) == {1}
    assert stored_review_ids(db_url) == server.standin.review_ids()


def wait_for_requests(server: StandinServer, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.log.all(LISTING)) < count:
        assert time.monotonic() < deadline, "the crawler made no progress"
        time.sleep(0.005)


def test_a_crawl_killed_again_and_again_ends_complete_without_duplicates(
    tmp_path: Path, server: StandinServer
) -> None:
    db = str(tmp_path / "r.db")
    rng = random.Random(5)
    for _ in range(3):
        process = start(db, seeds(server), "--delay", "0.03")
        # Kill it at an arbitrary point a few pages further on (mid-fetch, mid-store...).
        wait_for_requests(server, len(server.log.all(LISTING)) + rng.randint(1, 3))
        time.sleep(rng.uniform(0.0, 0.03))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.communicate()
    killed_at = len(server.log.all(LISTING))
    assert killed_at < 16  # the kills really interrupted the crawl

    final = start(db, seeds(server), "--delay", "0.03")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err

    db_url = f"sqlite:///{db}"
    assert_complete_and_single(db_url, server)
    outcomes = [row.outcome for row in query(db_url, "SELECT outcome FROM crawl_runs ORDER BY id")]
    assert outcomes[-1] == "success"
    assert set(outcomes[:-1]) <= {"interrupted"}  # the dead runs are said to be so
    assert "crawl run 4 success" in out


def test_a_page_stored_by_a_dead_worker_is_not_fetched_again(
    sqlite_url: str, server: StandinServer
) -> None:
    settings = CrawlSettings(delay=0.01)
    crawl(sqlite_url, seeds(server), settings=settings, fetch_settings=FetchSettings())
    # Make it look as if a worker died right after storing the last page of entry 2
    # and before marking it done: its row is still leased by a process that is gone.
    dead_pid = _a_dead_pid()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        url = conn.execute(
            sa.text("SELECT url FROM frontier WHERE url LIKE '%Entry_2%p=4%'")
        ).scalar_one()
        conn.execute(
            sa.text(
                "UPDATE frontier SET state = 'leased', attempts = 1, "
                "lease_owner = :owner, lease_expires_at = '2999-01-01 00:00:00' WHERE url = :url"
            ),
            {"owner": f"{socket.gethostname()}:{dead_pid}:x", "url": url},
        )
    engine.dispose()
    before = len(server.log.all(LISTING))

    report = crawl(sqlite_url, seeds(server), settings=settings, fetch_settings=FetchSettings())

    assert len(server.log.all(LISTING)) == before  # reclaimed at once, and not fetched
    assert report.pages == 0
    assert_complete_and_single(sqlite_url, server)
    state = query(sqlite_url, f"SELECT state, raw_page_id FROM frontier WHERE url = '{url}'")
    assert state[0].state == "done" and state[0].raw_page_id is not None


def _a_dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.postgres
def test_three_processes_share_one_frontier_and_one_host_budget(
    postgres_url: str, server: StandinServer
) -> None:
    delay = 0.1
    processes = [start(postgres_url, seeds(server), "--delay", str(delay)) for _ in range(3)]
    results = [process.communicate(timeout=120) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, out + err

    requested = server.log.paths(LISTING)
    assert len(requested) == len(set(requested)) == 16  # no URL fetched twice
    gaps = server.log.gaps()  # every request to the host, robots.txt included
    assert min(gaps) >= delay
    assert_complete_and_single(postgres_url, server)
    runs = query(postgres_url, "SELECT pid, pages, outcome FROM crawl_runs")
    assert len(runs) == 3 and {row.outcome for row in runs} == {"success"}
    assert sum(int(row.pages) for row in runs) == 16
    assert sum(1 for row in runs if int(row.pages) > 0) >= 2  # the work was shared


def test_a_second_crawler_on_one_sqlite_file_is_refused_with_code_5(
    tmp_path: Path, server: StandinServer
) -> None:
    db = str(tmp_path / "r.db")
    first_seeds = [seed for seed in seeds(server) if "/anime/2/" not in seed]
    # The first crawl waits on its first page until the second has tried: still
    # crawling however slowly the second one starts up on a busy machine.
    with server.holding(LISTING):
        first = start(db, first_seeds, "--delay", "0.3")
        try:
            wait_for_requests(server, 1)
            second = start(db, seeds(server)[1:2], "--delay", "0.3")
            _, err = second.communicate(timeout=60)
            assert second.returncode == 5, err
            assert "another process is crawling" in err and "PostgreSQL" in err
            assert first.poll() is None  # the first one was not disturbed
        finally:
            first.kill()
            first.communicate()
    assert not server.log.paths("/anime/2/")


def test_sigterm_stops_a_crawl_cleanly_and_the_next_run_completes_it(
    tmp_path: Path, server: StandinServer
) -> None:
    db = str(tmp_path / "r.db")
    with start(db, seeds(server), "--delay", "0.2") as process:
        wait_for_requests(server, 2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    url = f"sqlite:///{db}"
    assert [row[0] for row in query(url, "SELECT outcome FROM crawl_runs")] == ["interrupted"]
    assert query(url, "SELECT count(*) FROM frontier WHERE state = 'leased'") == [(0,)]

    with start(db, seeds(server), "--delay", "0") as again:
        _, stderr = again.communicate(timeout=60)
    assert again.returncode == 0, stderr
    assert_complete_and_single(url, server)
