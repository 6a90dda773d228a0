"""The fetch room's parts on their own: URLs, Retry-After, capped decoding, the
throttle and the robots cache with a persistence hook (no network needed)."""

from __future__ import annotations

import threading
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from scraper.config import FetchSettings
from scraper.errors import BadURL, FetchError
from scraper.fetch import (
    LocalThrottle,
    RobotsCache,
    RobotsFile,
    canonicalize,
    host_key,
    parse_retry_after,
    require_http,
    robots_url,
)
from scraper.fetch.body import CappedBody, read_capped
from scraper.fetch.robots import robots_token
from scraper.fetch.throttle import TRANSIT_ALLOWANCE, TRANSIT_SHARE


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://MyAnimeList.NET:443/anime/1/Cowboy_Bebop/reviews", None),
        ("https://myanimelist.net/anime/1/Cowboy_Bebop/reviews#top", None),
        ("http://Example.org:80", "http://example.org/"),
        ("http://example.org:8080/A?b=2&a=1", "http://example.org:8080/A?a=1&b=2"),
        (
            "https://x.org/r?spoiler=on&p=2&preliminary=on",
            "https://x.org/r?p=2&preliminary=on&spoiler=on",
        ),
        ("http://x.org/a%20b?q=a+b", "http://x.org/a%20b?q=a+b"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
    ],
)
def test_canonicalize(url: str, canonical: str | None) -> None:
    expected = canonical or "https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"
    assert canonicalize(url) == expected
    assert canonicalize(expected) == expected  # idempotent


def test_canonicalize_keeps_path_case_and_repeated_keys() -> None:
    assert canonicalize("http://x.org/Profile/Bob?t=b&t=a") == "http://x.org/Profile/Bob?t=a&t=b"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "ftp://x.org/",
        "javascript:alert(1)",
        "x.org/page",
        "http:///nohost",
        "http://x.org:notaport/",
        "http://x.org/a b",
        "https://x.org:70000/",
    ],
)
def test_bad_urls_are_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(BadURL) as info:
        require_http(url)
    assert info.value.url == (url.strip() or url)


def test_host_key_and_robots_url() -> None:
    assert host_key("HTTPS://User@Example.org:443/a?b") == "https://example.org"
    assert host_key("http://127.0.0.1:8123/x") == "http://127.0.0.1:8123"
    assert robots_url("http://127.0.0.1:8123/x/y?z") == "http://127.0.0.1:8123/robots.txt"


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_read_capped_plain_gzip_deflate_and_multi_member() -> None:
    data = b"<html>" + b"review text " * 1000
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    gzipped = gz.compress(data) + gz.flush()
    chunks = [gzipped[i : i + 100] for i in range(0, len(gzipped), 100)]
    assert read_capped(chunks, "gzip", 1 << 20) == data
    assert read_capped([zlib.compress(data)], "deflate", 1 << 20) == data
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert read_capped([raw.compress(data) + raw.flush()], "deflate", 1 << 20) == data
    assert read_capped([gzipped + gzipped], "gzip", 1 << 20) == data + data
    assert read_capped([data[:10], data[10:]], "identity", len(data)) == data


@pytest.mark.slow
def test_read_capped_stops_at_the_cap_and_refuses_odd_encodings() -> None:
    bomb = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()
    with pytest.raises(CappedBody) as info:
        read_capped([body], "gzip", 1 << 20)
    assert len(info.value.partial) == 1 << 20
    with pytest.raises(CappedBody):
        read_capped([b"x" * 10, b"y" * 10], "", 15)
    with pytest.raises(FetchError, match="unsupported"):
        read_capped([b"x"], "br", 100)
    with pytest.raises(FetchError, match="corrupt"):
        read_capped([b"not gzip at all"], "gzip", 100)


def test_local_throttle_spaces_starts_per_host_across_threads() -> None:
    # A frozen clock: each thread's sleep says exactly which start it was given,
    # whatever the machine's scheduling does to real time.
    waits: dict[str, list[float]] = {"a": [], "b": []}
    lock = threading.Lock()
    local = threading.local()

    def sleep(seconds: float) -> None:
        with lock:
            waits[local.host].append(round(seconds, 6))

    throttle = LocalThrottle(clock=lambda: 100.0, sleep=sleep)

    def worker(host: str) -> None:
        local.host = host
        throttle.wait_turn(host, 0.1)

    threads = [threading.Thread(target=worker, args=(h,)) for h in "aaaabb"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits["a"]) == [0.1, 0.2, 0.3]  # the first start needs no wait
    assert waits["b"] == [0.1]  # host b keeps its own queue


def test_local_throttle_counts_from_a_late_wake_up() -> None:
    now = [0.0]

    def oversleep(seconds: float) -> None:
        now[0] += seconds + 0.5  # a busy machine woke us half a second late

    waits: list[float] = []
    throttle = LocalThrottle(clock=lambda: now[0], sleep=lambda s: (waits.append(s), oversleep(s)))
    throttle.wait_turn("h", 1.0)  # t=0, no wait
    throttle.wait_turn("h", 1.0)  # waits 1 s, wakes at 1.5
    throttle.wait_turn("h", 1.0)  # must wait until 2.5, not 2.0
    assert waits == [1.0, 1.0]
    assert now[0] == 3.0


