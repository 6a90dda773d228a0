"""The Fetcher against a real HTTP server on 127.0.0.1 (tests/siteserver.py).

Timing is asserted from the server's own request log, never from the client's view.
"""

from __future__ import annotations

import tracemalloc

import pytest
from conftest import FAST
from siteserver import ARRIVAL_JITTER, Reply, Site, serve

from scraper.config import USER_AGENT, FetchSettings
from scraper.errors import (
    BadURL,
    BodyTooLarge,
    FetchError,
    HTTPStatusError,
    NotHTML,
    RateLimited,
    RobotsDisallowed,
    TooManyRedirects,
    TransientFetchError,
)
from scraper.fetch import Fetcher

PAGE = "<html><body><p>Our own little review page.</p></body></html>"


def fetcher(settings: FetchSettings = FAST, delay: float = 0.0, **kwargs: object) -> Fetcher:
    return Fetcher(settings, delay=delay, **kwargs)  # type: ignore[arg-type]


def test_fetches_a_page_with_headers_in_order_and_an_honest_user_agent(site: Site) -> None:
    site.route("/a", Reply.html(PAGE, X_First="1", X_Second="2"))
    with fetcher() as client:
        page = client.fetch(site.url("/a"))
    assert page.status == 200
    assert page.body == PAGE.encode()
    assert page.final_url == page.requested_url == site.url("/a")
    names = [name.lower() for name, _ in page.headers]
    assert names.index("x-first") < names.index("x-second")
    assert page.charset == "utf-8"
    assert page.fetched_at.tzinfo is not None
    sent = dict((k.lower(), v) for k, v in page.request_headers)
    assert sent["user-agent"] == USER_AGENT
    served = site.log.all("/a")[0]
    assert served.header("User-Agent") == USER_AGENT
    assert "Mozilla" not in USER_AGENT and "+http" in USER_AGENT


def test_robots_txt_is_fetched_first_and_its_disallow_is_obeyed(site: Site) -> None:
    site.route("/private/x", Reply.html(PAGE))
    site.route("/open", Reply.html(PAGE))
    with fetcher() as client:
        with pytest.raises(RobotsDisallowed) as info:
            client.fetch(site.url("/private/x"))
        client.fetch(site.url("/open"))
        client.fetch(site.url("/open"))
    assert site.url("/private/x") in str(info.value)
    assert site.log.paths() == ["/robots.txt", "/open", "/open"]  # robots.txt read once


def test_robots_rules_for_our_token_win_over_the_star_group(site: Site) -> None:
    site.robots("User-agent: review-archiver\nDisallow: /mine\n\nUser-agent: *\nDisallow: /\n")
    site.route("/other", Reply.html(PAGE))
    with fetcher() as client:
        assert client.fetch(site.url("/other")).status == 200
        with pytest.raises(RobotsDisallowed):
            client.fetch(site.url("/mine/1"))


def test_robots_404_allows_everything(site: Site) -> None:
    site.robots(code=404)
    site.route("/private/x", Reply.html(PAGE))
    with fetcher() as client:
        assert client.fetch(site.url("/private/x")).status == 200


def test_robots_500_disallows_everything_and_is_retried_later(site: Site) -> None:
    site.sequence("/robots.txt", [Reply.status(500), Reply.text("User-agent: *\n", "text/plain")])
    site.route("/a", Reply.html(PAGE))
    from scraper.fetch import RobotsCache

    clock = [1000.0]
    robots = RobotsCache(FAST, failure_ttl=30.0, clock=lambda: clock[0])
    with fetcher(robots=robots) as client:
        with pytest.raises(TransientFetchError) as info:
            client.fetch(site.url("/a"))
        assert "robots.txt answered 500" in str(info.value)
        with pytest.raises(TransientFetchError):
            client.fetch(site.url("/a"))  # the failure is remembered briefly...
        clock[0] += 31.0
        assert client.fetch(site.url("/a")).status == 200  # ...then robots.txt is asked again
    assert site.log.paths() == ["/robots.txt", "/robots.txt", "/a"]


@pytest.mark.slow
def test_crawl_delay_spaces_requests_as_seen_by_the_server(site: Site) -> None:
    site.robots("User-agent: *\nCrawl-delay: 0.3\n")
    site.route("/p", Reply.html(PAGE))
    with fetcher(delay=0.05) as client:
        for _ in range(3):
            client.fetch(site.url("/p"))
    gaps = site.log.gaps("/")
    assert len(gaps) == 3  # robots.txt, then three pages
    assert min(gaps[1:]) >= 0.3 - ARRIVAL_JITTER
    assert gaps[0] >= 0.05 - ARRIVAL_JITTER  # the robots fetch is throttled too


