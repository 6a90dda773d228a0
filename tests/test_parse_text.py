"""Byte decoding and body-text rules, each on a small page written for the case."""

from __future__ import annotations

import codecs
import html
import re

import pytest
from conftest import MAL
from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.api import parse_page
from scraper.config import MAL_ENTITY_PROBES, MAL_ENTITY_ROUNDS
from scraper.sites._decode import decode_html, sniff_meta_charset
from scraper.sites.mal.text import decode_entities, normalise_body

TEXT = "Ed’s café — 星"


def test_bare_utf8_page_is_not_mojibake() -> None:
    data = f"<html><body><p>{TEXT}</p></body></html>".encode()
    assert TEXT in decode_html(data)
    assert "â€™" not in decode_html(data)


def test_http_charset_wins_over_meta() -> None:
    data = '<meta charset="utf-8"><p>caf\xe9</p>'.encode("latin-1")
    assert "café" in decode_html(data, "iso-8859-1")


def test_meta_charset_and_http_equiv_are_read() -> None:
    body = "<p>café</p>"
    meta = ('<meta charset="windows-1252">' + body).encode("cp1252")
    equiv = (
        '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">' + body
    ).encode("latin-1")
    assert sniff_meta_charset(meta) == "cp1252"
    assert "café" in decode_html(meta)
    assert "café" in decode_html(equiv)


def test_bom_decides_when_the_caller_gives_no_charset() -> None:
    page = f"<p>{TEXT}</p>"
    assert decode_html(codecs.BOM_UTF8 + page.encode()) == page
    assert decode_html(codecs.BOM_UTF16_LE + page.encode("utf-16-le")) == page


def test_unknown_charset_names_fall_back_instead_of_failing() -> None:
    data = f"<p>{TEXT}</p>".encode()
    assert TEXT in decode_html(data, "no-such-charset")
    assert TEXT in decode_html(b'<meta charset="bogus">' + data)


def test_undecodable_bytes_are_replaced_not_raised() -> None:
    assert "\ufffd" in decode_html(b"<p>bad \xff\xfe byte</p>")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("Ed&rsquo;s", "Ed’s"),
        ("&amp;quot;Story&amp;quot;", '"Story"'),
        ("Black &amp;amp; White", "Black & White"),
        ("&amp;#039;quoted&amp;#039;", "'quoted'"),
        ("?a=1&para=2", "?a=1&para=2"),  # no semicolon: a URL, not an entity
        ("AT&T", "AT&T"),
        # Bare ampersands before the reference, fewer and more than are looked
        # at one by one (MAL_ENTITY_PROBES) before the regex takes the rest.
        ("R&D, " * 3 + "Ed&amp;rsquo;s", "R&D, " * 3 + "Ed’s"),
        (
            "R&D, " * (MAL_ENTITY_PROBES + 3) + "Ed&amp;rsquo;s",
            "R&D, " * (MAL_ENTITY_PROBES + 3) + "Ed’s",
        ),
        ("R&D, " * (MAL_ENTITY_PROBES + 3), "R&D, " * (MAL_ENTITY_PROBES + 3)),
    ],
)
def test_entities_decoded_until_none_left(raw: str, text: str) -> None:
    assert decode_entities(raw) == text


#: The contract's rule for references left after parsing, as a regex over the text.
REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["&", "amp;", "#39;", "#x2019;", "rsquo;", "lt;", "a", ";", "#", " "]),
        max_size=4 * MAL_ENTITY_PROBES,
    ).map("".join)
)
def test_entities_decoded_as_the_regex_rule_says(text: str) -> None:
    # Fewer or more ampersands than are looked at one by one: the same text.
    expected = text
    for _ in range(MAL_ENTITY_ROUNDS):
        decoded = REFERENCE.sub(lambda match: html.unescape(match.group()), expected)
        if decoded == expected:
            break
        expected = decoded
    assert decode_entities(text) == expected


