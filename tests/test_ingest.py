"""Ingesting pages: history, idempotency, capture order, failures (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CORPUS, HISTORY
from sqlalchemy.engine import Engine

from scraper.errors import BlockedPage, NotAReviewPage, ParseError, StoreError, TooManyRedirects
from scraper.records import FetchedPage, PageKind
from scraper.schema.tables import (
    author_names,
    authors,
    fetch_errors,
    raw_bodies,
    raw_pages,
    review_observations,
    review_tags,
    reviews,
    tags,
)
from scraper.store.bodies import load_body
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page, record_fetch_error
from scraper.store.reparse import reparse

PAGE_URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
CAPTURES = {
    "anime-91234-reviews-2021-03-legacy.html": datetime(2021, 3, 2, 10, 0, tzinfo=UTC),
    "anime-91234-reviews-2022-05-legacy.html": datetime(2022, 5, 10, 18, 30, tzinfo=UTC),
    "anime-91234-reviews-2026-02.html": datetime(2026, 2, 14, 8, 5, tzinfo=UTC),
}


def _expected(name: str) -> dict[int, dict[str, object]]:
    path = HISTORY / name.replace(".html", ".expected.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    return {record["mal_id"]: record for record in map(json.loads, lines)}


def fetched(name: str, at: datetime | None = None, body: bytes | None = None) -> FetchedPage:
    return FetchedPage(
        requested_url=PAGE_URL,
        final_url=PAGE_URL,
        status=200,
        headers=(("Content-Type", "text/html; charset=utf-8"),),
        body=body if body is not None else (HISTORY / name).read_bytes(),
        fetched_at=at or CAPTURES[name],
    )


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("order", list(itertools.permutations(CAPTURES)), ids=lambda o: "")
def test_three_captures_in_any_order_keep_history_and_newest_values(
    engine: Engine, order: tuple[str, ...]
) -> None:
    for name in order:
        report = ingest_page(engine, fetched(name), source="file")
        assert report.error is None and report.page_kind is PageKind.ENTRY_REVIEWS

    newest = _expected("anime-91234-reviews-2026-02.html")[900001]
    with engine.connect() as connection:
        row = connection.execute(sa.select(reviews).where(reviews.c.key == "900001")).one()
        assert (row.rating_value, row.extra["layout"], row.body) == (7, "current", newest["review"])
        assert row.extra["helpful_count"] is None and row.reactions["overall"] == 104
        assert row.first_seen_at == CAPTURES["anime-91234-reviews-2021-03-legacy.html"]
        assert row.last_seen_at == CAPTURES["anime-91234-reviews-2026-02.html"]
        user = connection.execute(sa.select(authors).where(authors.c.id == row.author_id)).one()
        assert user.name == "Marrow-Finch"
        names = connection.execute(
            sa.select(author_names.c.name).where(author_names.c.author_id == row.author_id)
        ).scalars()
        assert sorted(names) == ["Marrow-Finch", "MarrowFinch"]
        tag_names = connection.execute(
            sa.select(tags.c.name)
            .join(review_tags, review_tags.c.tag_id == tags.c.id)
            .where(review_tags.c.review_id == row.id)
        ).scalars()
        assert list(tag_names) == ["Recommended"]
        history = connection.execute(
            sa.select(review_observations)
            .where(review_observations.c.review_id == row.id)
            .order_by(review_observations.c.observed_at)
        ).all()
    assert [o.observed_at for o in history] == sorted(CAPTURES.values())
    assert [o.author_name for o in history] == ["MarrowFinch", "MarrowFinch", "Marrow-Finch"]
    assert [o.rating_value for o in history] == [6, 7, 7]
    assert [o.extra["helpful_count"] for o in history] == [12, 40, None]
    bodies = [_expected(name)[900001]["review"] for name in CAPTURES]
    assert [o.body_sha256 for o in history] == [
        hashlib.sha256(str(body).encode()).hexdigest() for body in bodies
    ]
    assert history[0].body_sha256 != history[1].body_sha256
    assert _count(engine, reviews) == 3
    assert _count(engine, authors) == 3
    assert _count(engine, review_observations) == 7


def test_a_new_review_under_a_renamed_users_new_name_joins_that_user(engine: Engine) -> None:
    old, _, new = CAPTURES
    ingest_page(engine, fetched(old))
    page = (HISTORY / new).read_bytes()
    start = page.index(b'<div class="review-element js-review-element"', page.index(b"900003"))
    end = page.index(b'<div class="review-element js-review-element"', start + 1)
    # A second review by Marrow-Finch (formerly MarrowFinch) on the 2026 page.
    extra = page[start:end].replace(b"900001", b"900004").replace(b"second watch", b"third")
    report = ingest_page(engine, fetched(new, body=page[:start] + extra + page[start:]))
    assert report.reviews_new == 2  # 900003 and 900004
    with engine.connect() as connection:
        owners = dict(
            connection.execute(
                sa.select(reviews.c.key, reviews.c.author_id).where(
                    reviews.c.key.in_(["900001", "900004"])
                )
            ).all()
        )
    assert owners["900001"] == owners["900004"]
    assert _count(engine, authors) == 3


@pytest.mark.parametrize("same_avatar", [True, False])
def test_a_user_seen_first_under_a_new_name_is_merged_when_the_rename_shows(
    engine: Engine, same_avatar: bool
) -> None:
    old, _, new = CAPTURES
    ingest_page(engine, fetched(old))  # 900001 by MarrowFinch
    page = (HISTORY / new).read_bytes()
    start = page.index(b'<div class="review-element js-review-element"', page.index(b"900003"))
    end = page.index(b'<div class="review-element js-review-element"', start + 1)
    extra = page[start:end].replace(b"900001", b"900004").replace(b"second watch", b"third")
    if not same_avatar:
        extra = extra.replace(b"7700101", b"7799999")
    # A page with only the new review, under the new name, captured first...
    lone = page[: page.index(b'<div class="review-element')] + extra + b"</div></body></html>"
    ingest_page(engine, fetched(new, at=datetime(2026, 1, 1, tzinfo=UTC), body=lone))
    assert _count(engine, authors) == 3
    # ...then the page that shows the old review under the new name.
    ingest_page(engine, fetched(new))
    with engine.connect() as connection:
        owners = dict(
            connection.execute(
                sa.select(reviews.c.key, reviews.c.author_id).where(
                    reviews.c.key.in_(["900001", "900004"])
                )
            ).all()
        )
        names = connection.execute(
            sa.select(author_names.c.name).where(author_names.c.author_id == owners["900001"])
        ).scalars()
        assert sorted(names) == ["Marrow-Finch", "MarrowFinch"]
    assert (owners["900001"] == owners["900004"]) is same_avatar
    assert _count(engine, authors) == (3 if same_avatar else 4)


def test_the_same_page_twice_adds_observations_only(engine: Engine) -> None:
    name = "anime-91234-reviews-2026-02.html"
    first = ingest_page(engine, fetched(name))
    assert (first.reviews_new, first.reviews_updated, first.reviews_unchanged) == (3, 0, 0)
    counts = {t.name: _count(engine, t) for t in (reviews, authors, tags, author_names, raw_bodies)}
    later = CAPTURES[name] + timedelta(days=1)
    second = ingest_page(engine, fetched(name, at=later))
    assert (second.reviews_new, second.reviews_updated, second.reviews_unchanged) == (0, 0, 3)
    assert second.raw_page_id != first.raw_page_id
    assert {
        t.name: _count(engine, t) for t in (reviews, authors, tags, author_names, raw_bodies)
    } == (counts)
    assert _count(engine, raw_pages) == 2
    assert _count(engine, review_observations) == 6
    # The same capture again (body, URL and time) is the raw page already stored.
    again = ingest_page(engine, fetched(name, at=later))
    assert (again.already_stored, again.raw_page_id) == (True, second.raw_page_id)
    assert (_count(engine, raw_pages), _count(engine, review_observations)) == (2, 6)


def test_updates_are_counted_only_for_newer_captures(engine: Engine) -> None:
    old, mid, new = CAPTURES
    ingest_page(engine, fetched(new))
    report = ingest_page(engine, fetched(old))
    # An older capture adds history but changes no latest value.
    assert (report.reviews_new, report.reviews_updated, report.reviews_unchanged) == (0, 0, 2)
    report = ingest_page(engine, fetched(mid, at=datetime(2027, 1, 1, tzinfo=UTC)))
    assert (report.reviews_new, report.reviews_updated, report.reviews_unchanged) == (0, 2, 0)


def test_a_page_that_fails_to_parse_is_stored_raw_with_its_error(engine: Engine) -> None:
    blocked = b"<html><head><title>Access denied</title></head><body><h1>Access denied</h1>" + (
        b"<p>Please complete the captcha to continue.</p></body></html>"
    )
    report = ingest_page(engine, fetched("x", at=datetime(2026, 1, 1, tzinfo=UTC), body=blocked))
    assert isinstance(report.error, ParseError)
    assert isinstance(report.error, (BlockedPage, NotAReviewPage))
    assert report.error.raw_page_id == report.raw_page_id
    assert report.error.url == PAGE_URL
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(raw_pages).where(raw_pages.c.id == report.raw_page_id)
        ).one()
        assert row.parse_error and type(report.error).__name__ in row.parse_error
        assert row.review_count == 0 and row.page_kind == report.page_kind
        assert load_body(connection, row.body_sha256) == blocked
    assert _count(engine, reviews) == 0


def test_bodies_are_stored_once_and_recaptures_compress_against_the_last(engine: Engine) -> None:
    name = "anime-91234-reviews-2026-02.html"
    body = (HISTORY / name).read_bytes()
    changed = body.replace(b"gorgeous", b"beautiful")
    ingest_page(engine, fetched(name))
    ingest_page(engine, fetched(name, at=datetime(2026, 3, 1, tzinfo=UTC)))
    ingest_page(engine, fetched(name, at=datetime(2026, 4, 1, tzinfo=UTC), body=changed))
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(raw_bodies.c.sha256, raw_bodies.c.encoding, raw_bodies.c.data)
        ).all()
        assert sorted(row.encoding for row in stored) == ["zstd", "zstd-ref"]
        for row in stored:
            original = body if row.encoding == "zstd" else changed
            assert load_body(connection, row.sha256) == original
            assert len(row.data) < len(original) / 3


def test_base_chains_stay_short_and_every_body_reads_back(engine: Engine) -> None:
    name = "anime-91234-reviews-2026-02.html"
    body = (HISTORY / name).read_bytes()
    other = "https://myanimelist.net/anime/5/Other/reviews"
    elsewhere = "https://mirror.example/anime/5/Other/reviews"

    def store(url: str, day: int, text: bytes) -> tuple[str, str]:
        page = FetchedPage(url, url, 200, (), text, datetime(2026, 3, day, tzinfo=UTC))
        report = ingest_page(engine, page)
        with engine.connect() as connection:
            sha = connection.execute(
                sa.select(raw_pages.c.body_sha256).where(raw_pages.c.id == report.raw_page_id)
            ).scalar_one()
            encoding = connection.execute(
                sa.select(raw_bodies.c.encoding).where(raw_bodies.c.sha256 == sha)
            ).scalar_one()
        return sha, encoding

    versions = [body.replace(b"gorgeous", f"gorgeous {n}".encode()) for n in range(5)]
    stored = [
        store(PAGE_URL, 1, versions[0]),  # first page of the site: no base
        store(other, 2, versions[1]),  # first capture of its URL: a same-site base
        store(other, 3, versions[2]),  # recapture: the newest capture of its URL
        store(other, 4, versions[3]),  # chain at its limit: shares that capture's base
        store(elsewhere, 5, versions[4]),  # another site: no base
    ]
    assert [encoding for _, encoding in stored] == [
        "zstd",
        "zstd-ref",
        "zstd-ref2",
        "zstd-ref2",
        "zstd",
    ]
    with engine.connect() as connection:
        for (sha, _), original in zip(stored, versions, strict=True):
            assert load_body(connection, sha) == original


def test_a_damaged_body_is_reported_not_returned(engine: Engine) -> None:
    report = ingest_page(engine, fetched("anime-91234-reviews-2026-02.html"))
    with engine.begin() as connection:
        sha = connection.execute(
            sa.select(raw_pages.c.body_sha256).where(raw_pages.c.id == report.raw_page_id)
        ).scalar_one()
        connection.execute(sa.update(raw_bodies).values(data=b"not zstd at all"))
        with pytest.raises(StoreError, match="cannot decompress"):
            load_body(connection, sha)
        connection.execute(sa.update(raw_bodies).values(encoding="lz4"))
        with pytest.raises(StoreError, match="unknown encoding"):
            load_body(connection, sha)
        with pytest.raises(StoreError, match="missing"):
            load_body(connection, "0" * 64)


def test_fetch_errors_are_recorded(engine: Engine) -> None:
    error = TooManyRedirects("12 redirects", url="https://myanimelist.net/a")
    record_fetch_error(engine, "https://myanimelist.net/a", error)
    with engine.connect() as connection:
        row = connection.execute(sa.select(fetch_errors)).one()
    assert (row.url, row.error, row.message) == (
        "https://myanimelist.net/a",
        "TooManyRedirects",
        "12 redirects",
    )


@pytest.mark.slow
def test_concurrent_ingest_of_overlapping_pages(db_url: str) -> None:
    # Real pages too when the shared corpus is here: more reviews and users per page.
    corpus_folder = CORPUS / "mal"
    corpus = sorted(corpus_folder.glob("*.html"))
    engine = open_engine(db_url)
    pages = [fetched(name) for name in CAPTURES]
    pages += [
        fetched("c", at=datetime(2022, 10, 1, tzinfo=UTC), body=path.read_bytes())
        for path in corpus
    ]
    failures: list[BaseException] = []

    def worker(shift: int) -> None:
        try:
            for page in pages[shift:] + pages[:shift]:
                # Each thread's own captures of the same pages (one capture is one page).
                moment = page.fetched_at + timedelta(seconds=shift)
                ingest_page(engine, replace(page, fetched_at=moment))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(shift,)) for shift in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    total_reviews = sum(_count_parsed(page) for page in pages)
    assert _count(engine, raw_pages) == 4 * len(pages)
    assert _count(engine, review_observations) == 4 * total_reviews
    with engine.connect() as connection:
        dupes = connection.execute(
            sa.select(authors.c.name, sa.func.count())
            .group_by(authors.c.name)
            .having(sa.func.count() > 1)
        ).all()
    assert dupes == []
    engine.dispose()


def _count_parsed(page: FetchedPage) -> int:
    from scraper.sites import parse_page

    return len(parse_page(page.body, page.final_url, charset="utf-8").reviews)


@pytest.mark.parametrize("newest_first", [False, True])
def test_real_captures_in_either_order_keep_the_newest_values(
    engine: Engine, corpus_dir: Path, newest_first: bool
) -> None:
    folder = corpus_dir / "mal"
    captures = [
        ("anime-1-reviews-2022-06-legacy", datetime(2022, 6, 15, tzinfo=UTC)),
        ("anime-1-reviews-2022-10", datetime(2022, 10, 15, tzinfo=UTC)),
    ]
    url = "https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"
    for stem, at in reversed(captures) if newest_first else captures:
        body = (folder / f"{stem}.html").read_bytes()
        report = ingest_page(engine, FetchedPage(url, url, 200, (), body, at))
        assert report.error is None
    expected: dict[int, dict[str, object]] = {}
    for stem, _ in captures:  # oldest first: newer records overwrite older ones
        for line in (folder / f"{stem}.expected.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            expected[record["mal_id"]] = record
    with engine.connect() as connection:
        rows = {int(row.key): row for row in connection.execute(sa.select(reviews))}
        observations = connection.execute(
            sa.select(sa.func.count()).select_from(review_observations)
        ).scalar_one()
    assert set(rows) == set(expected)
    for review_id, record in expected.items():
        row = rows[review_id]
        assert (row.rating_value, row.extra["layout"], row.body) == (
            record["score"],
            record["layout"],
            record["review"],
        )
        assert row.extra["helpful_count"] == record["helpful_count"]
    assert observations == 40


def test_captures_with_one_capture_time_agree_on_review_and_user_name(engine: Engine) -> None:
    """Files saved together share a time: the later raw page wins for the review row
    and for its user's current name alike, and a reparse of the older page keeps it."""
    same_time = datetime(2026, 3, 1, tzinfo=UTC)
    for name in CAPTURES:  # oldest content first, all at one instant
        ingest_page(engine, fetched(name, same_time), source="file")
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(authors.c.name, reviews.c.rating_value)
            .join(reviews, reviews.c.author_id == authors.c.id)
            .where(reviews.c.key == "900001")
        ).one()
    assert tuple(row) == ("Marrow-Finch", 7)

    reparse(engine, everything=True)
    with engine.connect() as connection:
        name = connection.execute(
            sa.select(authors.c.name)
            .join(reviews, reviews.c.author_id == authors.c.id)
            .where(reviews.c.key == "900001")
        ).scalar_one()
    assert name == "Marrow-Finch"


