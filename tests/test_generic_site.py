"""The archive for a site without a folder of its own: records of any site are stored,
keyed, queried and exported like MyAnimeList's, with their history.

The records here are built by hand (what a schema.org page gives) and stored
through the normal ingest, so these tests hold whatever reader produced them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from scraper.cli import main
from scraper.errors import UsageError
from scraper.records import Author, FetchedPage, PageKind, PageResult, Rating, Record, ReviewedItem
from scraper.schema.tables import author_names, authors, items, review_observations, reviews
from scraper.store.engine import open_engine
from scraper.store.ingest import ParseOutcome, ingest_page
from scraper.store.read import ReviewQuery, iter_records

SITE = "bakery.example"
PAGE = "https://bakery.example/recipes/rye-loaf"


def record(**changes: Any) -> Record:
    base = Record(
        site=SITE,
        id="https://bakery.example/recipes/rye-loaf#review-1",
        url=PAGE,
        item=ReviewedItem(name="Dark Rye Loaf", type="Recipe", url=PAGE),
        author=Author(name="Crumb Collector", url="https://bakery.example/u/crumb"),
        date="2024-05-06",
        title="Dense in the best way",
        rating=Rating(4, 5, 1),
        body="Proofed it overnight.\n\nThe crust cracked beautifully.",
        tags=(),
        reactions={"upvotes": 3},
        source="json-ld",
    )
    return base._replace(**changes)


def store(url: str, at: datetime, *records: Record) -> None:
    engine = open_engine(url)
    try:
        result = PageResult(kind=PageKind.ENTRY_REVIEWS, url=PAGE, reviews=records)
        page = FetchedPage(PAGE, PAGE, 200, (), b"<html>stand-in</html>", at)
        report = ingest_page(engine, page, parsed=ParseOutcome(result, None))
        assert report.error is None
    finally:
        engine.dispose()


@pytest.fixture
def archive(db_url: str) -> Iterator[str]:
    first = datetime(2024, 5, 7, tzinfo=UTC)
    second = datetime(2024, 6, 1, tzinfo=UTC)
    other = record(
        id="https://bakery.example/recipes/rye-loaf#review-2",
        author=Author(name="Anonymous"),
        date="2024-05-20T18:30:00+02:00",
        rating=None,
        body=None,
        title=None,
        reactions=None,
        tags=("Made it",),
    )
    store(db_url, first, record(), other)
    # The author renamed themselves (same profile URL), edited the review and the
    # rating, and got more upvotes.
    edited = record(
        author=Author(name="Crumb Collector (Oslo)", url="https://bakery.example/u/crumb"),
        rating=Rating(5, 5, 1),
        body="Proofed it overnight.\n\nThe crust cracked beautifully. Twice now.",
        reactions={"upvotes": 9},
    )
    store(db_url, second, edited, other)
    yield db_url


def test_a_generic_review_is_one_row_with_its_history(archive: str) -> None:
    engine = open_engine(archive)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(reviews).order_by(reviews.c.key)).all()
            assert [(r.site, r.key) for r in rows] == [
                (SITE, "https://bakery.example/recipes/rye-loaf#review-1"),
                (SITE, "https://bakery.example/recipes/rye-loaf#review-2"),
            ]
            first = rows[0]
            assert (first.rating_value, first.rating_best, first.rating_worst) == (5, 5, 1)
            assert first.date_text == "2024-05-06" and first.item_type == "Recipe"
            assert first.date == datetime(2024, 5, 6, tzinfo=UTC)
            assert rows[1].date == datetime(2024, 5, 20, 16, 30, tzinfo=UTC)  # sortable in UTC
            assert rows[1].date_text == "2024-05-20T18:30:00+02:00"  # as given
            assert rows[1].body is None and rows[1].body_sha256 is None
            assert conn.execute(sa.select(sa.func.count()).select_from(items)).scalar() == 1
            # Keyed by profile URL: the rename is the same author, both names kept.
            found = conn.execute(sa.select(authors.c.key, authors.c.name)).all()
            assert sorted(found, key=str) == sorted(
                [
                    ("Anonymous", "Anonymous"),
                    ("https://bakery.example/u/crumb", "Crumb Collector (Oslo)"),
                ],
                key=str,
            )
            names = conn.execute(sa.select(author_names.c.name)).scalars().all()
            assert sorted(names) == ["Anonymous", "Crumb Collector", "Crumb Collector (Oslo)"]
            history = conn.execute(
                sa.select(review_observations)
                .where(review_observations.c.review_id == first.id)
                .order_by(review_observations.c.observed_at)
            ).all()
        assert [o.rating_value for o in history] == [4, 5]
        assert [o.reactions for o in history] == [{"upvotes": 3}, {"upvotes": 9}]
        assert history[0].body_sha256 != history[1].body_sha256
    finally:
        engine.dispose()


def test_query_and_export_give_back_the_v2_records(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--db", archive, "--site", SITE, "--history"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    newest = record(
        author=Author(name="Crumb Collector (Oslo)", url="https://bakery.example/u/crumb"),
        rating=Rating(5, 5, 1),
        body="Proofed it overnight.\n\nThe crust cracked beautifully. Twice now.",
        reactions={"upvotes": 9},
    ).to_dict()
    history = records[0].pop("observations")
    assert records[0] == newest  # v2 keys only: no site keys of its own
    assert [o["rating"] for o in history] == [4, 5]
    assert [o["author_name"] for o in history] == ["Crumb Collector", "Crumb Collector (Oslo)"]
    assert list(history[0]) == [
        "observed_at",
        "rating",
        "author_name",
        "reactions",
        "body_sha256",
        "tags",
        "extra",
        "raw_page",
    ]
    assert records[1]["rating"] is None and records[1]["body"] is None
    assert records[1]["tags"] == ["Made it"]

    engine = open_engine(archive)
    try:

        def keys(**filters: Any) -> list[str]:
            query = ReviewQuery.from_args(**filters)
            return [r["id"][-8:] for r in iter_records(engine, query)]

        assert keys(site=SITE) == ["review-1", "review-2"]
        assert keys(site="myanimelist") == []
        assert keys(entry="rye loaf") == ["review-1", "review-2"]
        assert keys(user="crumb collector") == ["review-1"]  # a former name finds it too
        assert keys(site=SITE, tags=["made it"]) == ["review-2"]
        assert keys(site=SITE, type="Recipe", min_score=5) == ["review-1"]
        assert keys(since="2024-05-10") == ["review-2"]
        assert keys(search="crust cracked") == ["review-1"]
        assert keys(sort="-date") == ["review-2", "review-1"]
    finally:
        engine.dispose()
    # The library names its parameters; the CLI says --tag / --type.
    with pytest.raises(UsageError, match=r"^tag: ") as refused:
        ReviewQuery.from_args(tags=["made it"])  # no registered site has this tag
    assert refused.value.parameter == "tag"
    with pytest.raises(UsageError, match=r"^type: ") as refused:
        ReviewQuery.from_args(type="Recipe")
    assert refused.value.parameter == "type"


@pytest.mark.slow
def test_csv_carries_the_v2_columns(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", archive, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))  # no BOM by default
    assert rows[0]["site"] == SITE and rows[0]["item_name"] == "Dark Rye Loaf"
    assert rows[0]["rating_value"] == "5" and rows[0]["rating_best"] == "5"
    assert rows[0]["author_name"] == "Crumb Collector (Oslo)"
    assert rows[0]["reactions"] == '{"upvotes": 9}'
    assert rows[0]["mal_id"] == "" and rows[0]["date"] == "2024-05-06"
    assert rows[1]["body"] == "" and rows[1]["tags"] == '["Made it"]'  # as the view has them


def test_stats_count_sites(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", archive, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["by_site"] == [[SITE, 2]]
    assert stats["by_entry"] == [[f"Dark Rye Loaf ({SITE} {PAGE})", 2]]
