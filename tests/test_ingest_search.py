"""Known reviews are refreshed with a plain UPDATE: the full-text index must follow (both DBs)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from conftest import HISTORY
from sqlalchemy.engine import Engine

from scraper.records import FetchedPage
from scraper.schema.tables import review_observations, review_tags, reviews, tags
from scraper.store.ingest import IngestReport, ingest_page
from scraper.store.read import ReviewQuery, iter_records

PAGE = HISTORY / "anime-91234-reviews-2026-02.html"
URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
EDITED = 900003  # the review whose text says "gorgeous"


def _ingest(engine: Engine, day: int, body: bytes) -> IngestReport:
    at = datetime(2026, 3, day, tzinfo=UTC)
    return ingest_page(engine, FetchedPage(URL, URL, 200, (), body, at))


def _found(engine: Engine, words: str) -> list[int]:
    query = ReviewQuery.from_args(search=words)
    return sorted(record["mal_id"] for record in iter_records(engine, query))


def test_search_follows_edits_and_ignores_older_captures(engine: Engine) -> None:
    original = PAGE.read_bytes()
    edited = original.replace(b"gorgeous", b"luminous")
    recounted = edited.replace(b"&quot;num&quot;: 8,", b"&quot;num&quot;: 9,")  # one more reaction
    assert _ingest(engine, 1, original).reviews_new == 3
    assert _found(engine, "gorgeous") == [EDITED]

    report = _ingest(engine, 3, edited)
    assert (report.reviews_new, report.reviews_updated, report.reviews_unchanged) == (0, 1, 2)
    assert _found(engine, "gorgeous") == []
    assert _found(engine, "luminous") == [EDITED]

    # An older capture imported late changes nothing the search sees.
    report = _ingest(engine, 2, original)
    assert (report.reviews_updated, report.reviews_unchanged) == (0, 3)
    assert _found(engine, "gorgeous") == []
    assert _found(engine, '"harbour at night is luminous"') == [EDITED]

    # A newer capture with the same text and one more reaction (not an edit): the row
    # takes the new count and moves on, the text stays searchable.
    report = _ingest(engine, 4, recounted)
    assert (report.reviews_updated, report.reviews_unchanged) == (0, 3)
    assert _found(engine, "luminous") == [EDITED]
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(reviews.c.first_seen_at, reviews.c.last_seen_at, reviews.c.reactions).where(
                reviews.c.key == str(EDITED)
            )
        ).one()
    assert tuple(row)[:2] == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    assert row.reactions["overall"] == 9


def _tags(engine: Engine) -> dict[int, list[str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(reviews.c.key, tags.c.name)
            .join(review_tags, review_tags.c.review_id == reviews.c.id)
            .join(tags, tags.c.id == review_tags.c.tag_id)
            .order_by(reviews.c.key, review_tags.c.position)
        )
        found: dict[int, list[str]] = {}
        for key, name in rows:
            found.setdefault(int(key), []).append(name)
        return found


def test_tags_follow_newer_captures_even_without_the_newest_observation(engine: Engine) -> None:
    original = PAGE.read_bytes()
    first = _ingest(engine, 1, original)
    # A reparse that no longer reads a review removes its observation of that page:
    # its tags must then be read from the tag tables (900001's did not change).
    with engine.begin() as connection:
        connection.execute(
            sa.delete(review_observations).where(
                review_observations.c.raw_page_id == first.raw_page_id,
                review_observations.c.review_id.in_(
                    sa.select(reviews.c.id).where(reviews.c.key.in_(["900001", "900002"]))
                ),
            )
        )
    retagged = original.replace(b">Well-written</div>", b">Funny</div>")
    report = _ingest(engine, 2, retagged)
    assert (report.reviews_updated, report.reviews_unchanged) == (1, 2)
    assert _tags(engine) == {
        900001: ["Recommended"],
        900002: ["Recommended", "Funny"],
        900003: ["Mixed Feelings", "Preliminary"],
    }
    # And back again, this time with the newest observation in place.
    report = _ingest(engine, 3, original)
    assert (report.reviews_updated, report.reviews_unchanged) == (1, 2)
    assert _tags(engine)[900002] == ["Recommended", "Well-written"]
