"""A small known archive for the query/export tests, built from pages we write.

``render_page`` writes an entry's reviews page in the current MAL layout (as
described in shared/mal-pages.md) with our own review text; ``build_archive``
ingests a handful of such pages through the archive's normal ingest, so every
query test reads what the parser and the store really produced. The tests in
this module check that the pages parse back to the reviews they were made from.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from scraper.records import FetchedPage
from scraper.sites import parse_page
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page

BASE = "https://myanimelist.net"


@dataclass(frozen=True)
class R:
    """One review to render: what the page will say about it."""

    id: int
    user: str
    date: datetime
    score: int
    tags: tuple[str, ...]
    body: str
    reactions: tuple[int, ...] = (3, 2, 1, 0, 0, 0, 0)
    seen: int | None = None  # preliminary: episodes / chapters seen


def _tag_html(label: str, review: R, type_: str) -> str:
    css = label.lower().replace(" ", "-")
    extra = ""
    if label == "Preliminary" and review.seen is not None:
        unit = "eps" if type_ == "anime" else "chp"
        extra = f" <span>({review.seen}/24 {unit})</span>"
    return f'<div class="tag {css} btn-label js-btn-label">{label}{extra}</div>'


def _review_html(review: R, type_: str) -> str:
    reactions = {"icon": ["1"], "num": sum(review.reactions)}
    reactions["count"] = [str(n) for n in review.reactions]
    first, _, rest = review.body.partition("\n\n")
    when = review.date
    hour = when.strftime("%I").lstrip("0") + when.strftime(":%M %p")
    day = f"{when.strftime('%b')} {when.day}, {when.year}"
    profile = f"{BASE}/profile/{review.user}"
    return f"""<div class="review-element js-review-element" data-reactions="{
        html.escape(json.dumps(reactions))
    }"><div class="thumbbody mt8">
<div class="thumb"><a href="{profile}"><img data-src="https://cdn.example.invalid/u/{
        review.user
    }.jpg" width="48"></a></div>
<div class="body">
<div title="{hour}" class="update_at">{day}</div><div class="username">
<a href="{profile}">{review.user}</a></div>
<div class="tags">{"".join(_tag_html(t, review, type_) for t in review.tags)}</div>
<div class="text">
{html.escape(first)}<br>
<br>
<span class="js-visible">...</span>
<span class="js-hidden" style="display: none;">{
        html.escape(rest).replace(chr(10) * 2, "<br>" + chr(10) + "<br>" + chr(10))
    }</span>
</div>
<div class="rating mt20 mb20 js-hidden">Reviewer’s Rating: <span class="num">{
        review.score
    }</span></div>
<div class="bottom-navi"><div class="open"><a href="{BASE}/reviews.php?id={
        review.id
    }">Open</a></div></div>
</div></div></div>
"""


def render_page(type_: str, mal_id: int, title: str, reviews: Sequence[R]) -> tuple[str, bytes]:
    """Return (URL, HTML bytes) of an entry's reviews page holding *reviews*."""
    slug = title.replace(" ", "_")
    url = f"{BASE}/{type_}/{mal_id}/{slug}/reviews"
    body = "".join(_review_html(review, type_) for review in reviews)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} - Reviews - MyAnimeList.net</title>
