"""The schema.org reader's small parts: dates, numbers, ratings, bodies, JSON repair, limits."""

from __future__ import annotations

import pytest

from scraper.config import SchemaOrgLimits
from scraper.sites.schemaorg import read_page, read_reviews
from scraper.sites.schemaorg.fields import read_rating
from scraper.sites.schemaorg.text import inline_text, render_body
from scraper.sites.schemaorg.values import parse_date, parse_number

LIMITS = SchemaOrgLimits()


@pytest.mark.parametrize(
    ("given", "iso"),
    [
        ("2016-01-01", "2016-01-01"),
        ("2017-11-03T03:01:00+09:00", "2017-11-03T03:01:00+09:00"),
        ("2017-11-03T03:01:00Z", "2017-11-03T03:01:00+00:00"),
        ("2022-05-26T08:39:59+0000", "2022-05-26T08:39:59+00:00"),
        ("2022-05-26 08:39", "2022-05-26T08:39:00"),
        ("2022-05-26T08:39:59.250-03:30", "2022-05-26T08:39:59.250-03:30"),
        ("2022-05-26T08:39:59.2504Z", "2022-05-26T08:39:59.250400+00:00"),
        ("2024-05-19T21:14:03.000Z", "2024-05-19T21:14:03.000+00:00"),
        ("March 3, 2023", "2023-03-03"),
        ("Mar. 3rd 2023", "2023-03-03"),
        ("3 March 2023", "2023-03-03"),
        ("2023/03/04", "2023-03-04"),
        ("03/04/2023", "2023-03-04"),  # month first with slashes
        ("25/12/2023", "2023-12-25"),  # ...unless the first number cannot be a month
        ("04.03.2023", "2023-03-04"),  # day first with dots
        ("20230304", "2023-03-04"),
        ("Fri, 03 Mar 2023 10:00:00 +0100", "2023-03-03T10:00:00+01:00"),
        ("March 3, 2023 at 12:05 am", "2023-03-03T00:05:00"),
        ("1678000000", "2023-03-05T07:06:40+00:00"),
        ("1678000000000", "2023-03-05T07:06:40+00:00"),
        ("3. März 2023", "2023-03-03"),
        ("3 de marzo de 2023", "2023-03-03"),
        ("le 3 mars 2023", "2023-03-03"),
        ("1/2/20", "2020-01-02"),
        ("Fri Mar 03 2023 10:00:00 GMT+0100 (Central European Time)", "2023-03-03T10:00:00+01:00"),
        ("March 3, 2023 10:00 UTC", "2023-03-03T10:00:00+00:00"),
        ("2024-03-11 18:42:07 UTC", "2024-03-11T18:42:07+00:00"),  # Judge.me
        ("2024-03-11T18:42:07 GMT", "2024-03-11T18:42:07+00:00"),
        ("2023", "2023"),  # only a year: that precise, no invented January 1st
        ("2024-06", "2024-06"),
    ],
)
def test_dates_as_given_never_shifted(given: str, iso: str) -> None:
    assert parse_date(given) == iso


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "yesterday",
        "2023-02-30",
        "2023-13-01",
        "2023-01-01T25:00",
        "13/13/2023",
        "2023-01-01T10:00+25:00",
        None,
        True,
        [],
        {},
        12,
        float("nan"),
        "9" * 500,
        "1800",
        "2024-13",
    ],
)
def test_unreadable_dates_are_null(given: object) -> None:
    assert parse_date(given) is None


@pytest.mark.parametrize(
    ("given", "value", "best"),
    [
        ("4,5", 4.5, None),
        (" 4.5 ", 4.5, None),
        ("4/5", 4.0, 5.0),
        ("8 out of 10", 8.0, 10.0),
        ("80%", 80.0, 100.0),
        (["3"], 3.0, None),
        (4, 4.0, None),
        ("5 stars", 5.0, None),
    ],
)
def test_numbers_as_strangers_write_them(given: object, value: float, best: float | None) -> None:
    number = parse_number(given)
    assert number is not None and number.value == value and number.best == best


