"""The crawl asks for a page's next page before parsing the page in full (issue 13).

A site's ``next_link`` reads the next link and "no block page" off the tree; the
full parse runs in the store thread while the next request is out. These tests hold
the site's promise (``next_link`` agrees with the full parse on every page we have)
and the crawl's order, from the local server's log: the next request has left
before the full parse of the page that named it, and a site whose ``next_link``
cannot tell (or tells wrong) loses no page of the chain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from conftest import CORPUS, FAST, FIXTURES
from selectolax.lexbor import LexborHTMLParser, LexborNode
from standin import BLOCK_PAGE, StandinServer, StandinSite, serve_standin, stored_pages

from scraper.config import CrawlSettings
from scraper.crawl import CrawlReport, crawl
from scraper.records import PageKind, PageResult
from scraper.sites import NextLink, look_at, parse_page
from scraper.sites.mal.current import parse_current_review
from scraper.sites.mal.fields import MalformedReview
from scraper.sites.mal.page import page_context
from scraper.sites.mal.site import MalSite, page_parts

LISTING = "/anime/"
MAL_URL = "https://myanimelist.net/anime/1/X/reviews"


def _pages() -> Iterator[tuple[str, bytes]]:
    """Every MAL-shaped page we have: the fixtures, the stand-in's, the corpus's."""
    for folder in (FIXTURES / "mal", FIXTURES / "history", CORPUS / "mal"):
        for path in sorted(folder.glob("*.html")) if folder.is_dir() else ():
            yield path.name, path.read_bytes()
    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=45)
    entry = site.entries[("anime", 1)]
    for page in (1, 2, 3):
        html = site.listing(entry.path, f"p={page}&spoiler=on&preliminary=on")
        assert html is not None
        yield f"standin page {page}", html.encode()
    yield "standin block page", BLOCK_PAGE.encode()


def _same(one: PageResult, other: PageResult) -> bool:
    return (one.kind, one.url, one.next_url, one.reviews, one.problem) == (
        other.kind,
        other.url,
        other.next_url,
        other.reviews,
        other.problem,
    )


@pytest.mark.parametrize(("name", "body"), list(_pages()), ids=lambda value: str(value)[:40])
def test_next_link_is_the_full_parses_next_link_and_leaves_the_tree_alone(
    name: str, body: bytes
) -> None:
    full = parse_page(body, MAL_URL)
    look = look_at(body, MAL_URL)
    link = look.next_link()
    if link is not None:
        assert link.url == full.next_url
        assert full.kind is not PageKind.BLOCKED
    if full.kind in (PageKind.BLOCKED, PageKind.NOT_REVIEW_PAGE):
        assert link is None  # only the full parse may say what such a page is
    # The full parse on the tree next_link looked at reads what a fresh parse reads.
    assert _same(look.result(), full)


def test_next_link_answers_on_review_pages_with_a_readable_review() -> None:
    answered = {
        name: look_at(body, MAL_URL).next_link()
        for name, body in _pages()
        if parse_page(body, MAL_URL).reviews
    }
    assert answered and all(link is not None for link in answered.values()), answered


def test_a_page_whose_first_review_cannot_be_read_is_left_to_the_full_parse() -> None:
    body = (FIXTURES / "mal" / "anime-reviews-current-malformed.html").read_bytes()
    tree = LexborHTMLParser(body.decode())
    context = page_context(tree, MAL_URL)

    def readable(element: LexborNode) -> bool:
        try:
            parse_current_review(element.clone(), context)
        except MalformedReview:
            return False
        return True

    elements = page_parts(tree).reviews
    assert not all(map(readable, elements))  # the fixture's point: one cannot be read
    link = look_at(body, MAL_URL).next_link()
    assert (link is None) == (not readable(elements[0]))


def test_a_page_look_is_parsed_once() -> None:
    body = (FIXTURES / "mal" / "anime-reviews-current.html").read_bytes()
    look = look_at(body, MAL_URL)
    look.result()
    assert look.next_link() is None  # the tree is consumed: nothing to look at
    with pytest.raises(RuntimeError):
        look.result()


def test_a_bug_a_site_meets_on_a_page_is_that_pages_parse_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a site's code raises on a page (its test of the page, its parser) comes
    out of ``look_at``, ``result`` and ``parse_page`` as a ParseError naming it, with
    the bug as its cause: the crawl, the store and ``reviews parse`` all name the page
    and go on."""
    from scraper.errors import ParseError

    body = (FIXTURES / "mal" / "anime-reviews-current.html").read_bytes()

    def fails(*_: object) -> PageResult:
        raise KeyError("score")

    monkeypatch.setattr(MalSite, "parse", fails)
    look = look_at(body, MAL_URL)
    for attempt in (look.result, lambda: parse_page(body, MAL_URL)):
        with pytest.raises(ParseError) as raised:
            attempt()
        assert raised.value.message == "the parser failed: KeyError: 'score'"
        assert isinstance(raised.value.__cause__, KeyError) and raised.value.url == MAL_URL
    monkeypatch.setattr(MalSite, "matches", fails)
    with pytest.raises(ParseError, match="the parser failed: KeyError") as raised:
        look_at(body, MAL_URL)
    assert isinstance(raised.value.__cause__, KeyError)


