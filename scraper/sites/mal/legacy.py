"""The legacy review layout (2018 to mid 2022): ``div.borderDark`` boxes."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from scraper.sites.mal import selectors as sel
from scraper.sites.mal.fields import (
    MalformedReview,
    entry_from_links,
    parse_date,
    parse_int,
    review_id_in,
    user_from,
)
from scraper.sites.mal.page import PageContext
from scraper.sites.mal.text import body_text, clean_inline
from scraper.sites.mal.v1 import Review, User

__all__ = ["is_legacy_review", "parse_legacy_review"]

_OVERALL = re.compile(r"Overall\s+Rating\s*:?\s*(\d+)", re.IGNORECASE)
# "26 of 26 episodes seen", "13 of ? episodes seen", "95 of 162 chapters read"
_SEEN_LINE = re.compile(r"(\d+)\s+of\s+(?:\d+|\?)\s+(?:episodes|chapters)", re.IGNORECASE)
_HELPFUL_ID = re.compile(r"rhelp(\d+)$")
# The reviewer's own profile link (not "/profile/NAME/reviews", "All reviews").
_PROFILE_ONLY = re.compile(r"/profile/[^/?#]+/?$")


def is_legacy_review(element: LexborNode) -> bool:
    """Return True for a ``div.borderDark`` that holds a review (not other boxes)."""
    return element.css_first(sel.LEG_BODY) is not None


def _header(element: LexborNode) -> tuple[LexborNode, LexborNode | None]:
    """Return the box's header (everything before the body), or the box itself, and
    the header's rating column (``LEG_META``; None when it has none)."""
    for child in element.iter():
        if child.tag == "div":
            meta = child.css_first(sel.LEG_META)
            if meta is not None:
                return child, meta
    return element, element.css_first(sel.LEG_META)


def _scores(body: LexborNode) -> dict[str, int] | None:
    """Return the hidden sub-score table as {lower-case label: value}, or None."""
    table = body.css_first(sel.LEG_SCORE_TABLE)
    if table is None:
        return None
    scores: dict[str, int] = {}
    for row in table.css(sel.LEG_SCORE_ROW):
        cells = [cell.text() for cell in row.iter() if cell.tag == "td"]
        label = clean_inline(cells[0]).lower() if len(cells) >= 2 else ""
        if label:
            scores[label] = parse_int(cells[1], f"{label} sub-score")
    return scores or None


def _user(header: LexborNode) -> LexborNode | None:
    for link in header.css(sel.LEG_PROFILE_LINK):
        if _PROFILE_ONLY.search(link.attrs.get("href") or "") and link.text(strip=True):
            return link
    return None


def _reviewer(header: LexborNode, context: PageContext) -> User:
    """Return the reviewer; a user's reviews page may name them only once, at the top."""
    link = _user(header)
    if link is None and context.owner is not None:
        return context.owner
    return user_from(link, header.css_first(sel.LEG_AVATAR))


def _mal_id(element: LexborNode) -> int:
    try:
        found = review_id_in(element, sel.LEG_PERMALINK)
        if found is None:
            raise MalformedReview("no permalink (reviews.php?id=N)")
        return found
    except MalformedReview:
        helpful = element.css_first(sel.LEG_HELPFUL)
        match = _HELPFUL_ID.search(helpful.attrs.get("id") or "") if helpful else None
        if match is None:
            raise
        return int(match.group(1))


def parse_legacy_review(element: LexborNode, context: PageContext) -> Review:
    """Return the record for one legacy ``div.borderDark``; raise MalformedReview."""
    body = element.css_first(sel.LEG_BODY)
    header, meta = _header(element)
    if body is None or meta is None:
        raise MalformedReview("no body or no rating column")
    # Only the header is searched: the body may link other titles.
    entry = entry_from_links(header.css(sel.LEG_ENTRY_LINK), context, "an entry link")
    meta_text = clean_inline(meta.text())
    overall = _OVERALL.search(meta_text)
    if overall is None:
        raise MalformedReview("no Overall Rating")
    date_node = meta.css_first(sel.LEG_DATE)
    helpful = element.css_first(sel.LEG_HELPFUL)
    preliminary = any(
        "Preliminary" in (icon.parent.text() if icon.parent else "")
        for icon in header.css(sel.LEG_TAG_ICON)
    )
    # "N of M episodes seen" counts even when the review is not preliminary.
    seen_line = _SEEN_LINE.search(meta_text)
    seen = int(seen_line.group(1)) if seen_line else None
    scores = _scores(body)  # before body_text, which removes the table

    return Review(
        mal_id=_mal_id(element),
        type=entry.type,
        entry=entry,
        user=_reviewer(header, context),
        date=parse_date(
            date_node.text() if date_node else None,
            date_node.attrs.get("title") if date_node else None,
        ),
        score=int(overall.group(1)),
        tags=("Preliminary",) if preliminary else (),
        is_spoiler=False,
        is_preliminary=preliminary,
        episodes_watched=seen if entry.type == "anime" else None,
        chapters_read=seen if entry.type == "manga" else None,
        reactions=None,
        helpful_count=parse_int(helpful.text(), "helpful count") if helpful else None,
        scores=scores,
        review=body_text(body, sel.LEG_BODY_CHROME),
        layout="legacy",
    )
