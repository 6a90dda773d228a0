"""MyAnimeList review pages: entry reviews, permalinks, recent and user reviews.

Both layouts are read; which one a page uses is decided by the review
containers it holds. A review element that lacks a field the contract needs
(no score, no date, no id...) is skipped, and ``PageResult.problem`` names it:
a wrong record is worse than a missing one, and the rest of the page is still
good. A page whose every review element is broken is UNRECOGNISED (the drift
alarm), never an empty success.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.config import PROBLEMS_NAMED
from scraper.records import PageKind, PageResult, ReviewedItem
from scraper.sites import NextLink
from scraper.sites._blocked import block_reason
from scraper.sites.mal import selectors as sel
from scraper.sites.mal.archive import MalPolicy, on_mal_host
from scraper.sites.mal.current import parse_current_review
from scraper.sites.mal.fields import MalformedReview, review_id
from scraper.sites.mal.legacy import is_legacy_review, parse_legacy_review
from scraper.sites.mal.page import (
    PageContext,
    canonical_url,
    guess_kind,
    next_page_url,
    page_context,
)
from scraper.sites.mal.v1 import Entry, Layout, Review, to_record

__all__ = ["MAL", "MalSite"]

_REVIEW_PATH_WORDS = ("/reviews", "reviews.php")


class MalSite(MalPolicy):
    """The MyAnimeList site (see ``scraper.sites.Site``): its parser and its policy."""

    def matches(self, tree: LexborHTMLParser, url: str | None) -> bool:
        """Return True when the page comes from MyAnimeList (by its content or address)."""
        site_name = tree.css_first('meta[property="og:site_name"]')
        if (
            site_name is not None
            and "myanimelist" in (site_name.attrs.get("content") or "").lower()
        ):
            return True
        canonical = tree.css_first(sel.CANONICAL)
        href = canonical.attrs.get("href") if canonical is not None else None
        if on_mal_host(href) or tree.css_first(sel.REVIEW_PAGE_HINTS) is not None:
            return True
        return on_mal_host(url)

    def next_link(self, tree: LexborHTMLParser, url: str | None) -> NextLink | None:
        """Return the page's "More Reviews" link as ``parse`` gives it, reading one review.

        ``parse`` gives the link whenever one review of the page is readable, and a
        page with review elements is never a block page: so when the first element
        reads (on a copy: reading a review consumes its node), the link is the one
        ``parse`` finds. Otherwise None: only the full parse can tell.
        """
        page_url = canonical_url(tree, url)
        parts = page_parts(tree)
        if parts.layout is None or not parts.reviews:
            return None
        parse = parse_current_review if parts.layout == "current" else parse_legacy_review
        try:
            parse(parts.reviews[0].clone(), page_context(tree, page_url))
        except MalformedReview:
            return None
        return NextLink(next_page_url(tree, parts.more, url, page_url))

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return what the page holds; see the module docstring for broken elements."""
        page_url = canonical_url(tree, url)
        parts = page_parts(tree)
        layout, elements = parts.layout, parts.reviews
        if layout is None:
            return _no_reviews(tree, page_url)
        context = page_context(tree, page_url)._replace(titleblocks=parts.titleblocks)
        reviews, problems = _parse_elements(layout, elements, context)
        if not reviews:
            return PageResult(
                kind=PageKind.UNRECOGNISED,
                url=page_url,
                item=_item(context.entry),
                layout=layout,
                problem=f"layout not recognised: {len(elements)} {layout} review element(s) "
                "but no readable review: " + _summary(problems),
            )
        kind = context.kind
        if kind is None:  # the address is silent: the page's structure decides
            mixed = len({review.entry.url for review in reviews}) > 1 or (
                parts.titleblocks and tree.css_first(sel.CUR_TITLEBLOCK) is not None
            )
            kind = guess_kind(context, len(reviews), mixed)
        entry = context.entry
        if entry is None and kind is PageKind.SINGLE_REVIEW:
            entry = reviews[0].entry  # a permalink page is about its review's entry
        return PageResult(
            kind=kind,
            url=page_url,
            reviews=tuple(map(to_record, reviews)),
            item=_item(entry),
            next_url=next_page_url(tree, parts.more, url, page_url),
            layout=layout,
            problem="; ".join(problems) if problems else None,
        )