def test_three_authors_sharing_a_name_and_an_avatar_become_one(engine: Engine) -> None:
    # Pairs come in any order: (20, 26) merges 26 into 20 before (26, 29) is looked at,
    # so 29 must join 20 (26's survivor), not the author just deleted.
    from scraper.sites import site_for_record
    from scraper.store.authors import _merge_same_people

    at = datetime(2026, 1, 1, tzinfo=UTC)
    avatar = "https://cdn.myanimelist.net/images/userimages/7700101.jpg"
    with engine.begin() as connection:
        ids = [
            connection.execute(
                sa.insert(authors).values(
                    site="myanimelist", name="Same", image_url=avatar, name_seen_at=at
                )
            ).inserted_primary_key[0]
            for _ in range(3)
        ]
        for author_id, name in zip(ids, ("Same", "Before", "Earlier"), strict=True):
            connection.execute(
                sa.insert(author_names).values(
                    author_id=author_id, name=name, first_seen_at=at, last_seen_at=at
                )
            )
        merged = _merge_same_people(connection, site_for_record("myanimelist"), reversed(ids))
    keep = min(ids)
    assert merged == {author_id: keep for author_id in ids if author_id != keep}
    with engine.connect() as connection:
        assert connection.execute(sa.select(authors.c.id)).scalars().all() == [keep]
        names = connection.execute(
            sa.select(author_names.c.name).where(author_names.c.author_id == keep)
        ).scalars()
        assert sorted(names) == ["Before", "Earlier", "Same"]