@pytest.mark.parametrize("given", ["NaN", "inf", "abc", "", "1e400", True, None, {}, float("inf")])
def test_not_numbers(given: object) -> None:
    assert parse_number(given) is None


@pytest.mark.parametrize(
    ("rating", "scale"),
    [
        ({"ratingValue": "4"}, (4, 5, 1)),
        ({"ratingValue": "8"}, (8, 10, 1)),  # no scale given: out of 10, not 8 of 5
        ({"ratingValue": 0}, (0, 5, 0)),
        ({"ratingValue": "4,5", "bestRating": "5", "worstRating": "1"}, (4.5, 5, 1)),
        ({"ratingValue": "3", "bestRating": "10", "worstRating": "0"}, (3, 10, 0)),
        ("5", (5, 5, 1)),
        (4.5, (4.5, 5, 1)),
        ([{"ratingValue": "2"}], (2, 5, 1)),
    ],
)
def test_ratings_with_their_scale(rating: object, scale: tuple[float, float, float]) -> None:
    read, problem = read_rating(rating, {}, LIMITS)
    assert problem is None and read is not None
    assert (read.value, read.best, read.worst) == scale


@pytest.mark.parametrize(
    "rating",
    [
        {"ratingValue": "7", "bestRating": "5"},
        {"ratingValue": "3", "bestRating": "1", "worstRating": "5"},
        {"ratingValue": "1e9", "bestRating": "1e10"},
        {"ratingValue": "NaN"},
        {"ratingValue": "5000"},
    ],
)
def test_absurd_ratings_are_refused_and_say_why(rating: object) -> None:
    read, problem = read_rating(rating, {}, LIMITS)
    assert read is None and problem


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ("Line one\r\nLine two", "Line one\nLine two"),
        ("  a   b  \n\n\n\n c ", "a b\n\nc"),
        ("It&amp;#039;s &amp;amp; good", "It's & good"),
        ("<p>One</p><p>Two<br>Three</p>", "One\n\nTwo\nThree"),
        ("See <a href='/x'>this</a>\nthen go", "See this\nthen go"),
        ("&lt;p&gt;Escaped&lt;/p&gt; markup", "Escaped\n\nmarkup"),
        ("x<y and I <3 it", "x<y and I <3 it"),
        ("tab\there\u00a0nbsp", "tab here nbsp"),
        ("<script>alert(1)</script>Safe", "Safe"),
        ("&" + "amp;" * 40 + "lt;", "&" + "amp;" * 28 + "lt;"),
    ],
)
def test_bodies_by_the_contract(raw: str, body: str) -> None:
    assert render_body(raw) == body


def test_all_number_dates_follow_the_page_language() -> None:
    assert parse_date("03/04/2023", day_first=True) == "2023-04-03"
    assert parse_date("03/04/2023") == "2023-03-04"
    assert parse_date("25/12/2023") == parse_date("25/12/2023", day_first=True) == "2023-12-25"
    assert parse_date("12/25/2023", day_first=True) == "2023-12-25"  # no 25th month
    html = '<html lang="{}"><script type="application/ld+json">{}</script></html>'
    review = REVIEW.replace("2024-01-02", "03/04/2023")
    uk = read_reviews(html.format("en-GB", review), "https://shop.example/p")
    us = read_reviews(html.format("en-US", review), "https://shop.example/p")
    assert (uk[0].date, us[0].date) == ("2023-04-03", "2023-03-04")


def test_labels_are_one_line() -> None:
    assert inline_text("  Tom &amp;amp; Jess\n ") == "Tom & Jess"
    assert inline_text("<b>Bold</b> name") == "Bold name"


def _page(*blocks: str) -> str:
    scripts = "".join(f'<script type="application/ld+json">{block}</script>' for block in blocks)
    return f"<html><head>{scripts}</head><body></body></html>"


REVIEW = '{"@type":"Review","author":"Ann","reviewBody":"Fine.","datePublished":"2024-01-02"}'