@pytest.mark.slow
def test_delay_wins_when_larger_than_crawl_delay(site: Site) -> None:
    site.route("/p", Reply.html(PAGE))
    with fetcher(delay=0.25) as client:
        for _ in range(3):
            client.fetch(site.url("/p"))
    assert min(site.log.gaps("/")) >= 0.25 - ARRIVAL_JITTER


@pytest.mark.slow
def test_429_with_retry_after_is_honoured(site: Site) -> None:
    site.sequence("/busy", [Reply.status(429, retry_after=1), Reply.html(PAGE)])
    with fetcher() as client:
        page = client.fetch(site.url("/busy"))
    assert page.status == 200
    first, second = site.log.all("/busy")
    assert second.at - first.at >= 1.0 - ARRIVAL_JITTER


def test_retry_after_beyond_the_cap_gives_up_at_once(site: Site) -> None:
    site.route("/busy", Reply.status(429, retry_after=3600))
    waits: list[float] = []
    with fetcher(sleep=waits.append) as client, pytest.raises(RateLimited) as info:
        client.fetch(site.url("/busy"))
    assert info.value.retry_after == 3600
    assert info.value.status == 429
    assert waits == []
    assert site.log.count("/busy") == 1


def test_503_then_200_is_retried_with_backoff(site: Site) -> None:
    site.sequence("/flaky", [Reply.status(503), Reply.status(503), Reply.html(PAGE)])
    waits: list[float] = []
    with fetcher(sleep=waits.append) as client:
        assert client.fetch(site.url("/flaky")).body == PAGE.encode()
    assert site.log.count("/flaky") == 3
    assert len(waits) == 2
    assert 0.01 <= waits[0] <= 0.02 and 0.02 <= waits[1] <= 0.04  # equal jitter, doubling


def test_persistent_5xx_ends_in_a_transient_error(site: Site) -> None:
    site.route("/down", Reply.status(502))
    with fetcher() as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/down"))
    assert info.value.status == 502
    assert site.log.count("/down") == FAST.max_attempts


def test_final_404_is_not_retried(site: Site) -> None:
    with fetcher() as client, pytest.raises(HTTPStatusError) as info:
        client.fetch(site.url("/missing"))
    assert info.value.status == 404
    assert site.log.count("/missing") == 1


@pytest.mark.slow
def test_slow_response_times_out_and_is_retried(site: Site) -> None:
    site.route("/slow", Reply.status(404).slow(1.5))  # even a 404 must come in time
    with fetcher() as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/slow"))
    assert "timed out" in str(info.value)
    assert site.log.count("/slow") == FAST.max_attempts


def test_truncated_body_is_a_transient_error(site: Site) -> None:
    site.route("/cut", Reply.truncated(PAGE, declared=len(PAGE) + 500))
    with fetcher() as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/cut"))
    assert "cut short" in str(info.value)


def test_huge_declared_body_is_refused_before_reading(site: Site) -> None:
    site.route("/big", Reply.truncated("x", declared=50 * 1024 * 1024))
    with fetcher() as client, pytest.raises(BodyTooLarge) as info:
        client.fetch(site.url("/big"))
    assert site.url("/big") in str(info.value)


def test_endless_body_is_refused_at_the_cap(site: Site) -> None:
    site.route("/endless", Reply.endless())
    settings = FetchSettings(timeouts=FAST.timeouts, max_body_bytes=2 * 1024 * 1024)
    with fetcher(settings) as client, pytest.raises(BodyTooLarge):
        client.fetch(site.url("/endless"))


