"""A crawl whose PostgreSQL connection drops (a restart, a failover) waits for the
database for a bounded time, then goes on or gives up clearly.

Restarting the shared server would disturb every other test run, so the crawl talks
to PostgreSQL through a small TCP proxy on 127.0.0.1 that the test cuts: every
connection is closed at once and new ones are refused while it is cut, which is
what a client sees of a restart.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress

import pytest
import sqlalchemy as sa
from standin import StandinServer, StandinSite, query, serve_standin, stored_review_ids

from scraper.cli import ExitCode, explain
from scraper.config import CrawlSettings, FetchSettings, Timeouts
from scraper.crawl import crawl
from scraper.errors import StoreError

FAST = FetchSettings(timeouts=Timeouts(connect=1.0, read=2.0, write=1.0, pool=1.0, total=5.0))


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to *target*; ``cut()`` drops every connection and
    refuses new ones until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                client.close()  # the server is "down": the connection dies at once
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            dropped, self._open = self._open, []
        for sock in dropped:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[str, CuttableProxy]]:
    """The test's PostgreSQL schema, reached through a CuttableProxy."""
    url = sa.make_url(postgres_url)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
    finally:
        proxy.close()


@pytest.fixture
def server() -> Iterator[StandinServer]:
    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=65)  # 4 pages
    with serve_standin(site) as running:
        yield running


def seed(server: StandinServer) -> str:
    return server.standin.entry_url(server.base, "anime", 1)


def crawl_in_thread(db_url: str, url: str, settings: CrawlSettings) -> dict[str, object]:
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["report"] = crawl(db_url, [url], settings=settings, fetch_settings=FAST)
        except BaseException as error:  # handed to the test
            result["error"] = error

    thread = threading.Thread(target=work)
    thread.start()
    result["thread"] = thread
    return result


@pytest.mark.slow
def test_a_crawl_rides_out_a_database_restart(
    proxied: tuple[str, CuttableProxy], server: StandinServer, postgres_url: str
) -> None:
    db_url, proxy = proxied
    settings = CrawlSettings(delay=0.05, database_retry_seconds=20.0)
    with server.holding("/anime/1/Space_Cowboys/reviews?p=2"):
        result = crawl_in_thread(db_url, seed(server), settings)
        wait_for(lambda: any("p=2" in path for path in server.log.paths("/anime/")))
        proxy.cut()  # page 2 is in flight: its answer comes while the database is down
    time.sleep(1.0)
    proxy.restore()
    thread = result["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(timeout=60)
    assert "error" not in result, result.get("error")
    assert stored_review_ids(postgres_url) == server.standin.review_ids()
    states = [row.state for row in query(postgres_url, "SELECT state FROM frontier")]
    assert states == ["done"] * 4
    pages = query(postgres_url, "SELECT requested_url, count(*) FROM raw_pages GROUP BY 1")
    assert all(row[1] == 1 for row in pages) and len(pages) == 4


@pytest.mark.slow
def test_a_database_gone_for_good_ends_the_crawl_with_a_clear_failure(
    proxied: tuple[str, CuttableProxy], server: StandinServer
) -> None:
    db_url, proxy = proxied
    settings = CrawlSettings(delay=0.05, database_retry_seconds=1.5)
    with server.holding("/anime/1/Space_Cowboys/reviews?p=2"):
        result = crawl_in_thread(db_url, seed(server), settings)
        wait_for(lambda: any("p=2" in path for path in server.log.paths("/anime/")))
        proxy.cut()
        began = time.monotonic()
    thread = result["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(timeout=60)
    assert time.monotonic() - began < 1.5 + 8.0
    error = result.get("error")
    assert isinstance(error, StoreError), error
    assert "could not reach it again within 1.5 s" in str(error)
    assert explain(error)[0] == ExitCode.FAILURE


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
