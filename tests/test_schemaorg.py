"""The schema.org reader: our fixture pages field by field, the real corpus in check form.

Fixtures (fixtures/schemaorg/, see its README) are compared with their full
expected v2 records; the shared corpus's real pages (skipped when absent) are
compared in the contract's check form: every expected record matched, nothing
extra.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from conftest import MAL, SCHEMAORG_PAGES
from selectolax.lexbor import LexborHTMLParser

from scraper.records import PageKind, Record
from scraper.sites import SITES, parse_page
from scraper.sites._decode import parser_input
from scraper.sites.schemaorg import SCHEMAORG, read_reviews

FIXTURES = SCHEMAORG_PAGES
PAGES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "pages.json").read_text("utf-8"))
FIELDS = ("site", "id", "url", "item", "author", "date", "title", "rating", "body", "tags")
FIELDS += ("reactions", "source")


def expected(name: str) -> list[dict[str, Any]]:
    path = FIXTURES / name.replace(".html", ".expected.jsonl")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def test_every_fixture_page_is_described() -> None:
    pages = sorted(path.name for path in FIXTURES.glob("*.html"))
    assert pages == sorted(PAGES)
    readme = (FIXTURES / "README.md").read_text("utf-8")
    for name in pages:
        assert f"`{name}`" in readme, f"{name} is not in fixtures/schemaorg/README.md"
        assert (FIXTURES / name.replace(".html", ".expected.jsonl")).is_file()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_fixture_records_field_by_field(name: str) -> None:
    page = PAGES[name]
    records = read_reviews((FIXTURES / name).read_bytes(), page["served_from"])
    got = [record.to_dict() for record in records]
    want = expected(name)
    assert len(got) == len(want), [record["id"] for record in got]
    for number, (mine, theirs) in enumerate(zip(got, want, strict=True), start=1):
        assert list(mine) == list(FIELDS)
        for field in FIELDS:
            assert mine[field] == theirs[field], f"{name} record {number}: {field}"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_fixture_page_kind_url_next_and_problem(name: str) -> None:
    page = PAGES[name]
    # As the registry reads pages: bytes decoded by their meta charset (windows-1252...).
    tree = LexborHTMLParser(parser_input((FIXTURES / name).read_bytes()))
    result = SCHEMAORG.parse(tree, page["served_from"])
    assert result.kind.value == page["kind"]
    assert result.url == page["url"]
    assert result.next_url == page["next_url"]
    assert len(result.reviews) == page["reviews"]
    assert result.layout == page["layout"]
    assert (result.item.to_dict() if result.item else None) == page["item"]
    assert result.problem == page["problem"]
    if not result.kind.has_reviews:
        assert result.problem  # a page without reviews says why


def test_records_are_json_and_ids_unique_per_page() -> None:
    for name, page in PAGES.items():
        records = read_reviews((FIXTURES / name).read_bytes(), page["served_from"])
        assert len({record.id for record in records}) == len(records), name
        for record in records:
            assert isinstance(record, Record)
            json.dumps(record.to_dict())
            # Plain str everywhere (no reader-internal str subclass leaks out): records
            # are pickled to and from `reviews parse` worker processes.
            texts = (record.site, record.id, record.url, record.date, record.title, record.body)
            texts += tuple(record.item) + tuple(record.author)
            assert all(text is None or type(text) is str for text in texts), record
            assert pickle.loads(pickle.dumps(record)) == record


def test_derived_ids_survive_an_edited_body_and_a_changed_rating() -> None:
    html = (FIXTURES / "wprm-graph.html").read_text("utf-8")
    before = read_reviews(html)
    edited = html.replace("Good soup. We added", "Great soup. We added").replace(
        '"ratingValue":"4"', '"ratingValue":"5"'
    )
    after = read_reviews(edited)
    assert [record.id for record in before] == [record.id for record in after]
    assert before[1].body != after[1].body and before[1].rating != after[1].rating
    assert before[1].id.startswith("key:")


def test_registry_tries_mal_first_and_reads_any_other_page() -> None:
    assert SITES[0] is not SCHEMAORG and SITES[-1] is SCHEMAORG
    result = parse_page((FIXTURES / "rel-next-paging.html").read_bytes())
    assert result.kind is PageKind.ENTRY_REVIEWS and len(result.reviews) == 2
    mal = MAL / "anime-reviews-current.html"
    assert parse_page(mal.read_bytes()).layout == "current"  # still that site's own parser
    empty = parse_page(b"<html><body><p>hello</p></body></html>", "https://example.org/")
    assert empty.kind is PageKind.NOT_REVIEW_PAGE and "no schema.org Review" in (
        empty.problem or ""
    )


def test_a_blocked_page_is_blocked_not_empty() -> None:
    blocked = MAL / "blocked-access-denied.html"
    result = SCHEMAORG.parse(LexborHTMLParser(blocked.read_bytes()), "https://shop.example/x")
    assert result.kind is PageKind.BLOCKED


# --- the real corpus, in the contract's check form ---------------------------------------


def check_form(record: Record) -> dict[str, Any]:
    rating = record.rating
    return {
        "item": {"name": record.item.name, "type": record.item.type},
        "author": record.author.name,
        "date": record.date[:10] if record.date else None,
        "rating": None
        if rating is None
        else round((rating.value - rating.worst) / (rating.best - rating.worst), 6),
        "title": record.title,
        "body": " ".join(record.body.split()) if record.body else None,
    }


def expected_form(line: str) -> dict[str, Any]:
    data = json.loads(line)
    data.pop("_file", None)
    if data["body"] is not None:
        data["body"] = " ".join(data["body"].split())
    if data["rating"] is not None:
        data["rating"] = round(data["rating"], 6)
    return data


def corpus_pages(corpus_dir: Path) -> list[Path]:
    folder = corpus_dir / "schemaorg"
    if not folder.is_dir():
        pytest.skip(f"no schema.org corpus at {folder}")
    return sorted(folder.glob("*.html"))


def test_corpus_every_record_matched_nothing_extra(corpus_dir: Path) -> None:
    missing: list[str] = []
    extra: list[str] = []
    total = 0
    for page in corpus_pages(corpus_dir):
        lines = page.with_name(page.name.replace(".html", ".expected.jsonl")).read_text("utf-8")
        want = [expected_form(line) for line in lines.splitlines() if line.strip()]
        got = [check_form(record) for record in read_reviews(page.read_bytes())]
        total += len(want)
        unmatched = list(got)
        for record in want:
            if record in unmatched:
                unmatched.remove(record)
            else:
                missing.append(f"{page.name}: {record}")
        extra.extend(f"{page.name}: {record}" for record in unmatched)
    assert total > 0
    assert not missing, missing[:3]
    assert not extra, extra[:3]


def test_corpus_pages_are_review_pages_with_their_site(corpus_dir: Path) -> None:
    for page in corpus_pages(corpus_dir):
        result = SCHEMAORG.parse(LexborHTMLParser(page.read_bytes()), None)
        assert result.kind is PageKind.ENTRY_REVIEWS, page.name
        site = page.name.split("_", 1)[0]
        assert all(record.site == site for record in result.reviews), page.name
        assert result.next_url is None, page.name  # their rel="next" links are "next post"


# --- size: hundreds of reviews, a huge page ----------------------------------------------


def _shop_page(count: int, filler_kb: int = 0) -> str:
    reviews = [
        {
            "@type": "Review",
            "author": {"@type": "Person", "name": f"Buyer {n % 40}"},
            "datePublished": f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
            "reviewRating": {"@type": "Rating", "ratingValue": str(n % 5 + 1)},
            "reviewBody": f"Order {n}: the lid fits, the handle stays cool. Great!",
        }
        for n in range(count)
    ]
    block = json.dumps({"@type": "Product", "name": "Kettle", "review": reviews})
    items = "".join(
        '<li itemprop="review" itemscope itemtype="https://schema.org/Review">'
        f'<b itemprop="author">Buyer {n % 40}</b>'
        f'<meta itemprop="datePublished" content="{review["datePublished"]}">'
        f'<p itemprop="reviewBody">{review["reviewBody"]}</p></li>'
        for n, review in enumerate(reviews)
    )
    filler = "<p>Nothing to read here, only words that fill a page.</p>" * (filler_kb * 18)
    return (
        f'<html><head><script type="application/ld+json">{block}</script></head><body>'
        f'<ul itemscope itemtype="https://schema.org/Product">{items}</ul>{filler}</body></html>'
    )


def test_a_page_of_250_reviews_marked_up_twice_gives_250_records() -> None:
    records = read_reviews(_shop_page(250), "https://shop.example/kettle")
    assert len(records) == 250
    assert len({record.id for record in records}) == 250
    assert {record.source for record in records} == {"json-ld"}
    assert all(record.rating is not None and record.item.name == "Kettle" for record in records)


def test_a_500_kb_page_with_5_reviews() -> None:
    html = _shop_page(5, filler_kb=500)
    assert len(html) > 500_000
    records = read_reviews(html, "https://shop.example/kettle")
    assert [record.body for record in records] == [
        f"Order {n}: the lid fits, the handle stays cool. Great!" for n in range(5)
    ]