@pytest.mark.parametrize(
    "block",
    [
        REVIEW[:-1] + ",}",  # a trailing comma
        f"[{REVIEW},]",
        REVIEW.replace("Fine.", "Fine.\n"),  # raw newline in a string
        f"<!-- {REVIEW} -->",
        f"//<![CDATA[\n{REVIEW}\n//]]>",
        f"{REVIEW};",
        f'{{"@type":"Thing"}} {REVIEW}',
        f'{{"@type":"Thing"}},{REVIEW}',
        REVIEW.replace('"', "&quot;"),
        REVIEW.replace('"', "&#34;"),
        REVIEW.replace('"', "&#x22;"),
        REVIEW.replace("{", '{/* theme */ "x": "https://a.example/b", ', 1),  # a JS comment
    ],
)
def test_common_json_breakage_is_repaired(block: str) -> None:
    records = read_reviews(_page(block), "https://shop.example/p")
    assert [record.author.name for record in records] == ["Ann"]


def test_a_broken_block_does_not_lose_the_others_and_is_named() -> None:
    reading = read_page_of(_page('{"@type": "Review", "author": ', REVIEW))
    assert [record.author.name for record in reading.records] == ["Ann"]
    assert reading.problems and "block 1" in reading.problems[0]


def read_page_of(html: str):  # type: ignore[no-untyped-def]
    from selectolax.lexbor import LexborHTMLParser

    return read_page(LexborHTMLParser(html), "https://shop.example/p")


def test_reference_cycles_and_self_references_end() -> None:
    graph = (
        '{"@graph":[{"@id":"#a","@type":"Product","name":"A","review":{"@id":"#r"},'
        '"isRelatedTo":{"@id":"#b"}},{"@id":"#b","@type":"Product","isRelatedTo":{"@id":"#a"}},'
        '{"@id":"#r","@type":"Review","reviewBody":"Loops.","itemReviewed":{"@id":"#r"},'
        '"author":{"@id":"#r"}}]}'
    )
    records = read_reviews(_page(graph), "https://shop.example/p")
    assert len(records) == 1 and records[0].body == "Loops."


def test_limits_bound_the_work() -> None:
    from selectolax.lexbor import LexborHTMLParser

    many = ",".join(
        f'{{"@type":"Review","author":"U{n}","reviewBody":"Text {n}","datePublished":"2024-01-02"}}'
        for n in range(50)
    )
    html = _page(f'{{"@type":"Product","name":"P","review":[{many}]}}')
    small = SchemaOrgLimits(max_reviews=10)
    assert len(read_reviews(html, "https://shop.example/p", limits=small)) == 10
    tree = LexborHTMLParser(html)
    assert "stopped at 10 reviews" in read_page(tree, None, small).problems[-1]
    deep = '{"a":' * 200 + REVIEW + "}" * 200
    assert read_reviews(_page(deep), "https://shop.example/p") == ()  # deeper than max_depth
    shallow = SchemaOrgLimits(max_depth=500)
    assert len(read_reviews(_page(deep), "https://shop.example/p", limits=shallow)) == 1


def _product(*reviews: str) -> str:
    block = f'{{"@type":"Product","name":"P","url":"https://shop.example/p","review":[{",".join(reviews)}]}}'
    return _page(block)


def test_an_address_shared_by_several_reviews_is_not_their_id() -> None:
    shared = '{"@type":"Review","url":"/all-reviews","author":"%s","reviewBody":"B %s"}'
    records = read_reviews(_product(shared % ("A", 1), shared % ("B", 2)), "https://shop.example/p")
    assert all(record.id.startswith("key:") for record in records)
    assert all(record.url == "https://shop.example/p" for record in records)
    own = '{"@type":"Review","@id":"#r%s","author":"%s","reviewBody":"B %s"}'
    records = read_reviews(_product(own % (1, "A", 1), own % (2, "B", 2)), "https://shop.example/p")
    assert [record.id for record in records] == [
        "https://shop.example/p#r1",
        "https://shop.example/p#r2",
    ]
    blank = '{"@type":"Review","@id":"_:b0","author":"A","reviewBody":"B"}'
    assert read_reviews(_product(blank), "https://shop.example/p")[0].id.startswith("key:")


