"""parse_page against pages with known records: our fixtures, and the shared corpus.

Every field of every record is compared, and each page's kind, layout, address
and next link are checked against fixtures/mal/pages.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, MAL

from scraper.api import parse_page
from scraper.errors import BlockedPage, LayoutNotRecognised, NotAReviewPage, ParseError
from scraper.records import PageKind
from scraper.sites.mal.v1 import Review, to_record

MAL_FIXTURES = MAL
CORPUS_MAL = CORPUS / "mal"
MANIFEST: dict[str, dict[str, Any]] = json.loads((MAL_FIXTURES / "pages.json").read_text())
FIXTURE_PAGES = sorted(MAL_FIXTURES.glob("*.html"))
CORPUS_PAGES = sorted(CORPUS_MAL.glob("*.html")) if CORPUS_MAL.is_dir() else []


def expected_records(page: Path) -> list[dict[str, Any]]:
    lines = page.with_name(page.stem + ".expected.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in lines.splitlines() if line.strip()]
    for record in records:
        record.pop("_file", None)
    return records


#: The keys every record carries, whatever its site (contract v2).
V2_KEYS = ("site", "id", "url", "item", "author", "date", "title", "rating", "body", "tags")
V2_KEYS += ("reactions", "source")


def assert_same_records(
    page: Path, got: list[dict[str, Any]], want: list[dict[str, Any]], *, v2: bool = True
) -> None:
    """Every key of *want* with its value, no other key; *v2*: *want* has the v2 keys
    (the corpus's expected records are v1 only, so each record may add them)."""
    assert [r["mal_id"] for r in got] == [r["mal_id"] for r in want], page.name
    for mine, theirs in zip(got, want, strict=True):
        keys = set(theirs) if v2 else set(theirs) | set(V2_KEYS)
        assert set(mine) == keys, f"{page.name} review {theirs['mal_id']}: keys differ"
        assert list(mine)[: len(theirs)] == list(theirs) or not v2, "v1 keys first, in order"
        for key in theirs:
            assert mine[key] == theirs[key], f"{page.name} review {theirs['mal_id']}: {key}"


def test_every_fixture_page_is_listed_with_its_expected_records() -> None:
    assert {page.name for page in FIXTURE_PAGES} == set(MANIFEST)
    for page in FIXTURE_PAGES:
        assert page.with_name(page.stem + ".expected.jsonl").is_file(), page.name


@pytest.mark.parametrize("page", FIXTURE_PAGES, ids=lambda page: page.stem)
def test_fixture_records_match_every_field(page: Path) -> None:
    result = parse_page(page.read_bytes())
    assert_same_records(page, [r.to_dict() for r in result.reviews], expected_records(page))
    facts = MANIFEST[page.name]
    assert result.kind.value == facts["kind"]
    assert result.layout == facts["layout"]
    assert result.url == facts["url"]
    assert result.next_url == facts["next_url"]
    assert (result.item.url if result.item else None) == facts["entry_url"]
    assert len(result.reviews) == facts["reviews"]


@pytest.mark.parametrize("page", FIXTURE_PAGES, ids=lambda page: page.stem)
def test_records_round_trip_through_the_contract(page: Path) -> None:
    for record in parse_page(page.read_bytes()).reviews:
        assert record.extra is not None
        review = Review.from_dict(record.extra)
        assert to_record(review) == record
        assert review.date.utcoffset() is not None and review.date.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("page", CORPUS_PAGES, ids=lambda page: page.stem)
def test_corpus_records_match_every_field(page: Path) -> None:
    result = parse_page(page.read_bytes())
    assert result.kind is PageKind.ENTRY_REVIEWS
    got = [r.to_dict() for r in result.reviews]
    assert_same_records(page, got, expected_records(page), v2=False)


def test_corpus_present_or_skipped(corpus_dir: Path) -> None:
    # Makes the skip visible in the report when the shared corpus is absent.
    assert CORPUS_PAGES, f"corpus folder {corpus_dir} holds no MAL pages"


def test_visible_reaction_counters_are_ignored_for_data_reactions() -> None:
    page = (MAL_FIXTURES / "anime-reviews-current.html").read_text(encoding="utf-8")
    assert '<span class="num">0</span>' in page  # the trap is really in the page
    first = parse_page(page).reviews[0]
    assert first.reactions is not None and first.reactions["overall"] == 1318


def test_malformed_review_is_skipped_and_named() -> None:
    result = parse_page((MAL_FIXTURES / "anime-reviews-current-malformed.html").read_bytes())
    assert [int(review.id) for review in result.reviews] == [880004]
    assert result.problem is not None
    assert "review element 2 (review 880006) skipped" in result.problem
    assert "rating" in result.problem


def test_mirror_host_moves_next_link_but_not_records() -> None:
    html = (MAL_FIXTURES / "anime-reviews-current.html").read_bytes()
    served = "http://127.0.0.1:8765/anime/90001/Starlight_Courier/reviews"
    result = parse_page(html, served)
    assert result.next_url is not None
    assert result.next_url.startswith("http://127.0.0.1:8765/anime/90001/Starlight_Courier/")
    assert result.next_url.endswith("&p=2")
    assert result.url == "https://myanimelist.net/anime/90001/Starlight_Courier/reviews"
    for review in result.reviews:
        assert review.url.startswith("https://myanimelist.net/reviews.php?id=")
        assert (review.item.url or "").startswith("https://myanimelist.net/")
        assert (review.author.url or "").startswith("https://myanimelist.net/profile/")


def test_page_without_canonical_takes_its_address_from_url_argument() -> None:
    html = (MAL_FIXTURES / "anime-reviews-legacy.html").read_text(encoding="utf-8")
    stripped = html.replace('<link rel="canonical"', '<link rel="x-removed"').replace(
        'property="og:url"', 'property="og:x-removed"'
    )
    result = parse_page(stripped, "http://localhost:9/anime/90001/Starlight_Courier/reviews?p=1")
    assert result.url == "https://myanimelist.net/anime/90001/Starlight_Courier/reviews?p=1"
    assert result.next_url == "http://localhost:9/anime/90001/Starlight_Courier/reviews?p=2"
    assert len(result.reviews) == 3


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("blocked-access-denied.html", BlockedPage),
        ("not-a-review-page.html", NotAReviewPage),
        ("unrecognised-layout.html", LayoutNotRecognised),
    ],
)
def test_pages_without_reviews_raise_their_own_error(name: str, error: type[ParseError]) -> None:
    result = parse_page((MAL_FIXTURES / name).read_bytes(), f"http://127.0.0.1/{name}")
    assert not result.reviews and result.problem
    with pytest.raises(error):
        result.raise_for_kind()


