"""A bounded soak: one crawl of local sites mixing every hostile behaviour the crawler
must survive with good pages. The crawl must end (within its deadlines), archive
every good URL, and record every bad one.

Marked slow: it runs in well under a minute with the small deadlines below.
"""

from __future__ import annotations

import socket
import time

import pytest
from conftest import HOSTILE
from siteserver import Reply, serve
from standin import BLOCK_PAGE, StandinSite, query, serve_standin, stored_review_ids

from scraper.config import CrawlSettings
from scraper.crawl import crawl

FAST = HOSTILE._replace(
    backoff_initial=0.05,
    backoff_max=0.2,
    max_attempts=2,
    max_retry_after=1.0,
    max_url_time=3.0,
    max_crawl_delay=0.1,
)
SETTINGS = CrawlSettings(delay=0.01, max_url_attempts=2)


def hostile_replies() -> dict[str, Reply]:
    """Path on the hostile site -> the reply it gets, every time it is asked (built when
    the test runs: the gzip bomb takes a second to compress)."""
    return {
        "/drip": Reply.dripping_headers(every=0.05),
        "/hang": Reply.html("<p>late</p>").slow(20.0),
        "/trickle": Reply.trickling("<p>" + "x" * 400, every=0.05),
        "/endless": Reply.endless(),
        "/bomb": Reply.gzip_bomb(),
        "/cut": Reply.truncated("<html>cut", declared=5000),
        "/gone": Reply.status(404),
        "/down": Reply.status(503),
        "/busy": Reply.status(429, retry_after="0.2"),
        "/json": Reply.text("{}", "application/json"),
        "/closed": Reply.closed(),
        "/script": Reply.redirect("javascript:alert(1)"),
        "/idna": Reply.redirect("http://xn--/"),
        "/loop": Reply.redirect("/loop"),
    }


@pytest.mark.slow
def test_a_crawl_through_every_hostile_behaviour_ends_and_archives_every_good_url(
    sqlite_url: str,
) -> None:
    standin = StandinSite()
    standin.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=45)
    standin.add_entry("anime", 2, "Quiet_Harbor", "Quiet Harbor", reviews=25)
    standin.add_entry("anime", 3, "Blocked", "Blocked", reviews=3)
    standin.add_entry("anime", 4, "Huge_Review", "Huge Review", reviews=0)
    standin.add_review("anime", 4, id=2**63 + 5)
    standin.add_entry("anime", 5, "Fifth", "Fifth", reviews=30)
    with socket.socket() as closed, serve_standin(standin) as good, serve() as hostile:
        closed.bind(("127.0.0.1", 0))
        hostile.robots("User-agent: *\nCrawl-delay: 100000\n")  # capped to 0.1 s
        replies = hostile_replies()
        for path, reply in replies.items():
            hostile.route(path, reply)
        good.inject("/anime/3/Blocked/reviews", *[Reply.html(BLOCK_PAGE)] * 9)
        entries = [good.standin.entry_url(good.base, "anime", n) for n in (1, 3, 2, 4, 5)]
        bad = [hostile.url(path) for path in replies]
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/page"
        # Good and bad seeds interleaved, so no two block pages come in a row.
        seeds = [entries[0], *bad[:7], entries[1], entries[2], *bad[7:], refused, *entries[3:]]
        began = time.monotonic()
        report = crawl(sqlite_url, seeds, settings=SETTINGS, fetch_settings=FAST)
        elapsed = time.monotonic() - began
    assert elapsed < 50.0
    good_ids = set().union(*(standin.review_ids("anime", n) for n in (1, 2, 5)))
    assert good_ids <= stored_review_ids(sqlite_url)
    rows = {row.url: row.state for row in query(sqlite_url, "SELECT url, state FROM frontier")}
    assert not [url for url, state in rows.items() if state in ("queued", "leased")]
    recorded = {row.url for row in query(sqlite_url, "SELECT url FROM fetch_errors")}
    blocked = next(url for url in rows if "/anime/3/" in url)
    for url in [*bad, refused, blocked]:
        assert rows[url] in ("failed", "skipped"), url
        assert url in recorded, url
    done = [url for url, state in rows.items() if state == "done"]
    assert len(done) >= 3 + 2 + 2  # every page of entries 1, 2 and 5
    assert report.outcome == "page_errors"
    assert len(report.failures) == report.errors >= len(bad) + 2