class PageParts(NamedTuple):
    """What one walk of a page found: its review elements, "More Reviews" link, and
    whether it holds any ``div.titleblock`` (see ``PageContext.titleblocks``)."""

    layout: Layout | None
    reviews: list[LexborNode]
    more: LexborNode | None
    titleblocks: bool = True


def page_parts(tree: LexborHTMLParser) -> PageParts:
    """Return the page's review elements (current layout first) and "More Reviews" link.

    One walk with ``sel.PAGE_PARTS``; each node is told apart by its tag and
    classes, which is what the selectors in that list say.
    """
    current: list[LexborNode] = []
    boxes: list[LexborNode] = []
    more: LexborNode | None = None
    titleblocks = False
    attr, marked = sel.MORE_REVIEWS_ATTR
    previous = 0
    for node in tree.css(sel.PAGE_PARTS):
        if node.mem_id == previous:  # matched by two selectors of the list
            continue
        previous = node.mem_id
        if node.tag == "a":
            if more is None and node.attrs.get(attr) == marked:
                more = node
            continue
        classes = (node.attrs.get("class") or "").split()
        if "titleblock" in classes:
            titleblocks = True
        if "review-element" in classes and "js-review-element" in classes:
            current.append(node)
        elif "borderDark" in classes:
            boxes.append(node)
    if current:
        return PageParts("current", current, more, titleblocks)
    legacy = [box for box in boxes if is_legacy_review(box)]
    return PageParts("legacy" if legacy else None, legacy, more, titleblocks)


def _item(entry: Entry | None) -> ReviewedItem | None:
    return ReviewedItem(entry.title, entry.type, entry.url) if entry is not None else None


def _parse_elements(
    layout: Layout, elements: list[LexborNode], context: PageContext
) -> tuple[list[Review], list[str]]:
    parse = parse_current_review if layout == "current" else parse_legacy_review
    reviews: list[Review] = []
    problems: list[str] = []
    seen: set[int] = set()
    for number, element in enumerate(elements, start=1):
        try:
            review = parse(element, context)
        except MalformedReview as error:
            problems.append(f"review element {number}{_id_note(element)} skipped: {error}")
            continue
        # A page repeats nothing legitimately; a duplicate is a broken page.
        if review.mal_id in seen:
            problems.append(f"review element {number} skipped: repeats review {review.mal_id}")
            continue
        seen.add(review.mal_id)
        reviews.append(review)
    return reviews, problems


def _id_note(element: LexborNode) -> str:
    """Return " (review N)" when the broken element still names its review."""
    try:
        return f" (review {review_id(element.css(sel.LEG_PERMALINK))})"
    except MalformedReview:
        return ""


def _summary(problems: list[str], limit: int = PROBLEMS_NAMED) -> str:
    """Return the first few problems joined, saying how many more there were."""
    shown = "; ".join(problems[:limit])
    return shown + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def _no_reviews(tree: LexborHTMLParser, page_url: str | None) -> PageResult:
    reason = block_reason(tree)
    if reason is not None:
        return PageResult(kind=PageKind.BLOCKED, url=page_url, problem=f"blocked page: {reason}")
    path = urlsplit(page_url or "").path + "?" + urlsplit(page_url or "").query
    looks_like = tree.css_first(sel.REVIEW_PAGE_HINTS) is not None or any(
        word in path for word in _REVIEW_PATH_WORDS
    )
    if looks_like:
        return PageResult(
            kind=PageKind.UNRECOGNISED,
            url=page_url,
            problem="looks like a review page, but its layout is not recognised: "
            "no review element found (has the page changed?)",
        )
    return PageResult(
        kind=PageKind.NOT_REVIEW_PAGE, url=page_url, problem="not a review page: no reviews on it"
    )


MAL = MalSite()