def test_review_containers_with_no_readable_review_are_unrecognised() -> None:
    html = (MAL_FIXTURES / "anime-reviews-current.html").read_text(encoding="utf-8")
    # Every rating line gone: the containers are there, nothing reads. Drift alarm.
    broken = html.replace('<span class="num">', '<span class="renamed">')
    result = parse_page(broken)
    assert result.kind is PageKind.UNRECOGNISED
    assert result.problem is not None and "no readable review" in result.problem


def test_blocked_page_with_site_chrome_is_still_blocked() -> None:
    html = (MAL_FIXTURES / "not-a-review-page.html").read_text(encoding="utf-8")
    challenge = html.replace("<h2>Synopsis</h2>", '<div class="g-recaptcha"></div><h2>x</h2>')
    assert parse_page(challenge).kind is PageKind.BLOCKED


@pytest.mark.parametrize(
    ("href", "served", "expected"),
    [
        ("?p=3", None, "https://myanimelist.net/anime/90001/Starlight_Courier/reviews?p=3"),
        ("reviews?p=3", None, "https://myanimelist.net/anime/90001/Starlight_Courier/reviews?p=3"),
        (
            "/anime/90001/x/reviews?p=3",
            "http://127.0.0.1:5/a",
            "http://127.0.0.1:5/anime/90001/x/reviews?p=3",
        ),
    ],
)
def test_relative_more_reviews_link_is_read_against_the_page(
    href: str, served: str | None, expected: str
) -> None:
    html = (MAL_FIXTURES / "anime-reviews-legacy.html").read_text(encoding="utf-8")
    page = html.replace("https://myanimelist.net/anime/90001/Starlight_Courier/reviews?p=2", href)
    assert parse_page(page, served).next_url == expected


def test_unparseable_addresses_in_a_page_are_ignored_not_fatal() -> None:
    html = (MAL_FIXTURES / "recent-reviews-current.html").read_text(encoding="utf-8")
    broken = html.replace(
        'href="https://myanimelist.net/reviews.php?t=anime"', 'href="http://[broken"'
    ).replace(
        'href="https://myanimelist.net/anime/90002/Moth_and_Tideglass" class="title',
        'href="http://[x" class="title',
    )
    result = parse_page(broken, "http://127.0.0.1:9/reviews.php?t=anime")
    assert result.url == "https://myanimelist.net/reviews.php?t=anime"  # og:url still names it
    assert [int(review.id) for review in result.reviews] == [880202, 880203]
    assert result.problem is not None and "880201" in result.problem


def test_unusable_url_argument_is_a_usage_error() -> None:
    from scraper.errors import UsageError

    with pytest.raises(UsageError, match="not a usable URL"):
        parse_page(b"<html></html>", "http://[broken")