def test_local_throttle_counts_from_a_quick_answer_but_not_a_slow_one() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    throttle = LocalThrottle(clock=lambda: now[0], sleep=sleep)
    throttle.wait_turn("h", 1.0)  # starts at 0
    now[0] = 0.02
    throttle.answered()  # a quick answer: the server saw the request by now
    throttle.wait_turn("h", 1.0)
    assert waits == [1.0] and now[0] == 1.02
    now[0] = 1.02 + 0.4
    throttle.answered()  # a slow answer moves the next start by the allowance only
    throttle.wait_turn("h", 1.0)
    allowance = min(TRANSIT_ALLOWANCE, TRANSIT_SHARE * 1.0)
    assert allowance < TRANSIT_ALLOWANCE  # a share of the interval: 2.5 % at most
    assert now[0] == pytest.approx(1.02 + allowance + 1.0)
    started = now[0]
    now[0] += 0.5
    # The request left 0.3 s after its turn began (a slow connect): counted from then.
    throttle.answered(sent_ago=0.2)
    throttle.wait_turn("h", 1.0)
    assert now[0] == pytest.approx(started + 0.3 + allowance + 1.0)


def test_local_throttle_really_sleeps() -> None:
    throttle = LocalThrottle()
    began = time.monotonic()
    for _ in range(3):
        throttle.wait_turn("h", 0.05)
    assert time.monotonic() - began >= 0.1


class MemoryStore:
    """A RobotsStore kept in a dict: what the crawler does with the hosts table."""

    def __init__(self) -> None:
        self.files: dict[str, RobotsFile] = {}
        self.saves = 0

    def load(self, host: str) -> RobotsFile | None:
        return self.files.get(host)

    def save(self, robots: RobotsFile) -> None:
        self.saves += 1
        self.files[robots.host] = robots


def test_robots_cache_uses_the_store_and_expires_after_the_ttl() -> None:
    clock = [1_000_000.0]
    loads: list[str] = []

    def loader(host: str) -> RobotsFile:
        loads.append(host)
        at = datetime.fromtimestamp(clock[0], UTC)
        return RobotsFile(host, 200, "User-agent: *\nDisallow: /x\nCrawl-delay: 4\n", at)

    store = MemoryStore()
    settings = FetchSettings(robots_ttl=100.0)
    cache = RobotsCache(settings, loader=loader, store=store, clock=lambda: clock[0])
    assert not cache.allowed("http://h.org/x/1")
    assert cache.allowed("http://h.org/y")
    assert cache.crawl_delay("http://h.org") == 4.0
    assert cache.unavailable("http://h.org") is None
    assert loads == ["http://h.org"] and store.saves == 1
    # A second process (a new cache) reads the stored copy instead of fetching.
    other = RobotsCache(settings, loader=loader, store=store, clock=lambda: clock[0])
    assert not other.allowed("http://h.org/x/2")
    assert loads == ["http://h.org"]
    clock[0] += 101.0
    assert other.allowed("http://h.org/y")
    assert loads == ["http://h.org", "http://h.org"]  # stale: fetched again


def test_robots_cache_network_failure_disallows_briefly() -> None:
    clock = [5000.0]
    answers = [None, 200]

    def loader(host: str) -> RobotsFile:
        at = datetime.fromtimestamp(clock[0], UTC)
        status = answers.pop(0)
        return RobotsFile(host, status, "" if status else None, at, error="ConnectError: refused")

    store = MemoryStore()
    cache = RobotsCache(loader=loader, store=store, failure_ttl=10.0, clock=lambda: clock[0])
    assert not cache.allowed("http://down.org/a")
    assert "ConnectError" in (cache.unavailable("http://down.org") or "")
    clock[0] += 5.0
    assert not cache.allowed("http://down.org/a")  # still within the failure TTL
    clock[0] += 6.0
    assert cache.allowed("http://down.org/a")  # fetched again, now readable
    assert answers == [] and store.saves == 2


def test_a_stored_failure_is_not_trusted_for_long() -> None:
    store = MemoryStore()
    old = datetime.now(UTC) - timedelta(seconds=120)
    store.save(RobotsFile("http://s.org", 503, None, old))
    fresh = RobotsFile("http://s.org", 404, None, datetime.now(UTC))
    cache = RobotsCache(loader=lambda host: fresh, store=store)
    assert cache.allowed("http://s.org/a")  # the old 503 expired: 404 means allow all


def test_robots_request_rate_counts_as_a_delay() -> None:
    now = datetime.now(UTC)
    cache = RobotsCache(
        loader=lambda host: RobotsFile(host, 200, "User-agent: *\nRequest-rate: 1/5\n", now)
    )
    assert cache.crawl_delay("http://r.org") == 5.0


def test_robots_token_is_the_product_name() -> None:
    assert robots_token("review-archiver/0.1.0 (+https://x)") == "review-archiver"
    assert robots_token("MyBot (+mailto:me@x.org)") == "MyBot"
    assert robots_token("") == "review-archiver"


def test_fetchers_share_one_verifying_tls_context() -> None:
    # Loading the CA bundle costs ~50 ms: once a process, not once a fetcher.
    import ssl

    from scraper.fetch.deadline import DeadlineBackend, deadline_transport, tls_context

    first, second = (deadline_transport(DeadlineBackend()) for _ in range(2))
    context = tls_context()
    assert first._pool._ssl_context is context and second._pool._ssl_context is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