def test_body_rules_lines_and_blank_runs() -> None:
    raw = "  one\t two \u00a0 three \n\n\n\n four&amp;nbsp;five \n"
    assert normalise_body(raw) == "one two three\n\nfour five"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a" + " " * 40 + "b  c \t\t d", "a b c d"),
        ("   lead and trail   ", "lead and trail"),
        ("one \n  \n two\n\n\n\n\nthree", "one\n\ntwo\n\nthree"),
        ("em\u2003space\u3000kept \u00a0 nbsp not", "em\u2003space\u3000kept nbsp not"),
        ("a &amp;nbsp;&amp;nbsp; b", "a b"),
        ("  \n \t ", ""),
        # Decoded whitespace joins the source run beside it, whatever its kind.
        ("a \t&nbsp;\t&#10;&#9; b", "a b"),
        ("x&amp;#32; &#160;\ny", "x\ny"),
        # A decoded blank line between breaks still counts as blank.
        ("p\n&nbsp;\n&amp;nbsp; \n\nq", "p\n\nq"),
        ("\n\nlead\n&#32;\n\n\ntrail\n\n", "lead\n\ntrail"),
    ],
)
def test_whitespace_runs_collapse_and_other_spaces_stay(raw: str, text: str) -> None:
    assert normalise_body(raw) == text


REACTIONS = '{"num":3,"count":["1","1","1","0","0","0","0"]}'


def _review_page(text_html: str) -> str:
    return f"""<html><head><link rel="canonical" href="https://myanimelist.net/anime/7/X/reviews">
<meta property="og:title" content="X"></head><body>
<div class="review-element js-review-element" data-reactions='{REACTIONS}'>
<div class="thumbbody"><div class="body">
<div title="1:05 PM" class="update_at">Feb 29, 2024</div>
<div class="username"><a href="/profile/Someone">Someone</a></div>
<div class="tags"><div class="tag recommended"><i class="fas fa-star"></i>Recommended</div></div>
<div class="text">{text_html}</div>
<div class="rating">Reviewer’s Rating: <span class="num">7</span></div>
<div class="open"><a href="/reviews.php?id=42">Open</a></div>
</div></div></div></body></html>"""


def test_relative_links_and_comments_in_a_minimal_current_page() -> None:
    page = _review_page("Start<!-- hidden note --> of it<br>next <b>bold</b> line")
    result = parse_page(page)
    (review,) = result.reviews
    assert review.body == "Start of it\nnext bold line"
    assert review.author.url == "https://myanimelist.net/profile/Someone"
    assert review.url == "https://myanimelist.net/reviews.php?id=42"
    assert review.date == "2024-02-29T13:05:00+00:00"
    assert review.reactions == {
        "overall": 3,
        "nice": 1,
        "love_it": 1,
        "funny": 1,
        "confusing": 0,
        "informative": 0,
        "well_written": 0,
        "creative": 0,
    }


def test_the_review_id_comes_from_the_first_open_link_that_names_one() -> None:
    page = _review_page("text").replace(
        '<div class="open">', '<div class="open"><a href="#top">Top</a>'
    )
    (review,) = parse_page(page).reviews
    assert review.url == "https://myanimelist.net/reviews.php?id=42"


def test_titleblock_links_name_each_review_entry_on_a_page_of_many() -> None:
    titleblock = '<div class="titleblock"><a href="/manga/9/Other">Other</a></div>'
    page = _review_page("text").replace(
        '<div class="username">', titleblock + '<div class="username">'
    )
    (review,) = parse_page(page).reviews
    assert review.item.url == "https://myanimelist.net/manga/9/Other"
    assert review.item.type == "manga"


def test_impossible_date_skips_the_review_with_a_reason() -> None:
    page = _review_page("text").replace("Feb 29, 2024", "Feb 30, 2024")
    result = parse_page(page)
    assert result.kind.value == "unrecognised"
    assert result.problem is not None and "impossible date" in result.problem


def test_broken_reaction_json_is_named() -> None:
    page = _review_page("text").replace('"num":3', '"num":"many"')
    result = parse_page(page)
    assert not result.reviews
    assert result.problem is not None and "data-reactions" in result.problem