# --- the crawl's order, from the server's log -------------------------------------


def run(db_url: str, server: StandinServer, *, delay: float = 0.05) -> CrawlReport:
    settings = CrawlSettings(delay=delay)
    url = server.standin.entry_url(server.base, "anime", 1)
    return crawl(db_url, [url], settings=settings, fetch_settings=FAST)


class ParseWatch:
    """Wraps ``MalSite.parse``: at each full parse of a page that names a next page,
    waits (up to *patience*) for the server to have logged the request after it, and
    records whether it had."""

    def __init__(self, server: StandinServer, patience: float) -> None:
        self.server = server
        self.patience = patience
        self.seen: list[bool] = []
        self.lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = MalSite.parse
        watch = self

        def parse(site: MalSite, tree: LexborHTMLParser, url: str | None) -> PageResult:
            with watch.lock:
                number = len(watch.seen) + 1  # this is the chain's page `number`
            result = original(site, tree, url)
            if result.next_url is None:
                return result
            until = time.monotonic() + watch.patience
            while len(watch.server.log.paths(LISTING)) <= number and time.monotonic() < until:
                time.sleep(0.005)
            with watch.lock:
                watch.seen.append(len(watch.server.log.paths(LISTING)) > number)
            return result

        monkeypatch.setattr(MalSite, "parse", parse)


@pytest.mark.slow
def test_the_next_request_leaves_before_the_page_is_parsed_in_full(
    sqlite_url: str, server: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = ParseWatch(server, patience=3.0)
    watch.install(monkeypatch)
    report = run(sqlite_url, server)
    assert report.outcome == "success" and report.pages == 3
    # Pages 1 and 2 name a next page: each was asked for while its parent was parsed.
    assert watch.seen == [True, True]
    assert len(stored_pages(sqlite_url)) == 3


@pytest.mark.slow
def test_without_next_link_the_page_is_parsed_before_the_next_request(
    sqlite_url: str, server: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MalSite, "next_link", lambda site, tree, url: None)
    watch = ParseWatch(server, patience=0.3)
    watch.install(monkeypatch)
    report = run(sqlite_url, server)
    assert report.outcome == "success" and report.pages == 3
    assert watch.seen == [False, False]  # the next request waited for the parse


@pytest.mark.slow
def test_a_next_link_that_disagrees_with_the_full_parse_loses_no_page(
    sqlite_url: str, server: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A site's slip: "last page" on every page. The full parse's link is queued
    # with the page, so the chain still ends where it ends, each page fetched once.
    monkeypatch.setattr(MalSite, "next_link", lambda site, tree, url: NextLink(None))
    report = run(sqlite_url, server)
    assert report.outcome == "success" and report.pages == 3
    requested = server.log.paths(LISTING)
    assert len(requested) == len(set(requested)) == 3
    assert sorted(stored_pages(sqlite_url).values()) == [1, 1, 1]


@pytest.mark.slow
def test_with_answers_as_long_as_the_delay_no_gap_is_below_it(sqlite_url: str) -> None:
    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=120)
    with serve_standin(site) as running:
        running.answer_delay = 0.15
        report = run(sqlite_url, running, delay=0.15)
        gaps = running.log.gaps()
    assert report.pages == site.chain_length("anime", 1) == 6
    assert len(gaps) == 6 and min(gaps) >= 0.15  # robots.txt's gap too