@pytest.mark.slow
def test_gzip_bomb_is_refused_without_inflating_it(site: Site) -> None:
    site.route("/bomb", Reply.gzip_bomb(256 * 1024 * 1024))
    settings = FetchSettings(timeouts=FAST.timeouts, max_body_bytes=4 * 1024 * 1024)
    with fetcher(settings) as client:
        tracemalloc.start()
        try:
            with pytest.raises(BodyTooLarge) as info:
                client.fetch(site.url("/bomb"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "after decompression" in str(info.value)
    assert peak < 24 * 1024 * 1024  # a few times the cap, never the 256 MiB


def test_gzip_body_within_the_cap_is_decoded(site: Site) -> None:
    import gzip

    site.route(
        "/gz",
        Reply(
            headers=(("Content-Type", "text/html"), ("Content-Encoding", "gzip")),
            body=gzip.compress(PAGE.encode()),
        ),
    )
    with fetcher() as client:
        assert client.fetch(site.url("/gz")).body == PAGE.encode()


def test_redirects_are_followed_and_each_hop_is_checked(site: Site) -> None:
    site.route("/old", Reply.redirect("/new", code=301))
    site.route("/new", Reply.html(PAGE))
    site.route("/to-private", Reply.redirect("/private/x"))
    with fetcher() as client:
        page = client.fetch(site.url("/old"))
        with pytest.raises(RobotsDisallowed):
            client.fetch(site.url("/to-private"))
    assert page.final_url == site.url("/new")
    assert page.requested_url == site.url("/old")
    assert site.log.count("/private/x") == 0


def test_redirect_loop_and_long_chains_are_refused(site: Site) -> None:
    site.route("/loop-a", Reply.redirect("/loop-b"))
    site.route("/loop-b", Reply.redirect("/loop-a"))
    for n in range(5):
        site.route(f"/chain{n}", Reply.redirect(f"/chain{n + 1}"))
    settings = FetchSettings(timeouts=FAST.timeouts, max_redirects=3)
    with fetcher(settings) as client:
        with pytest.raises(TooManyRedirects, match="loop"):
            client.fetch(site.url("/loop-a"))
        with pytest.raises(TooManyRedirects, match="more than 3"):
            client.fetch(site.url("/chain0"))
    assert site.log.count("/loop-a") == 1


def test_redirect_to_another_scheme_is_a_bad_url(site: Site) -> None:
    site.route("/ftp", Reply.redirect("ftp://example.org/file"))
    with fetcher() as client, pytest.raises(BadURL, match="redirected"):
        client.fetch(site.url("/ftp"))


def test_non_html_is_refused_with_its_content_type(site: Site) -> None:
    site.route("/data.json", Reply.text("{}", "application/json"))
    with fetcher() as client, pytest.raises(NotHTML) as info:
        client.fetch(site.url("/data.json"))
    assert "application/json" in str(info.value)
    assert site.url("/data.json") in str(info.value)


def test_etag_and_last_modified_give_a_304(site: Site) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    site.page("/cached", PAGE, etag='"v1"', last_modified=stamp)
    with fetcher() as client:
        first = client.fetch(site.url("/cached"))
        again = client.fetch(site.url("/cached"), etag=first.header("etag"))
        since = client.fetch(site.url("/cached"), last_modified=first.header("last-modified"))
        changed = client.fetch(site.url("/cached"), etag='"v0"')
    assert first.status == 200 and first.header("ETag") == '"v1"'
    assert again.status == 304 and again.body == b""
    assert since.status == 304
    assert changed.status == 200
    assert site.log.all("/cached")[1].header("If-None-Match") == '"v1"'


def test_a_304_to_a_plain_request_is_an_error(site: Site) -> None:
    site.route("/odd", Reply(code=304))
    with fetcher() as client, pytest.raises(HTTPStatusError, match="not conditional"):
        client.fetch(site.url("/odd"))


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "file:///etc/passwd", "not a url", "http://", "http://h:99999/"]
)
def test_non_http_urls_are_refused_without_a_request(url: str) -> None:
    with fetcher() as client, pytest.raises(BadURL):
        client.fetch(url)


def test_unreachable_port_is_a_transient_error_naming_the_url() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}/page"
        with fetcher() as client, pytest.raises(TransientFetchError) as info:
            client.fetch(url)
    assert "robots.txt could not be fetched" in str(info.value)
    assert f"127.0.0.1:{port}" in str(info.value)


@pytest.mark.slow
def test_a_shared_robots_cache_outlives_the_fetcher_that_bound_it(site: Site) -> None:
    from scraper.fetch import RobotsCache

    site.route("/a", Reply.html(PAGE))
    robots = RobotsCache(FAST)
    first = fetcher(robots=robots)
    second = fetcher(robots=robots)
    with first:
        first.fetch(site.url("/a"))
    with serve() as other, second:  # a new host: robots.txt must load through `second`
        other.robots("User-agent: *\nDisallow: /no\n")
        other.route("/b", Reply.html(PAGE))
        assert second.fetch(other.url("/b")).status == 200
        with pytest.raises(RobotsDisallowed):
            second.fetch(other.url("/no"))
    assert other.log.paths() == ["/robots.txt", "/b"]