def test_next_page_is_this_documents_next_page_only() -> None:
    from selectolax.lexbor import LexborHTMLParser

    from scraper.sites.schemaorg import SCHEMAORG

    base = '<link rel="canonical" href="https://shop.example/p/reviews">'
    review = f'<script type="application/ld+json">{REVIEW}</script>'
    cases = {
        '<a rel="next nofollow" href="?page=2">': "https://shop.example/p/reviews?page=2",
        '<a rel="next" href="/p/reviews/page/2/">': "https://shop.example/p/reviews/page/2/",
        '<a rel="next" href="/another-post/">': None,
        '<a rel="next" href="https://elsewhere.example/p/reviews?page=2">': None,
        '<a rel="next" href="javascript:void(0)">': None,
    }
    for link, wanted in cases.items():
        tree = LexborHTMLParser(f"<html><head>{base}{review}</head><body>{link}x</a></body></html>")
        assert SCHEMAORG.parse(tree, "https://shop.example/p/reviews").next_url == wanted, link


def test_a_review_of_nothing_named_is_of_the_pages_one_product_only() -> None:
    orphan = '{"@type":"Review","author":"A","reviewBody":"Which one?"}'
    one = _page('{"@type":"Product","name":"Lamp"}', orphan)
    two = _page('{"@type":"Product","name":"Lamp"}', '{"@type":"Product","name":"Desk"}', orphan)
    assert read_reviews(one, "https://shop.example/p")[0].item.name == "Lamp"
    assert read_reviews(two, "https://shop.example/p")[0].item.name is None
    assert read_reviews(_page(orphan), "https://shop.example/p")[0].item.name is None


def test_rdfa_with_schema_curies_and_no_vocab() -> None:
    html = (
        '<div prefix="schema: http://schema.org/" typeof="schema:Review">'
        '<span property="schema:author">Vera</span>'
        '<span property="schema:reviewBody">Curies work.</span>'
        '<span property="schema:reviewRating" typeof="schema:Rating">'
        '<span property="schema:ratingValue">4</span></span></div>'
        '<div typeof="Review"><span property="reviewBody">No vocab: not schema.org</span></div>'
    )
    records = read_reviews(html, "https://critic.example/r")
    assert [(r.author.name, r.body, r.source) for r in records] == [
        ("Vera", "Curies work.", "rdfa")
    ]
    assert records[0].rating is not None and records[0].rating.value == 4


def test_one_review_in_two_markups_with_punctuation_apart_is_one() -> None:
    json_ld = _page(
        '{"@type":"Review","author":"Jane D.","reviewBody":"Don\'t - really.",'
        '"datePublished":"2024-01-02"}'
    )
    microdata = (
        '<div itemscope itemtype="https://schema.org/Review"><span itemprop="author">Jane D</span>'
        '<p itemprop="reviewBody">Don&#8217;t &#8211; really&#8230;</p></div>'
    )
    records = read_reviews(json_ld.replace("</body>", microdata + "</body>"), "https://s.example/p")
    assert len(records) == 1 and records[0].source == "json-ld"


def test_a_block_read_in_part_says_so() -> None:
    reading = read_page_of(_page(f'{REVIEW} {{"@type": "Review", "author": '))
    assert [record.author.name for record in reading.records] == ["Ann"]
    assert reading.problems == ("JSON-LD block 1 read in part: the rest is broken",)


def test_a_rating_only_copy_of_a_review_is_that_review() -> None:
    full = (
        '{"@type":"Review","author":"Ola","datePublished":"2024-03-01T10:00:00Z",'
        '"reviewRating":{"ratingValue":"4"},"reviewBody":"Solid."}'
    )
    copy = '{"@type":"Review","author":"Ola","datePublished":"2024-03-01","reviewRating":4}'
    other_day = copy.replace("2024-03-01", "2024-03-02")
    records = read_reviews(_product(full, copy, other_day), "https://shop.example/p")
    assert [(r.body, r.date) for r in records] == [
        ("Solid.", "2024-03-01T10:00:00+00:00"),
        (None, "2024-03-02"),
    ]


