"""Hostile JSON-LD: the schema.org reader yields records or the project's own errors, nothing else.

Hypothesis breaks our fixture pages' JSON-LD (cut, characters spliced in,
braces removed), puts values of the wrong type everywhere a review has a
field (numbers for objects, null, lists of lists, giant strings, deep
nesting, huge arrays, reference cycles), and checks that whatever comes back
honours the record contract.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from conftest import SCHEMAORG_PAGES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ScraperError
from scraper.records import PageResult, Record
from scraper.sites import parse_page
from scraper.sites._decode import decode_html
from scraper.sites.schemaorg import SCHEMAORG

FIXTURES = SCHEMAORG_PAGES
PAGES = {path.name: decode_html(path.read_bytes()) for path in sorted(FIXTURES.glob("*.html"))}
SCRIPT = re.compile(r'(<script type="application/ld\+json"[^>]*>)(.*?)(</script>)', re.DOTALL)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("reviewBody", "reviewRating", "author", "datePublished", "itemReviewed", "name")
FIELDS += ("url", "@id", "@type", "interactionStatistic", "review", "description")


def check(html: str, url: str | None = "https://fuzz.example/page") -> PageResult | None:
    try:
        result = SCHEMAORG.parse(LexborHTMLParser(html), url)
        whole = parse_page(html, url)
    except ScraperError:
        return None
    assert isinstance(result, PageResult) and isinstance(whole, PageResult)
    if result.kind.has_reviews:
        assert result.reviews
    else:
        assert result.problem and not result.reviews
    ids = [record.id for record in result.reviews]
    assert len(ids) == len(set(ids))
    for record in result.reviews:
        assert isinstance(record, Record)
        data = record.to_dict()
        json.dumps(data, allow_nan=False)
        assert record.body is not None or record.rating is not None
        if record.rating is not None:
            assert record.rating.worst <= record.rating.value <= record.rating.best
            assert all(math.isfinite(x) for x in record.rating)
        assert record.id and record.site
        for text in (record.title, record.body, record.author.name, record.item.name):
            assert text is None or isinstance(text, str)
    return result


def with_blocks(name: str, change: Any) -> str:
    return SCRIPT.sub(lambda m: m.group(1) + change(m.group(2)) + m.group(3), PAGES[name])


JSON_PAGES = sorted(name for name, html in PAGES.items() if SCRIPT.search(html))

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 100_000),
    st.just("&amp;" * 2000),
    st.just("<p>" * 3000),
)
values = st.recursive(
    junk,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=5)
    ),
    max_leaves=25,
)


@SETTINGS
@given(name=st.sampled_from(JSON_PAGES), cut=st.floats(0, 1))
def test_truncated_json_ld(name: str, cut: float) -> None:
    check(with_blocks(name, lambda text: text[: int(len(text) * cut)]))


@pytest.mark.slow
@SETTINGS
@given(
    name=st.sampled_from(JSON_PAGES),
    at=st.floats(0, 1),
    splice=st.sampled_from(["", ",", "}", "{", "]", '"', "\\", "\n", "\x00", "NaN", "<!--", "/*"]),
    drop=st.integers(0, 3),
)
def test_characters_spliced_into_json_ld(name: str, at: float, splice: str, drop: int) -> None:
    def change(text: str) -> str:
        where = int(len(text) * at)
        return text[:where] + splice + text[where + drop :]

    check(with_blocks(name, change))


@pytest.mark.slow
@SETTINGS
@given(field=st.sampled_from(FIELDS), value=values, nested=st.booleans())
def test_wrong_types_in_every_field(field: str, value: Any, nested: bool) -> None:
    review: dict[str, Any] = {
        "@type": "Review",
        "author": {"@type": "Person", "name": "Ann"},
        "reviewBody": "Fine.",
        "reviewRating": {"@type": "Rating", "ratingValue": "4"},
        "datePublished": "2024-01-02",
    }
    review[field] = value
    if nested and isinstance(value, dict):
        review["reviewRating"] = value
        review["author"] = [value, [value]]
    document = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "P",
        "review": [review],
    }
    html = f'<script type="application/ld+json">{json.dumps(document)}</script>'
    check(html)


@pytest.mark.slow  # pages thousands of levels deep or wide, 40 of them
@SETTINGS
@given(depth=st.integers(1, 5000), width=st.integers(0, 3000))
def test_deep_nesting_and_huge_arrays(depth: int, width: int) -> None:
    review = '{"@type":"Review","reviewBody":"Deep.","author":"A"}'
    deep = '{"x":' * depth + review + "}" * depth
    wide = "[" + ",".join([review.replace("Deep.", f"Wide {n}.") for n in range(width)]) + "]"
    lists = "[" * depth + review + "]" * depth
    for block in (deep, wide, lists):
        check(f'<script type="application/ld+json">{block}</script>')


@pytest.mark.slow
@SETTINGS
@given(links=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=30))
def test_reference_cycles(links: list[tuple[int, int]]) -> None:
    nodes: list[dict[str, Any]] = [
        {"@id": f"#n{n}", "@type": "Review" if n % 3 == 0 else "Product", "reviewBody": f"N{n}"}
        for n in range(10)
    ]
    for source, target in links:
        nodes[source].setdefault("review", []).append({"@id": f"#n{target}"})
        nodes[target]["itemReviewed"] = {"@id": f"#n{source}"}
        nodes[target]["author"] = {"@id": f"#n{source}"}
    html = f'<script type="application/ld+json">{json.dumps({"@graph": nodes})}</script>'
    result = check(html)
    assert result is not None and len(result.reviews) == 4  # n0, n3, n6, n9


@pytest.mark.slow  # deep markup, one page per example
@SETTINGS
@given(tag=st.sampled_from(["itemscope", "itemprop", "typeof", "property", "itemref"]))
def test_deep_microdata_and_rdfa(tag: str) -> None:
    opening = (
        '<div itemscope itemtype="https://schema.org/Review" itemprop="review" '
        'vocab="https://schema.org/" typeof="Review" property="review" itemref="a b a">'
    )
    body = '<p itemprop="reviewBody" property="reviewBody">Text</p>'
    html = (
        f'<body vocab="https://schema.org/"><div id="a" itemprop="author">Z</div>'
        f"{opening * 300}{body}{'</div>' * 300}<span {tag}>x</span></body>"
    )
    check(html)


ATTRIBUTES = (
    'itemscope itemtype="https://schema.org/Product"',
    'itemscope itemtype="https://schema.org/Review"',
    'itemprop="review"',
    'itemref="nowhere comments"',
    'vocab="https://schema.org/" typeof="Review"',
    'property="reviewBody"',
    'typeof="Product" property="review"',
)


@pytest.mark.slow
@SETTINGS
@given(
    name=st.sampled_from(sorted(PAGES)),
    tags=st.lists(
        st.tuples(
            st.sampled_from(["<html", "<head", "<body", "<div", "<p", "<time"]),
            st.sampled_from(ATTRIBUTES),
        ),
        max_size=4,
    ),
)
def test_item_attributes_on_any_element(name: str, tags: list[tuple[str, str]]) -> None:
    html = PAGES[name]
    for tag, attribute in tags:
        html = html.replace(tag, f"{tag} {attribute}", 1)
    check(html)
