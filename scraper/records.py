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
    "Entry",
    "FetchedPage",
    "PageKind",
    "PageResult",
    "Review",
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