def test_types_and_properties_written_as_iris() -> None:
    block = (
        '{"@type":"http://schema.org/Product","http://schema.org/name":"Kettle",'
        '"https://schema.org/review":{"@type":["https://schema.org/CriticReview"],'
        '"schema:reviewBody":"Boils fast.","http://schema.org/author":"Ro",'
        '"http://data-vocabulary.org/rating":"1"}}'
    )
    foreign = '{"@type":"http://data-vocabulary.org/Review","reviewBody":"Not schema.org"}'
    records = read_reviews(_page(block, foreign), "https://shop.example/p")
    assert [(r.item.name, r.item.type, r.author.name, r.body) for r in records] == [
        ("Kettle", "Product", "Ro", "Boils fast.")
    ]


def test_a_summary_is_no_ones_rating() -> None:
    summary = '{"@type":"AggregateRating","ratingValue":"4.4","reviewCount":"87"}'
    only = '{"@type":"Review","reviewRating":' + summary + "}"
    untyped = '{"@type":"Review","reviewRating":{"ratingValue":"4.4","ratingCount":"87"}}'
    reading = read_page_of(_product(only, untyped))
    assert reading.records == () and reading.aggregate
    with_body = (
        '{"@type":"Review","author":"Ann","reviewBody":"Fine.","reviewRating":' + summary + "}"
    )
    (record,) = read_reviews(_product(with_body))
    assert record.body == "Fine." and record.rating is None


def test_json_ld_in_noscript_or_template_or_of_another_vocabulary_is_not_read() -> None:
    hidden = (
        f'<noscript><script type="application/ld+json">{REVIEW}</script></noscript>'
        f'<template><script type="application/ld+json">{REVIEW}</script></template>'
    )
    assert read_reviews(f"<html><body>{hidden}</body></html>") == ()
    legacy = REVIEW.replace("{", '{"@context":"http://data-vocabulary.org",', 1)
    assert read_reviews(_page(legacy)) == ()
    mixed = REVIEW.replace(
        "{", '{"@context":["http://data-vocabulary.org","https://schema.org"],', 1
    )
    assert len(read_reviews(_page(mixed))) == 1


def test_two_copies_of_one_text_a_day_apart_or_on_other_scales_are_one() -> None:
    body = "Sturdy and warm, the zip is the only weak point so far after a month."
    local = (
        '{"@type":"Review","author":"Ann","datePublished":"2024-06-01T23:30:00-05:00",'
        f'"reviewBody":"{body}","reviewRating":{{"ratingValue":"4","worstRating":"0"}}}}'
    )
    utc = (
        '{"@type":"Review","author":"Ann","datePublished":"2024-06-02T04:30:00+00:00",'
        f'"reviewBody":"{body}","reviewRating":{{"ratingValue":"4"}}}}'
    )
    assert len(read_reviews(_page(local, utc))) == 1
    later = utc.replace("2024-06-02", "2024-06-04")
    assert len(read_reviews(_page(local, later))) == 2
    short = (
        '{"@type":"Review","author":"Amazon Customer","datePublished":"%s","reviewBody":"Great!"}'
    )
    assert len(read_reviews(_page(short % "2024-06-01", short % "2024-06-02"))) == 2


def test_types_without_a_scheme_are_schema_org_types() -> None:
    microdata = (
        '<div itemscope itemtype="schema.org/Product"><span itemprop="name">Kettle</span>'
        '<div itemprop="review" itemscope itemtype="//schema.org/Review">'
        '<p itemprop="reviewBody">Boils fast.</p></div></div>'
    )
    (record,) = read_reviews(f"<html><body>{microdata}</body></html>")
    assert (record.item.name, record.item.type, record.body) == ("Kettle", "Product", "Boils fast.")


