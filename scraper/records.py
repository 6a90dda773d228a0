"""The data that flows through the archive: review records (contract v2, the same
shape for every site), page results from the site parsers, and fetched pages from
the network or from disk. A site's own record shape (its contract v1 keys) lives
in its folder under ``scraper.sites`` and travels in ``Record.extra``.

These are plain immutable records (named tuples: cheap to import and to build,
which `reviews parse` needs) with no behaviour beyond conversion to the
contract's JSON shape, so every layer can share them without importing another.
``FetchedPage`` lives in ``scraper.fetched`` and is loaded on first use.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from scraper.fetched import FetchedPage

__all__ = [
    "Author",
    "FetchedPage",
    "PageKind",
    "PageResult",
    "Rating",
    "Record",
    "ReviewedItem",
]


class ReviewedItem(NamedTuple):
    """The reviewed thing (contract v2 ``item``): a show, a recipe, a shop."""

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
    ``extra`` holds a site's own keys (its contract v1 keys), emitted before
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

    ENTRY_REVIEWS = "entry_reviews"  # the reviews of one item (a listing, or an item's page)
    SINGLE_REVIEW = "single_review"  # one review's own page (a permalink)
    RECENT_REVIEWS = "recent_reviews"  # reviews of many items, newest first
    USER_REVIEWS = "user_reviews"  # the reviews of one author
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
    ``item`` the reviewed thing the page is about (None for a page of many);
    ``next_url`` the next page of the listing ("More Reviews", ``rel="next"``),
    None on the last page; ``layout`` the page generation or markup syntax it was
    read from; ``problem`` a human sentence for the non-review kinds.
    """

    kind: PageKind
    url: str | None
    reviews: tuple[Record, ...] = ()
    item: ReviewedItem | None = None
    next_url: str | None = None
    layout: str | None = None
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


if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name here

    def __getattr__(name: str) -> Any:
        # FetchedPage is a dataclass (callers use dataclasses.replace on it);
        # loading it on first use keeps `dataclasses` out of `reviews parse`.
        if name == "FetchedPage":
            from scraper.fetched import FetchedPage

            return FetchedPage
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
