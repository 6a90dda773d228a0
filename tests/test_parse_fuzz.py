"""Damaged pages: parse_page returns a PageResult or raises ParseError, nothing else.

Hypothesis mutates our fixture pages: truncation, removed and duplicated
elements, random bytes spliced in, and text sent under the wrong encoding.
Whatever comes back must still honour the record contract.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from scraper.api import parse_page
from scraper.errors import ParseError
from scraper.records import PageResult

MAL = Path(__file__).resolve().parent.parent / "fixtures" / "mal"
PAGES = {path.name: path.read_bytes() for path in sorted(MAL.glob("*.html"))}
REVIEW_PAGES = [name for name in PAGES if "reviews" in name]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Elements whose loss or repetition matters to the parser.
TARGETS = (
    "div.review-element, div.borderDark, div.update_at, div.username, div.rating, "
    "span.js-hidden, span.js-visible, div.tags div, div.text, div.open, div.mb8, "
    "div.textReadability, span[id^=rhelp], link[rel=canonical], a, td, tr"
)


def check(data: bytes | str, url: str | None = None, charset: str | None = None) -> None:
    try:
        result = parse_page(data, url, charset=charset)
    except ParseError:
        return
    assert isinstance(result, PageResult)
    if result.kind.has_reviews:
        assert result.reviews, "a review page kind must carry reviews"
    else:
        assert result.problem, "a page without reviews must say why"
    ids = [(review.site, review.id) for review in result.reviews]
    assert len(ids) == len(set(ids))
    for review in result.reviews:
        record = review.to_dict()
        json.dumps(record)
        assert record["url"].startswith("https://myanimelist.net/reviews.php?id=")
        assert record["entry"]["url"].startswith("https://myanimelist.net/")
        assert review.date is not None and datetime.fromisoformat(review.date).tzinfo is not None


@SETTINGS
@given(name=st.sampled_from(sorted(PAGES)), cut=st.floats(0, 1))
def test_truncated_pages(name: str, cut: float) -> None:
    data = PAGES[name]
    check(data[: int(len(data) * cut)])


@SETTINGS
@given(
    name=st.sampled_from(REVIEW_PAGES),
    picks=st.lists(st.integers(min_value=0), min_size=1, max_size=4),
    duplicate=st.booleans(),
)
def test_removed_or_duplicated_elements(name: str, picks: list[int], duplicate: bool) -> None:
    tree = LexborHTMLParser(PAGES[name].decode("utf-8"))
    for pick in picks:
        nodes = tree.css(TARGETS)
        if not nodes:
            break
        node = nodes[pick % len(nodes)]
        if duplicate:
            node.insert_after(node.clone())
        else:
            node.decompose()
    html = tree.html or ""
    check(html)
    check(html, "http://127.0.0.1:8080/anime/90001/Starlight_Courier/reviews?p=1")


@SETTINGS
@given(
    name=st.sampled_from(sorted(PAGES)),
    where=st.floats(0, 1),
    junk=st.binary(min_size=1, max_size=300),
)
def test_random_bytes_spliced_in(name: str, where: float, junk: bytes) -> None:
    data = PAGES[name]
    at = int(len(data) * where)
    check(data[:at] + junk + data[at:])


@SETTINGS
@given(
    name=st.sampled_from(sorted(PAGES)),
    encoding=st.sampled_from(["utf-16", "utf-16-be", "cp1252", "latin-1", "shift_jis", "koi8-r"]),
    declared=st.sampled_from([None, "utf-8", "utf-16", "ascii", "nonsense", "cp1252"]),
)
def test_wrong_encodings(name: str, encoding: str, declared: str | None) -> None:
    text = PAGES[name].decode("utf-8")
    check(text.encode(encoding, "replace"), charset=declared)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_arbitrary_input(data: bytes | str) -> None:
    check(data)


@SETTINGS
@given(
    name=st.sampled_from(REVIEW_PAGES),
    pick=st.integers(min_value=0),
    value=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["http://[x", "javascript:void(0)", "//", "?p=", "/profile/", "{"]),
    ),
)
def test_corrupted_attributes(name: str, pick: int, value: str) -> None:
    tree = LexborHTMLParser(PAGES[name].decode("utf-8"))
    nodes = tree.css("a[href], link[href], meta[content], div[data-reactions], div[title]")
    node = nodes[pick % len(nodes)]
    for attribute in ("href", "content", "data-reactions", "title"):
        if attribute in node.attributes:
            node.attrs[attribute] = value
    check(tree.html or "", "http://127.0.0.1:8080/anime/90001/Starlight_Courier/reviews")