def test_a_lone_review_whose_url_is_the_page_is_not_its_id() -> None:
    review = '{"@type":"Review","url":"https://shop.example/p","author":"A","reviewBody":"B"}'
    (record,) = read_reviews(_page(review), "https://shop.example/p")
    assert record.id.startswith("key:") and record.url == "https://shop.example/p"


def test_an_item_known_only_by_a_type_takes_the_pages_one_item() -> None:
    review = (
        '{"@type":"Review","itemReviewed":{"@type":"Product","@id":"#nowhere"},'
        '"author":"A","reviewBody":"B"}'
    )
    product = '{"@type":"Product","name":"Kettle","aggregateRating":{"ratingValue":"4"}}'
    (record,) = read_reviews(_page(product, review), "https://shop.example/p")
    assert (record.item.name, record.item.type) == ("Kettle", "Product")


def test_an_orphan_review_is_of_the_one_product_beside_a_site_wide_rating() -> None:
    review = '{"@type":"Review","author":"A","reviewBody":"B","reviewRating":{"ratingValue":"5"}}'
    product = '{"@type":"Product","name":"Kettle","offers":{"price":"20"}}'
    site = '{"@type":"Organization","name":"Shop","aggregateRating":{"ratingValue":"4.8"}}'
    (record,) = read_reviews(_page(site, product, review), "https://shop.example/p")
    assert record.item.name == "Kettle"
    two = product.replace("Kettle", "Toaster")
    (record,) = read_reviews(_page(site, product, two, review), "https://shop.example/p")
    assert record.item.name is None  # no guess between two products


def test_a_page_whose_dates_prove_day_first_reads_its_ambiguous_ones_so() -> None:
    review = '{"@type":"Review","author":"%s","datePublished":"%s","reviewBody":"%s"}'
    british = _page(review % ("A", "25/12/2023", "One"), review % ("B", "03/04/2024", "Two"))
    dates = [
        record.date for record in read_reviews(british.replace("<html>", '<html lang="en-US">'))
    ]
    assert dates == ["2023-12-25", "2024-04-03"]
    american = _page(review % ("A", "12/25/2023", "One"), review % ("B", "03/04/2024", "Two"))
    dates = [record.date for record in read_reviews(american.replace("<html>", '<html lang="de">'))]
    assert dates == ["2023-12-25", "2024-03-04"]
    torn = _page(
        review % ("A", "12/25/2023", "One"),
        review % ("B", "25/12/2023", "Two"),
        review % ("C", "03/04/2024", "Three"),
    )
    assert read_reviews(torn)[2].date == "2024-03-04"  # proof both ways: the language decides


def test_javascript_comments_in_a_block_are_dropped_and_urls_kept() -> None:
    block = (
        '{"@type":"Review", /* theme: review */ "author":"Ann", // the author\n'
        '"url":"https://shop.example/r/1","reviewBody":"Fine."}'
    )
    (record,) = read_reviews(_page(block))
    assert (record.author.name, record.id, record.body) == (
        "Ann",
        "https://shop.example/r/1",
        "Fine.",
    )


def test_an_item_reviewed_given_as_an_address_is_its_url() -> None:
    review = '{"@type":"Review","itemReviewed":"https://shop.example/kettle","author":"A","reviewBody":"B"}'
    product = '{"@type":"Product","name":"Kettle","offers":{"price":"20"}}'
    (record,) = read_reviews(_page(product, review))
    assert (record.item.name, record.item.url) == ("Kettle", "https://shop.example/kettle")


def test_a_review_news_article_is_a_critic_review() -> None:
    article = (
        '{"@type":"ReviewNewsArticle","headline":"A quiet triumph","author":"Critic",'
        '"reviewRating":{"ratingValue":"4"},"itemReviewed":{"@type":"Book","name":"Salt"}}'
    )
    (record,) = read_reviews(_page(article))
    assert (record.title, record.item.name, record.body) == ("A quiet triumph", "Salt", None)
