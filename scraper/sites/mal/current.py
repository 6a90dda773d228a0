"""The current review layout (late 2022 on): ``div.review-element``."""

from __future__ import annotations

import json
from collections.abc import Mapping

from selectolax.lexbor import LexborNode

from scraper.sites.mal import selectors as sel
from scraper.sites.mal.fields import (
    MalformedReview,
    entry_from_links,
    parse_date,
    parse_int,
    review_id,
    review_id_in,
    seen_count,
    user_from,
)
from scraper.sites.mal.page import PageContext
from scraper.sites.mal.text import body_text, clean_inline
from scraper.sites.mal.v1 import REACTION_KINDS, Review, User

__all__ = ["parse_current_review"]


def _reactions(element: LexborNode) -> Mapping[str, int] | None:
    """Return the reaction counts from ``data-reactions``.

    The visible counters are always 0 in static HTML (JavaScript fills them),
    so the JSON attribute is the only truth; no attribute means unknown (None).
    """
    raw = element.attrs.get(sel.CUR_REACTIONS_ATTR)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        counts = [int(value) for value in data["count"]]
        total = int(data["num"])
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        raise MalformedReview(f"unreadable data-reactions ({error})") from None
    if len(counts) < len(REACTION_KINDS) - 1:
        raise MalformedReview(f"data-reactions holds {len(counts)} counts, expected 7")
    return dict(zip(REACTION_KINDS, [total, *counts], strict=False))


def _label(tag: LexborNode, classes: list[str]) -> str | None:
    """Return a tag's label as displayed, once.

    The label is the tag's own text; its icon (an ``<i>``, an ``<img alt>``,
    a span repeating the word) and the preliminary ``(N/M eps)`` counter are
    not. A tag whose words all sit in child elements falls back to the label
    its kind always shows.
    """
    label = clean_inline(tag.text(deep=False))  # its own text nodes, not its children's
    half = len(label) // 2
    if label and len(label) % 2 == 0 and label[:half] == label[half:]:
        label = label[:half]  # "Well-writtenWell-written": icon text and label
    if label:
        return label
    return next((sel.TAG_LABELS[name] for name in classes if name in sel.TAG_LABELS), None)


def _tags(element: LexborNode) -> tuple[list[str], set[str], str]:
    """Return (labels in page order, tag kinds, preliminary counter text)."""
    labels: list[str] = []
    kinds: set[str] = set()
    counter = ""
    for tag in element.css(sel.CUR_TAG):
        classes = (tag.attrs.get("class") or "").split()
        kinds.update(classes)
        label = _label(tag, classes)
        if label:
            labels.append(label)
        if "preliminary" in classes:
            counter = tag.text()
    return labels, kinds, counter


def _user(element: LexborNode, context: PageContext) -> User:
    """Return the reviewer; a user's reviews page may name them only once, at the top."""
    link = element.css_first(sel.CUR_USERNAME)
    if link is None and context.owner is not None:
        return context.owner
    return user_from(link, element.css_first(sel.CUR_AVATAR))


def parse_current_review(element: LexborNode, context: PageContext) -> Review:
    """Return the record for one ``div.review-element``; raise MalformedReview."""
    mal_id = review_id_in(element, sel.CUR_PERMALINK)
    if mal_id is None:
        mal_id = review_id(element.css(sel.LEG_PERMALINK))
    links = element.css(sel.CUR_TITLEBLOCK) if context.titleblocks else ()
    entry = entry_from_links(links, context, "a titleblock link")
    date_node = element.css_first(sel.CUR_DATE)
    if date_node is None:
        raise MalformedReview("no date")
    score_node = element.css_first(sel.CUR_SCORE)
    text_node = element.css_first(sel.CUR_TEXT)
    if text_node is None:
        raise MalformedReview("no body (div.text)")
    labels, kinds, counter = _tags(element)
    preliminary = "preliminary" in kinds
    seen = seen_count(counter) if preliminary else None
    return Review(
        mal_id=mal_id,
        type=entry.type,
        entry=entry,
        user=_user(element, context),
        date=parse_date(date_node.text(), date_node.attrs.get("title")),
        score=parse_int(score_node.text() if score_node else None, "reviewer's rating"),
        tags=tuple(labels),
        is_spoiler="spoiler" in kinds,
        is_preliminary=preliminary,
        episodes_watched=seen if entry.type == "anime" else None,
        chapters_read=seen if entry.type == "manga" else None,
        reactions=_reactions(element),
        helpful_count=None,
        scores=None,
        review=body_text(text_node, sel.CUR_TEXT_CHROME),
        layout="current",
    )