<link rel="canonical" href="{url}" />
<meta property="og:title" content="{html.escape(title)}" />
<meta property="og:url" content="{url}" />
</head><body><div id="contentWrapper">
<h1 class="title-name"><strong>{html.escape(title)}</strong></h1>
{body}</div></body></html>"""
    return url, page.encode("utf-8")


def _d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Our own review text, with words chosen for the full-text tests.
PAGES: list[tuple[str, int, str, list[R]]] = [
    (
        "anime",
        1001,
        "Harbour Lights",
        [
            R(
                5001,
                "QuietOtter",
                _d("2019-03-02 21:15"),
                9,
                ("Recommended", "Well-written"),
                "The lantern festival is the heart of it.\n\nA gentle show about a fishing town.",
            ),
            R(
                5002,
                "SaltyGull",
                _d("2020-07-14 08:05"),
                4,
                ("Not Recommended",),
                "Festival lanterns everywhere, but the plot sinks.\n\nI rate it 8.5 for looks.",
            ),
            R(
                5003,
                "MarrowFinch",
                _d("2021-11-30 23:59"),
                7,
                ("Mixed Feelings", "Preliminary"),
                "Six episodes in: the café scenes are lovely.\n\nThe lantern festival comes late.",
                seen=6,
            ),
        ],
    ),
    (
        "anime",
        1002,
        "Copper Moon Express",
        [
            R(
                5004,
                "QuietOtter",
                _d("2020-01-01 00:00"),
                10,
                ("Recommended", "Funny", "Creative"),
                "A train heist comedy that never slows down.\n\nWell-written jokes, every one.",
            ),
            R(
                5005,
                "TinCan",
                _d("2022-05-20 12:30"),
                2,
                ("Not Recommended", "Spoiler"),
                "The twist in the last car ruined it for me.\n\nFestival of nonsense.",
            ),
        ],
    ),
    (
        "manga",
        2001,
        "Salt and Ink",
        [
            R(
                5006,
                "SaltyGull",
                _d("2021-02-03 10:10"),
                8,
                ("Recommended", "Informative"),
                "Ink drawings of the sea, a festival of texture.\n\nSlow, quiet, worth it.",
            ),
            R(
                5007,
                "LanternKeeper",
                _d("2023-08-09 16:45"),
                5,
                ("Mixed Feelings", "Preliminary"),
                "Twenty chapters in and the lantern keeper has not spoken.\n\nPatience.",
                seen=20,
            ),
        ],
    ),
]

FETCHED_AT = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def page_of(type_: str, mal_id: int, title: str, reviews: Sequence[R]) -> FetchedPage:
    """Return the FetchedPage of a rendered page, as if served with status 200."""
    url, body = render_page(type_, mal_id, title, reviews)
    return FetchedPage(
        requested_url=url,
        final_url=url,
        status=200,
        headers=(("Content-Type", "text/html; charset=utf-8"), ("Server", "test")),
        body=body,
        fetched_at=FETCHED_AT,
        request_headers=(("User-Agent", "review-archiver-test"),),
    )


def expected_records() -> dict[int, dict[str, Any]]:
    """Return what the parser reads from the pages, by review id."""
    found = {}
    for type_, mal_id, title, reviews in PAGES:
        url, body = render_page(type_, mal_id, title, reviews)
        for review in parse_page(body, url).reviews:
            found[int(review.id)] = review.to_dict()
    return found


def build_archive(url: str, *, captures: int = 1) -> sa.Engine:
    """Ingest every page (*captures* times, a day apart); return the open engine."""
    engine = open_engine(url)
    for capture in range(captures):
        for type_, mal_id, title, reviews in PAGES:
            page = page_of(type_, mal_id, title, reviews)
            moment = page.fetched_at + timedelta(days=capture)
            page = FetchedPage(**{**_fields(page), "fetched_at": moment})
            report = ingest_page(engine, page, source="file")
            assert report.error is None, report.error
    return engine


def _fields(page: FetchedPage) -> dict[str, Any]:
    return {name: getattr(page, name) for name in FetchedPage.__slots__}


def test_rendered_pages_parse_back_to_what_they_were_made_from() -> None:
    records = expected_records()
    assert sorted(records) == [5001, 5002, 5003, 5004, 5005, 5006, 5007]
    for type_, mal_id, title, reviews in PAGES:
        for review in reviews:
            record = records[review.id]
            assert record["entry"] == {
                "mal_id": mal_id,
                "type": type_,
                "title": title,
                "url": f"{BASE}/{type_}/{mal_id}/{title.replace(' ', '_')}",
            }
            assert record["user"]["username"] == review.user
            assert record["date"] == review.date.isoformat()
            assert record["score"] == review.score
            assert tuple(record["tags"]) == review.tags
            assert record["review"] == review.body
            assert record["reactions"]["overall"] == sum(review.reactions)


@pytest.mark.parametrize("captures", [1, 2])
def test_the_archive_holds_every_review_once(sqlite_url: str, captures: int) -> None:
    engine = build_archive(sqlite_url, captures=captures)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM reviews")).scalar_one() == 7
            observations = conn.execute(sa.text("SELECT count(*) FROM review_observations"))
            assert observations.scalar_one() == 7 * captures
    finally:
        engine.dispose()