def test_a_fetcher_is_ready_before_it_lends_itself_to_a_shared_robots_cache(
    site: Site,
) -> None:
    from scraper.fetch import RobotsCache, RobotsFile

    loaded: list[RobotsFile] = []

    class EagerCache(RobotsCache):
        """Uses a loader the instant it is bound, as another worker thread may."""

        @property  # type: ignore[override]
        def loader(self) -> object:
            return self._bound

        @loader.setter
        def loader(self, value: object) -> None:
            self._bound = value
            if callable(value):
                loaded.append(value(site.base))

    site.route("/a", Reply.html(PAGE))
    with fetcher(robots=EagerCache(FAST)) as client:
        assert client.fetch(site.url("/a")).status == 200
    assert [file.status for file in loaded] == [200]
    assert site.log.paths() == ["/robots.txt", "/robots.txt", "/a"]


@pytest.mark.slow
def test_a_trickling_body_hits_the_total_timeout(site: Site) -> None:
    site.route("/trickle", Reply.trickling(PAGE, every=0.1, size=4))  # ~1.5 s in all
    settings = FetchSettings(timeouts=FAST.timeouts, max_attempts=1)
    with fetcher(settings, total_timeout=0.5) as client, pytest.raises(TransientFetchError) as info:
        client.fetch(site.url("/trickle"))
    assert "timed out while reading the body" in str(info.value)
    with fetcher(settings) as client:  # each gap is far under the read timeout
        site.route("/trickle-fast", Reply.trickling(PAGE, every=0.01, size=16))
        assert client.fetch(site.url("/trickle-fast")).body == PAGE.encode()


@pytest.mark.parametrize("code", [429, 503])
def test_robots_429_or_503_means_not_now(site: Site, code: int) -> None:
    site.robots(code=code)
    site.route("/a", Reply.html(PAGE))
    with fetcher() as client, pytest.raises(TransientFetchError, match=f"answered {code}"):
        client.fetch(site.url("/a"))
    assert site.log.count("/a") == 0


def test_large_robots_txt_is_read_up_to_its_cap(site: Site) -> None:
    padding = "# " + "x" * 98 + "\n"
    early = padding * 4500  # ~450 KiB of comments before the rule that matters
    site.robots(f"User-agent: *\n{early}Disallow: /deep\n{padding * 3000}Disallow: /beyond\n")
    site.route("/beyond", Reply.html(PAGE))
    with fetcher() as client:
        with pytest.raises(RobotsDisallowed):
            client.fetch(site.url("/deep"))
        assert client.fetch(site.url("/beyond")).status == 200  # past 512 KiB: not read


def test_robots_redirect_is_followed(site: Site) -> None:
    site.route("/robots.txt", Reply.redirect("/real-robots.txt", code=301))
    site.route("/real-robots.txt", Reply.text("User-agent: *\nDisallow: /x\n", "text/plain"))
    with fetcher() as client, pytest.raises(RobotsDisallowed):
        client.fetch(site.url("/x"))


@pytest.mark.slow
def test_each_redirect_hop_waits_its_turn(site: Site) -> None:
    site.route("/r1", Reply.redirect("/r2"))
    site.route("/r2", Reply.redirect("/r3"))
    site.route("/r3", Reply.html(PAGE))
    with fetcher(delay=0.2) as client:
        assert client.fetch(site.url("/r1")).final_url == site.url("/r3")
    assert site.log.paths() == ["/robots.txt", "/r1", "/r2", "/r3"]
    assert min(site.log.gaps()) >= 0.2 - ARRIVAL_JITTER


def test_undecodable_body_is_an_error_naming_the_url(site: Site) -> None:
    site.route(
        "/broken-gzip",
        Reply(headers=(("Content-Type", "text/html"), ("Content-Encoding", "gzip")), body=b"no"),
    )
    site.route(
        "/brotli",
        Reply(headers=(("Content-Type", "text/html"), ("Content-Encoding", "br")), body=b"x"),
    )
    with fetcher() as client:
        with pytest.raises(FetchError, match="corrupt gzip") as info:
            client.fetch(site.url("/broken-gzip"))
        assert site.url("/broken-gzip") in str(info.value)
        with pytest.raises(FetchError, match="unsupported Content-Encoding"):
            client.fetch(site.url("/brotli"))
    assert site.log.all("/brotli")[0].header("Accept-Encoding") == "gzip, deflate"
