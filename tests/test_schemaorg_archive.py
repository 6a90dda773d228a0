"""schema.org review pages through every command, as MyAnimeList pages go:
parse, import, archive, crawl (rel="next" on the seed's host only), reparse,
query, export (with history) and stats.

The crawled pages are written here (our own text), served by tests/siteserver.py;
the imported ones are the reader's fixtures (fixtures/schemaorg/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import FAST, SCHEMAORG_PAGES
from siteserver import Site, serve

from scraper.cli import ExitCode, main
from scraper.config import CrawlSettings
from scraper.crawl import crawl
from scraper.schema.tables import reviews
from scraper.store.engine import open_engine
from scraper.store.reparse import reparse

FIXTURES = SCHEMAORG_PAGES
PRODUCT = FIXTURES / "product-reviews.html"
#: Where the product page was served from (fixtures/schemaorg/pages.json).
PRODUCT_URL = json.loads((FIXTURES / "pages.json").read_text())[PRODUCT.name]["served_from"]


def expected(page: Path) -> list[dict[str, Any]]:
    text = page.with_name(page.stem + ".expected.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_parse_prints_the_v2_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--url", PRODUCT_URL, str(PRODUCT)]) == ExitCode.OK
    assert lines(capsys.readouterr().out) == expected(PRODUCT)


def test_import_twice_keeps_one_review_each_and_two_observations(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    records = expected(PRODUCT)
    for day in ("2026-01-01", "2026-02-01"):
        args = ["--fetched-at", day, "--url", PRODUCT_URL, str(PRODUCT)]
        code = main(["import", "--db", db_url, *args])
        assert code == ExitCode.OK
    capsys.readouterr()
    assert main(["export", "--db", db_url, "--history"]) == ExitCode.OK
    exported = lines(capsys.readouterr().out)
    histories = [record.pop("observations") for record in exported]
    assert sorted(exported, key=lambda r: r["id"]) == sorted(records, key=lambda r: r["id"])
    assert all(len(history) == 2 for history in histories)
    assert main(["query", "--db", db_url, "--site", records[0]["site"], "--format", "jsonl"]) == 0
    assert len(lines(capsys.readouterr().out)) == len(records)
    assert main(["query", "--db", db_url, "--site", "myanimelist", "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["stats", "--db", db_url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["by_site"] == [[records[0]["site"], len(records)]]

    # Reparse reads the stored pages again (--all: this parser version stored them)
    # and changes nothing.
    engine = open_engine(db_url)
    try:
        report = reparse(engine, everything=True)
        assert (report.pages, report.pages_changed, report.reviews_changed) == (2, 0, 0)
    finally:
        engine.dispose()


def _page(number: int, reviews: list[tuple[str, str, int, str]], next_href: str | None) -> str:
    """A page of guest reviews of one cabin, in JSON-LD, with a rel=next link."""
    nodes = [
        {
            "@type": "Review",
            "@id": f"#review-{key}",
            "author": {"@type": "Person", "name": author},
            "datePublished": f"2025-09-{number:02d}",
            "reviewRating": {"@type": "Rating", "ratingValue": rating, "bestRating": 5},
            "reviewBody": body,
        }
        for key, author, rating, body in reviews
    ]
    item = {"@context": "https://schema.org", "@type": "LodgingBusiness", "name": "Fern Cabin"}
    item["review"] = nodes  # type: ignore[assignment]
    link = f'<link rel="next" href="{next_href}">' if next_href else ""
    return (
        f"<!DOCTYPE html><html><head><title>Fern Cabin guest notes {number}</title>{link}"
        f'<script type="application/ld+json">{json.dumps(item)}</script></head>'
        f"<body><h1>Fern Cabin</h1><p>Page {number}</p></body></html>"
    )


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as running:
        running.robots("User-agent: *\n")
        yield running


@pytest.mark.slow
def test_crawl_follows_rel_next_on_the_seed_host_only(db_url: str, site: Site) -> None:
    elsewhere = f"http://localhost:{site.url().rsplit(':', 1)[1].split('/')[0]}/cabins/fern/notes"
    site.page(
        "/cabins/fern/notes",
        _page(1, [("a1", "Ilse", 5, "Woodstove, quiet nights.")], "/cabins/fern/notes?page=2"),
    )
    site.page(
        "/cabins/fern/notes?page=2",
        _page(2, [("b1", "Tomas", 3, "Damp towels, great lake.")], "/cabins/fern/notes?page=3"),
    )
    # The last page's rel=next names another host: not followed.
    site.page(
        "/cabins/fern/notes?page=3",
        _page(3, [("c1", "Ruth", 4, "Bring bug spray.")], f"{elsewhere}?page=4"),
    )
    settings = CrawlSettings(delay=0.05, max_refusals=5)
    report = crawl(db_url, [site.url("/cabins/fern/notes")], settings=settings, fetch_settings=FAST)
    assert report.outcome == "success" and report.pages == 3 and report.reviews_new == 3
    assert site.log.paths("/cabins/") == [
        "/cabins/fern/notes",
        "/cabins/fern/notes?page=2",
        "/cabins/fern/notes?page=3",
    ]
    assert min(site.log.gaps("/cabins/")) >= 0.05 - 0.01  # the delay holds for any site
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT site, rating_value, body FROM reviews ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [(r.rating_value, r.body) for r in rows] == [
        (5, "Woodstove, quiet nights."),
        (3, "Damp towels, great lake."),
        (4, "Bring bug spray."),
    ]
    assert {r.site for r in rows} == {"127.0.0.1"}


@pytest.mark.slow
def test_archive_fetches_a_page_and_keeps_its_history(
    db_url: str, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _page(1, [("a1", "Ilse", 4, "Woodstove, quiet nights.")], None)
    second = _page(1, [("a1", "Ilse", 5, "Woodstove, quiet nights. Came back in May.")], None)
    site.page("/cabins/fern/notes", first)
    url = site.url("/cabins/fern/notes")
    assert main(["archive", "--db", db_url, "--delay", "0.05", url]) == ExitCode.OK
    site.page("/cabins/fern/notes", second)
    assert main(["archive", "--db", db_url, "--delay", "0.05", url]) == ExitCode.OK
    capsys.readouterr()
    assert main(["export", "--db", db_url, "--history", "--search", "woodstove"]) == 0
    (record,) = lines(capsys.readouterr().out)
    assert record["rating"] == {"value": 5, "best": 5, "worst": 1}
    assert [o["rating"] for o in record["observations"]] == [4, 5]
    assert "mal_id" not in record


def test_a_date_with_an_offset_is_kept_as_given_and_filtered_in_utc(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = _page(1, [("a1", "Ilse", 4, "Fine.")], None).replace(
        '"2025-09-01"', '"2025-09-01T23:30:00-02:00"'
    )
    path = tmp_path / "dated.html"
    path.write_text(page, encoding="utf-8")
    assert main(["import", "--db", db_url, "--url", "https://cabins.example/fern", str(path)]) == 0
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(reviews.c.date_text, reviews.c.date)).one()
    finally:
        engine.dispose()
    assert row.date_text == "2025-09-01T23:30:00-02:00"
    assert row.date == datetime(2025, 9, 2, 1, 30, tzinfo=UTC)
    capsys.readouterr()
    assert main(["query", "--db", db_url, "--since", "2025-09-02", "--format", "jsonl"]) == 0
    (record,) = lines(capsys.readouterr().out)
    assert record["date"] == "2025-09-01T23:30:00-02:00" and record["site"] == "cabins.example"


@pytest.mark.slow
def test_real_pages_come_back_from_the_archive_as_parsed(
    db_url: str, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every record of the real pages, stored and exported, equals what parse printed:
    the store keeps every v2 field (dates as given, fractional ratings, null bodies)."""
    pages = sorted((corpus_dir / "schemaorg").glob("*.html"))
    assert pages, f"no schema.org pages in {corpus_dir}"
    assert main(["parse", *map(str, pages)]) in (ExitCode.OK, ExitCode.PAGE_ERRORS)
    parsed = lines(capsys.readouterr().out)
    assert main(["import", "--db", db_url, *map(str, pages)]) in (ExitCode.OK, 3)
    capsys.readouterr()
    assert main(["export", "--db", db_url]) == ExitCode.OK
    exported = lines(capsys.readouterr().out)

    def key(record: dict[str, Any]) -> tuple[str, str]:
        return (record["site"], record["id"])

    # The same review on two pages is one review: the archive keeps the last one read.
    newest = {key(record): record for record in parsed}
    assert len(exported) == len(newest) > 0
    assert sorted(exported, key=key) == sorted(newest.values(), key=key)
