"""MyAnimeList's own record (contract v1, Jikan-shaped) and its v2 form.

The parser reads each review into a ``Review`` (what the v1 contract names), and
``to_record`` turns it into the site-generic ``Record``: the v1 keys travel in
``Record.extra`` (so ``Record.to_dict()`` prints every v1 key first, with the same
values, then the v2 keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from scraper.records import Author, Rating, Record, ReviewedItem

__all__ = [
    "BEST_SCORE",
    "REACTION_KINDS",
    "SITE",
    "Entry",
    "EntryType",
    "Layout",
    "Review",
    "User",
    "permalink",
    "to_record",
]

#: The namespace of MyAnimeList's records (contract v2 ``site``).
SITE = "myanimelist"
#: MyAnimeList's rating scale: 1 to 10.
BEST_SCORE = 10
WORST_SCORE = 1

EntryType = Literal["anime", "manga"]
Layout = Literal["current", "legacy"]

#: Reaction kinds in contract order; ``overall`` is the total.
REACTION_KINDS: tuple[str, ...] = (
    "overall",
    "nice",
    "love_it",
    "funny",
    "confusing",
    "informative",
    "well_written",
    "creative",
)


class Entry(NamedTuple):
    """An anime or manga that reviews are about."""

    mal_id: int
    type: EntryType
    title: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {"mal_id": self.mal_id, "type": self.type, "title": self.title, "url": self.url}


class User(NamedTuple):
    """A reviewer as named on the page it was read from."""

    username: str
    url: str
    image_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "url": self.url, "image_url": self.image_url}


class Review(NamedTuple):
    """One review record, contract v1 (see shared/record-contract.md).

    ``date`` is timezone-aware (UTC). ``reactions`` and ``scores`` are plain
    mappings in contract key order, or None where the layout has none.
    """

    mal_id: int
    type: EntryType
    entry: Entry
    user: User
    date: datetime
    score: int
    tags: tuple[str, ...]
    is_spoiler: bool
    is_preliminary: bool
    episodes_watched: int | None
    chapters_read: int | None
    reactions: Mapping[str, int] | None
    helpful_count: int | None
    scores: Mapping[str, int] | None
    review: str
    layout: Layout

    @property
    def url(self) -> str:
        return permalink(self.mal_id)

    def to_dict(self) -> dict[str, Any]:
        """Return the contract record: JSON-ready, keys in contract order."""
        return {
            "mal_id": self.mal_id,
            "url": self.url,
            "type": self.type,
            "entry": self.entry.to_dict(),
            "user": self.user.to_dict(),
            "date": self.date.isoformat(),
            "score": self.score,
            "tags": list(self.tags),
            "is_spoiler": self.is_spoiler,
            "is_preliminary": self.is_preliminary,
            "episodes_watched": self.episodes_watched,
            "chapters_read": self.chapters_read,
            "reactions": dict(self.reactions) if self.reactions is not None else None,
            "helpful_count": self.helpful_count,
            "scores": dict(self.scores) if self.scores is not None else None,
            "review": self.review,
            "layout": self.layout,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Review:
        """Build a record from its contract dict (the inverse of ``to_dict``)."""
        entry = data["entry"]
        user = data["user"]
        return cls(
            mal_id=int(data["mal_id"]),
            type=data["type"],
            entry=Entry(
                mal_id=int(entry["mal_id"]),
                type=entry["type"],
                title=entry["title"],
                url=entry["url"],
            ),
            user=User(username=user["username"], url=user["url"], image_url=user["image_url"]),
            date=datetime.fromisoformat(data["date"]),
            score=int(data["score"]),
            tags=tuple(data["tags"]),
            is_spoiler=bool(data["is_spoiler"]),
            is_preliminary=bool(data["is_preliminary"]),
            episodes_watched=data["episodes_watched"],
            chapters_read=data["chapters_read"],
            reactions=data["reactions"],
            helpful_count=data["helpful_count"],
            scores=data["scores"],
            review=data["review"],
            layout=data["layout"],
        )


def permalink(review_id: int | str) -> str:
    """Return the address of review *review_id* on myanimelist.net."""
    return f"https://myanimelist.net/reviews.php?id={review_id}"


def to_record(review: Review) -> Record:
    """Return *review* as a v2 record, its v1 keys in ``extra``."""
    entry, user = review.entry, review.user
    v1 = review.to_dict()
    return Record(
        site=SITE,
        id=str(review.mal_id),
        url=v1["url"],
        item=ReviewedItem(name=entry.title, type=entry.type, url=entry.url),
        author=Author(name=user.username, url=user.url, image_url=user.image_url),
        date=v1["date"],
        title=None,
        rating=Rating(review.score, BEST_SCORE, WORST_SCORE),
        body=review.review,
        tags=review.tags,
        reactions=v1["reactions"],
        source=f"mal-{review.layout}",
        extra=v1,
    )