def test_a_pages_next_link_is_stored_so_an_unfetched_page_is_not_parsed_again(
    engine: Engine,
) -> None:
    from conftest import MAL

    from scraper.crawl._stored import stored_next_url

    listing = "https://myanimelist.net/anime/90001/Starlight_Courier/reviews"
    body = (MAL / "anime-reviews-current.html").read_bytes()
    page = replace(
        fetched(next(iter(CAPTURES)), body=body), requested_url=listing, final_url=listing
    )
    page_id = ingest_page(engine, page).raw_page_id
    link = f"{listing}?sort=suggested&filter_check=&filter_hide=&preliminary=on&spoiler=off&p=2"

    def set_page(**values: object) -> None:
        with engine.begin() as connection:
            connection.execute(sa.update(raw_pages).where(raw_pages.c.id == page_id).values(values))

    assert stored_next_url(engine, page_id) == link
    set_page(next_url="https://myanimelist.net/elsewhere")
    assert stored_next_url(engine, page_id) == "https://myanimelist.net/elsewhere"  # not parsed
    set_page(records_sha256=None)  # a page stored before revision 0004: parsed again
    assert stored_next_url(engine, page_id) == link
    # A reparse that reads another link (another digest) writes the page, link and all.
    set_page(parser_version="0.0.1", records_sha256="0" * 64)
    assert reparse(engine).written == 1
    assert stored_next_url(engine, page_id) == link
