"""Damaged pages: parse_page returns a PageResult or raises ParseError, nothing else.

Hypothesis mutates our fixture pages: truncation, removed and duplicated
elements, random bytes spliced in, text sent under the wrong encoding, charset
names that are no text encoding (in the header and in a meta tag), and elements
nested far too deep. Whatever comes back must still honour the record contract.
"""

from __future__ import annotations

import codecs
import json
import time
from datetime import datetime

import pytest
from conftest import MAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from scraper.api import parse_page
from scraper.config import DEPTH_SCAN_TAGS, MAX_NESTING_DEPTH
from scraper.errors import ParseError
from scraper.records import PageResult
from scraper.sites._decode import decode_html, sniff_meta_charset
from scraper.sites._limits import nesting_depth

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


@pytest.mark.slow
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


#: Names Python's codecs take that are no text encoding, and names that are nothing.
NOT_TEXT_ENCODINGS = [
    "zlib",
    "zlib_codec",
    "uu",
    "hex",
    "base64",
    "base_64",
    "rot13",
    "rot_13",
    "bz2",
    "quopri",
    "idna",
    "punycode",
    "undefined",
    "unicode_escape",
    "raw_unicode_escape",
    "utf-7",
    "utf-8\x00",
    "\x00",
    "utf-8" + "\x00" * 50,
    "x" * 100_000,
    "iso-2022-kr",  # the Encoding Standard's "replacement": one U+FFFD for the page
]
#: Labels browsers accept, odd spellings included.
WHATWG_LABELS = ["utf8", " UTF-8 ", "latin1", "ascii", "sjis", "x-sjis", "koi8", "utf-16be"]


@pytest.mark.parametrize("name", NOT_TEXT_ENCODINGS, ids=lambda name: repr(name)[:24])
def test_a_charset_that_is_no_text_encoding_falls_back(name: str) -> None:
    text = "<p>caf\u00e9 \u2019 \u6f22</p>"
    data = text.encode()
    assert decode_html(data, name) == text  # the header is ignored: UTF-8
    assert decode_html(codecs.BOM_UTF8 + data, name) == text  # the BOM decides
    meta = f'<meta charset="{name}">'.encode("utf-8", "replace") + data
    assert text in decode_html(meta)  # the meta tag is ignored
    latin = '<meta charset="windows-1252"><p>caf\u00e9</p>'
    assert "caf\u00e9" in decode_html(latin.encode("cp1252"), name)  # the meta tag decides
    check(data, charset=name)
    check(meta)


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf8", "utf-8"),
        (" UTF-8 ", "utf-8"),
        ("latin1", "cp1252"),  # as browsers read it
        ("iso-8859-1", "cp1252"),
        ("ascii", "cp1252"),
        ("sjis", "cp932"),
        ("koi8", "koi8-r"),
        ("utf-16", "utf-16-le"),
    ],
)
def test_text_encoding_labels_are_taken(label: str, codec: str) -> None:
    data = "<p>caf\u00e9 \u0436 \u2019</p>".encode(codec, "replace")
    assert decode_html(data, label) == data.decode(codec, "replace")
    # In a meta tag, UTF-16 cannot be true (the tag itself is ASCII): UTF-8 then.
    meta = sniff_meta_charset(f'<meta charset="{label.strip()}">'.encode())
    assert meta == ("utf-8" if codec.startswith("utf-16") else codec)


CHARSET_NAMES = st.one_of(
    st.sampled_from(NOT_TEXT_ENCODINGS + WHATWG_LABELS),
    st.text(max_size=60),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.:", max_size=30),
)


@SETTINGS
@given(
    name=st.sampled_from(sorted(PAGES)),
    header=st.one_of(st.none(), CHARSET_NAMES),
    meta=st.one_of(st.none(), CHARSET_NAMES),
    bom=st.booleans(),
)
def test_charset_names_in_header_and_meta(
    name: str, header: str | None, meta: str | None, bom: bool
) -> None:
    data = PAGES[name]
    if meta is not None:
        tag = f'<meta charset="{meta}">'.encode("utf-8", "surrogatepass")
        data = data.replace(b"<head>", b"<head>" + tag, 1) if b"<head>" in data else tag + data
    if bom:
        data = codecs.BOM_UTF8 + data
    check(data, charset=header)


# --- nesting ---------------------------------------------------------------------------

DEEP = 100_000