def test_midnight_and_noon_read_as_utc() -> None:
    midnight = parse_page(_review_page("a").replace("1:05 PM", "12:00 AM")).reviews[0]
    noon = parse_page(_review_page("a").replace("1:05 PM", "12:30 PM")).reviews[0]
    assert midnight.date is not None and midnight.date[11:16] == "00:00"
    assert noon.date is not None and noon.date[11:16] == "12:30"


@pytest.mark.parametrize(
    "tag_html",
    [
        '<div class="tag well-written"><img alt="Well-written" src="x.png">Well-written</div>',
        '<div class="tag well-written"><i class="fa-pen"></i>Well-written</div>',
        '<div class="tag well-written"><span>Well-written</span></div>',
        '<div class="tag well-written"><i>Well-written</i>Well-written</div>',
        '<div class="tag well-written">Well-writtenWell-written</div>',
    ],
)
def test_tag_label_is_read_once_whatever_its_icon(tag_html: str) -> None:
    page = _review_page("a").replace(
        '<i class="fas fa-star"></i>Recommended</div>', f"Recommended</div>{tag_html}"
    )
    assert parse_page(page).reviews[0].tags == ("Recommended", "Well-written")


def test_time_printed_after_the_date_is_read() -> None:
    page = _review_page("a").replace(
        '<div title="1:05 PM" class="update_at">Feb 29, 2024</div>',
        '<div class="update_at">Feb 29, 2024 9:41 PM</div>',
    )
    assert parse_page(page).reviews[0].date == "2024-02-29T21:41:00+00:00"


def test_control_characters_in_a_page_do_not_break_lines() -> None:
    review = parse_page(_review_page("one\x01two<br>three\x00four")).reviews[0]
    assert review.body == "onetwo\nthree\ufffdfour"


def test_older_legacy_buttons_and_toggles_stay_out_of_the_body() -> None:
    page = (MAL / "anime-reviews-legacy.html").read_text(encoding="utf-8")
    plain_toggle = '<a href="javascript:void(0);" onclick="show(870001)">read more</a>'
    page = page.replace(
        '<a href="javascript:void(0);" id="reviewToggle870001"', plain_toggle + "<a"
    ).replace(
        '<div id="revhelp_output_870001"',
        '<button type="button">Not Helpful</button><div id="revhelp_output_870001"',
    )
    first = parse_page(page).reviews[0]
    assert first.body is not None
    assert "read more" not in first.body and "Helpful" not in first.body
    assert first.body.endswith("which is a bold, good choice.")


def test_utf8_bytes_go_to_the_parser_scrubbed_and_without_bom() -> None:
    page = codecs.BOM_UTF8 + _review_page("one\x01two<br>three\x00four é").encode()
    review = parse_page(page).reviews[0]
    assert review.body == "onetwo\nthree\ufffdfour é"
    latin = parse_page(_review_page("café").encode("cp1252"), charset="cp1252")
    assert latin.reviews[0].body == "café"


@pytest.mark.parametrize(
    "href",
    [
        "https://myanimelist.net/anime/1/Cowboy_Bebop/reviews?p=2",
        "  https://myanimelist.net/reviews.php?id=7406  ",
        "https://myanimelist.net/anime/1/../2",
        "https://myanimelist.net/anime/1?",
        "https://myanimelist.net/anime/1#reviews",
        "https://myanimelist.net/anime/1;x?y=1",
        "https://myanimelist.net/profile/a b",
        "https://myanimelist.net/profile/é?q=ü",
        "https://myanimelist.net",
        "http://myanimelist.net/anime/1",
        "../reviews?p=3",
        "http://[x",
    ],
)
def test_addresses_on_mal_match_the_urllib_route(href: str) -> None:
    # on_mal skips urllib for plain myanimelist.net addresses; it must give
    # exactly what joining and splitting them would.
    from urllib.parse import urljoin, urlsplit, urlunsplit

    from scraper.sites.mal.page import on_mal

    base = "https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"
    try:
        parts = urlsplit(urljoin(base, href.strip()))
        expected = urlunsplit(("https", "myanimelist.net", parts.path, parts.query, ""))
    except ValueError:
        expected = None
    assert on_mal(href, base) == expected
