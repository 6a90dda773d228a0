"""The data that flows through the archive: review records (contract v1), page
results from the site parsers, and fetched pages from the network or from disk.

These are plain immutable records (named tuples: cheap to import and to build,
which `reviews parse` needs) with no behaviour beyond conversion to the
contract's JSON shape, so every layer can share them without importing another.
``FetchedPage`` lives in ``scraper.fetched`` and is loaded on first use.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from scraper.fetched import FetchedPage

__all__ = [
    "REACTION_KINDS",
    "Author",
    "Entry",
    "FetchedPage",
    "PageKind",
    "PageResult",
    "Rating",
    "Record",
    "Review",
    "ReviewedItem",
    "User",
]

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
        return f"https://myanimelist.net/reviews.php?id={self.mal_id}"

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


class ReviewedItem(NamedTuple):
    """The reviewed thing (contract v2 ``item``): an anime, a recipe, a shop."""

    name: str | None
    type: str | None
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "url": self.url}


class Author(NamedTuple):
    """Who wrote a review (contract v2 ``author``)."""

    name: str | None
    url: str | None = None
    image_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "image_url": self.image_url}


class Rating(NamedTuple):
    """A rating with its scale (contract v2 ``rating``)."""

    value: float
    best: float = 5.0
    worst: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _number(self.value),
            "best": _number(self.best),
            "worst": _number(self.worst),
        }


def _number(value: float) -> int | float:
    """Return *value* as an int when it is whole (``10`` rather than ``10.0`` in JSON)."""
    return int(value) if float(value).is_integer() else value


class Record(NamedTuple):
    """One review record of any site, contract v2 (see shared/record-contract.md).

    ``site`` and ``id`` together name the review across captures. ``date`` is
    the page's own text, as precise as it says (ISO 8601), never shifted.
    ``extra`` holds a site's own keys (MyAnimeList's v1 keys), emitted before
    the v2 keys by ``to_dict``; the archive stores it as JSON.
    """

    site: str
    id: str
    url: str
    item: ReviewedItem
    author: Author
    date: str | None
    title: str | None
    rating: Rating | None
    body: str | None
    tags: tuple[str, ...]
    reactions: Mapping[str, int] | None
    source: str
    extra: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the contract record: the site's own keys first, then the v2 keys."""
        data: dict[str, Any] = dict(self.extra) if self.extra else {}
        data.update(
            site=self.site,
            id=self.id,
            url=self.url,
            item=self.item.to_dict(),
            author=self.author.to_dict(),
            date=self.date,
            title=self.title,
            rating=self.rating.to_dict() if self.rating is not None else None,
            body=self.body,
            tags=list(self.tags),
            reactions=dict(self.reactions) if self.reactions is not None else None,
            source=self.source,
        )
        return data


class PageKind(enum.StrEnum):
    """What a fetched page turned out to be."""

    ENTRY_REVIEWS = "entry_reviews"  # /anime|manga/{id}/{slug}/reviews
    SINGLE_REVIEW = "single_review"  # /reviews.php?id=N
    RECENT_REVIEWS = "recent_reviews"  # /reviews.php?t=anime
    USER_REVIEWS = "user_reviews"  # /profile/{name}/reviews
    NOT_REVIEW_PAGE = "not_review_page"
    BLOCKED = "blocked"  # captcha / access denied served with any status
    UNRECOGNISED = "unrecognised"  # looks like a review page, yields nothing: drift alarm

    @property
    def has_reviews(self) -> bool:
        return self in _REVIEW_KINDS


_REVIEW_KINDS = frozenset(
    {
        PageKind.ENTRY_REVIEWS,
        PageKind.SINGLE_REVIEW,
        PageKind.RECENT_REVIEWS,
        PageKind.USER_REVIEWS,
    }
)


class PageResult(NamedTuple):
    """What a site parser read from one page.

    ``url`` is the page's canonical URL on the site's own host (when known);
    ``next_url`` the "More Reviews" link, None on the last page; ``problem`` a
    human sentence for the non-review kinds.
    """

    kind: PageKind
    url: str | None
    reviews: tuple[Review, ...] = ()
    entry: Entry | None = None
    next_url: str | None = None
    layout: Layout | None = None
    problem: str | None = None

    def raise_for_kind(self) -> PageResult:
        """Return self for review pages; raise the matching ParseError otherwise."""
        from scraper.errors import BlockedPage, LayoutNotRecognised, NotAReviewPage

        message = self.problem or self.kind.value.replace("_", " ")
        if self.kind is PageKind.BLOCKED:
            raise BlockedPage(message, url=self.url)
        if self.kind is PageKind.UNRECOGNISED:
            raise LayoutNotRecognised(message, url=self.url)
        if self.kind is PageKind.NOT_REVIEW_PAGE:
            raise NotAReviewPage(message, url=self.url)
        return self


def __getattr__(name: str) -> Any:
    # FetchedPage is a dataclass (callers use dataclasses.replace on it);
    # loading it on first use keeps `dataclasses` out of `reviews parse`.
    if name == "FetchedPage":
        from scraper.fetched import FetchedPage

        return FetchedPage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