def in_body(page: bytes, html: bytes) -> bytes:
    """Return *page* with *html* at the start of its body."""
    start = page.index(b">", page.index(b"<body")) + 1
    return page[:start] + html + page[start:]


#: 100k levels in about 500 KB, built every way the parser nests (or is asked to).
DEEP_PAGES = {
    "unclosed div": b"<div>" * DEEP,
    "closed div": b"<div>" * (DEEP // 2) + b"x" + b"</div>" * (DEEP // 2),
    "div with stray end tags": b"<div></x>" * (DEEP // 2),
    "self-closed div": b"<div/>" * DEEP,
    "span and b": b"<span><b>" * (DEEP // 2),
    "nested tables": b"<table><tr><td>" * (DEEP // 6),
    "upper case": b"<DIV>" * DEEP,
    "no closing brackets": b"<div" * DEEP,
    "attributes never closed": b'<div class="x" ' * (DEEP // 3),
    "in a review page": in_body(PAGES["anime-reviews-current.html"], b"<div>" * DEEP),
}


@pytest.mark.parametrize("shape", sorted(DEEP_PAGES))
def test_a_deep_page_is_refused_quickly(shape: str) -> None:
    data = DEEP_PAGES[shape]
    for page in (data, data.decode("latin-1"), data.decode("latin-1").encode("utf-16")):
        started = time.monotonic()
        with pytest.raises(ParseError, match="page too deep"):
            parse_page(page, "https://myanimelist.net/anime/1/x/reviews")
        assert time.monotonic() - started < 2, shape


def test_a_500_kb_page_100k_deep_is_answered_in_under_2_seconds() -> None:
    page = b"<html><body>" + b"<div>" * DEEP + b"</body></html>"
    assert 490_000 < len(page) < 520_000
    started = time.monotonic()
    with pytest.raises(ParseError, match="page too deep"):
        parse_page(page)
    assert time.monotonic() - started < 2


def test_real_pages_are_far_from_the_limit() -> None:
    for name, data in PAGES.items():
        depth = nesting_depth(data)
        assert depth < 40, name
        # As deep as lexbor builds them, give or take the elements it closes itself.
        deepest, stack = 0, [(LexborHTMLParser(data).root, 1)]
        while stack:
            node, level = stack.pop()
            deepest = max(deepest, level)
            child = node.child if node is not None else None
            while child is not None:
                stack.append((child, level + 1))
                child = child.next
        assert abs(depth - deepest) < 10, name


def test_a_wide_page_with_many_tags_is_not_too_deep() -> None:
    """Past DEPTH_SCAN_TAGS tags the page is scanned: flat and void tags add no depth."""
    review = PAGES["anime-reviews-current.html"]
    filler = b"<p>line<br><img src=x><input><li>item<td>cell" * (DEPTH_SCAN_TAGS // 5)
    nested = b"<div>" * (MAX_NESTING_DEPTH - 50) + b"</div>" * (MAX_NESTING_DEPTH - 50)
    svg = b"<svg>" + b"<path d='M0 0'/>" * 5000 + b"</svg>"
    script = b"<script>" + b"'<div>' + " * 5000 + b"''</script>"
    page = in_body(review, filler + nested + svg + script)
    assert page.count(b"<") > DEPTH_SCAN_TAGS
    result = parse_page(page, "https://myanimelist.net/anime/90001/x/reviews")
    assert result.reviews


@pytest.mark.slow
@SETTINGS
@given(
    name=st.sampled_from(REVIEW_PAGES),
    where=st.floats(0, 1),
    depth=st.integers(min_value=0, max_value=40_000),
    tags=st.lists(
        st.sampled_from(["div", "span", "b", "font", "a", "ul", "section", "table", "svg", "x-a"]),
        min_size=1,
        max_size=3,
    ),
    closed=st.booleans(),
    stray=st.sampled_from([b"", b"</x>", b"</div>", b"<br>", b"<p>"]),
)
def test_nested_elements_spliced_in(
    name: str, where: float, depth: int, tags: list[str], closed: bool, stray: bytes
) -> None:
    data = PAGES[name]
    at = int(len(data) * where)
    opening = b"".join(f"<{tag}>".encode() for tag in tags) + stray
    closing = b"".join(f"</{tag}>".encode() for tag in reversed(tags)) if closed else b""
    nest = opening * depth + b"deep" + closing * depth
    started = time.monotonic()
    check(data[:at] + nest + data[at:])
    assert time.monotonic() - started < 2
