"""The Fetcher against hostile servers on 127.0.0.1: dripping headers, slow robots.txt,
endless 5xx, closed ports, absurd Retry-After and Crawl-delay values.

Every bound asserted here is a number of ``scraper.config`` set small for the test;
the server's own log says what it received.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
from conftest import HOSTILE
from siteserver import ARRIVAL_JITTER, Reply, Site

from scraper.config import FetchSettings
from scraper.errors import BadURL, ConnectionRefused, RateLimited, TransientFetchError
from scraper.fetch import Fetcher, RobotsCache, RobotsFile

FAST = HOSTILE
PAGE = "<html><body><p>Our own little review page.</p></body></html>"


def fetcher(settings: FetchSettings = FAST, delay: float = 0.0, **kwargs: object) -> Fetcher:
    return Fetcher(settings, delay=delay, **kwargs)  # type: ignore[arg-type]


def timed(call: object) -> float:
    began = time.monotonic()
    try:
        call()  # type: ignore[operator]
    finally:
        elapsed = time.monotonic() - began
    return elapsed


@pytest.mark.slow
def test_headers_dripping_a_byte_at_a_time_hit_the_total_deadline(site: Site) -> None:
    # ~450 header bytes at 0.05 s each: 22 s, every byte well within the 0.5 s read timeout.
    site.route("/drip", Reply.dripping_headers(PAGE, every=0.05))
    settings = FAST._replace(max_attempts=1)
    began = time.monotonic()
    with fetcher(settings) as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/drip"))
    assert time.monotonic() - began < FAST.timeouts.total + 0.5
    assert "timed out" in str(info.value) and site.url("/drip") in str(info.value)


@pytest.mark.slow
def test_a_dripping_robots_txt_hits_its_own_shorter_deadline(site: Site) -> None:
    site.route("/robots.txt", Reply.dripping_headers("User-agent: *\n", every=0.05))
    site.route("/a", Reply.html(PAGE))
    began = time.monotonic()
    with fetcher() as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/a"))
    assert time.monotonic() - began < FAST.timeouts.robots + 0.5
    assert "robots.txt could not be fetched" in str(info.value)
    assert site.log.paths() == ["/robots.txt"]


@pytest.mark.slow
def test_one_url_across_its_retries_stays_within_its_time_budget(site: Site) -> None:
    site.route("/down", Reply.status(503))
    settings = FAST._replace(max_attempts=50, backoff_initial=0.2, backoff_max=0.4)
    settings = settings._replace(max_url_time=1.0)
    began = time.monotonic()
    with fetcher(settings) as client, pytest.raises(TransientFetchError):
        client.fetch(site.url("/down"))
    assert time.monotonic() - began <= 1.0 + 0.2
    assert 2 <= site.log.count("/down") < 10


@pytest.mark.slow
def test_a_slow_answer_holds_a_url_no_longer_than_its_budget(site: Site) -> None:
    site.route("/slow", Reply.html(PAGE).slow(5.0))
    settings = FAST._replace(timeouts=FAST.timeouts._replace(read=10.0, total=10.0))
    settings = settings._replace(max_url_time=0.8, max_attempts=5)
    began = time.monotonic()
    with fetcher(settings) as client, pytest.raises(TransientFetchError):
        client.fetch(site.url("/slow"))
    assert time.monotonic() - began < 0.8 + 0.4
    assert site.log.count("/slow") == 1


def closed_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    return sock, sock.getsockname()[1]


def test_a_refused_connection_is_a_quick_clear_failure() -> None:
    sock, port = closed_port()
    allow_all = RobotsCache(
        FAST, loader=lambda host: RobotsFile(host, 404, None, fetched_at=_now())
    )
    waits: list[float] = []
    client = fetcher(robots=allow_all, sleep=waits.append)
    with sock, client, pytest.raises(ConnectionRefused) as info:
        client.fetch(f"http://127.0.0.1:{port}/page")
    assert waits == [FAST.refused_backoff]  # one more try, a moment later
    assert f"connection refused by http://127.0.0.1:{port}" in str(info.value)


def test_a_refused_robots_txt_is_a_refused_connection_not_minutes_of_retries() -> None:
    sock, port = closed_port()
    with sock, fetcher() as client:
        began = time.monotonic()
        with pytest.raises(ConnectionRefused) as info:
            client.fetch(f"http://127.0.0.1:{port}/page")
        assert time.monotonic() - began < 1.0
    assert "connection refused" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("code", "retry_after"),
    [(429, "100000"), (503, "100000"), (503, "Fri, 01 Jan 2100 00:00:00 GMT")],
)
def test_a_retry_after_beyond_the_cap_ends_the_attempt_without_waiting(
    site: Site, code: int, retry_after: str
) -> None:
    site.route("/busy", Reply.status(code, retry_after=retry_after))
    waits: list[float] = []
    with fetcher(sleep=waits.append) as client, pytest.raises(RateLimited) as info:
        client.fetch(site.url("/busy"))
    assert waits == [] and site.log.count("/busy") == 1
    assert info.value.retry_after is not None and info.value.retry_after > FAST.max_retry_after
    assert "longer than the 600 s we wait" in str(info.value)


@pytest.mark.slow
def test_an_absurd_crawl_delay_is_capped_with_one_warning(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.robots("User-agent: *\nCrawl-delay: 100000\n")
    site.route("/p", Reply.html(PAGE))
    settings = FAST._replace(max_crawl_delay=0.3)
    with caplog.at_level(logging.WARNING, logger="scraper"), fetcher(settings) as client:
        began = time.monotonic()
        for _ in range(3):
            client.fetch(site.url("/p"))
        assert time.monotonic() - began < 3 * 0.3 + 0.5
    gaps = site.log.gaps("/")
    assert min(gaps) >= 0.3 - ARRIVAL_JITTER
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "100000" in warnings[0] and "0.3" in warnings[0] and site.base in warnings[0]


@pytest.mark.slow
def test_the_first_request_after_robots_txt_keeps_its_crawl_delay(site: Site) -> None:
    site.robots("User-agent: *\nCrawl-delay: 0.5\n")
    site.route("/p", Reply.html(PAGE))
    with fetcher(delay=0.05) as client:
        client.fetch(site.url("/p"))
    assert site.log.paths() == ["/robots.txt", "/p"]
    assert site.log.gaps("/")[0] >= 0.5 - ARRIVAL_JITTER


@pytest.mark.parametrize(
    "location", ["javascript:alert(1)", "http://xn--/", "http://[::1/", "http://h:99999/"]
)
def test_a_redirect_to_a_url_we_cannot_request_is_a_bad_url(site: Site, location: str) -> None:
    site.route("/r", Reply.redirect(location))
    with fetcher() as client, pytest.raises(BadURL) as info:
        client.fetch(site.url("/r"))
    assert site.url("/r") in str(info.value)


def test_no_answer_at_all_is_a_transient_error(site: Site) -> None:
    site.route("/gone", Reply.closed())
    with fetcher(FAST._replace(max_attempts=2)) as client, pytest.raises(TransientFetchError):
        client.fetch(site.url("/gone"))
    assert site.log.count("/gone") == 2


@pytest.mark.slow
def test_each_request_gets_its_own_deadline_on_a_kept_alive_connection(site: Site) -> None:
    site.route("/drip", Reply.dripping_headers(PAGE, every=0.05))
    site.route("/a", Reply.html(PAGE))
    with fetcher(FAST._replace(max_attempts=1)) as client:
        assert client.fetch(site.url("/a")).status == 200
        with pytest.raises(TransientFetchError):
            client.fetch(site.url("/drip"))
        for _ in range(3):  # slower in all than one deadline, each well within its own
            time.sleep(0.4)
            assert client.fetch(site.url("/a")).status == 200
