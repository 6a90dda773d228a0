"""Small readers shared by both layouts: dates, numbers, users, review ids.

Each raises ``MalformedReview`` with a reason when the page does not hold what
the contract needs, so a broken element is skipped and named instead of being
turned into a wrong record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from selectolax.lexbor import LexborNode

from scraper.sites.mal.page import MAL_ORIGIN, PageContext, entry_from_url
from scraper.sites.mal.text import clean_inline
from scraper.sites.mal.v1 import Entry, User

__all__ = [
    "MalformedReview",
    "entry_from_links",
    "parse_date",
    "parse_int",
    "review_id",
    "review_id_in",
    "seen_count",
    "user_from",
]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DATE = re.compile(r"([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),\s*(\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})\s*([AaPp])\.?[Mm]?")
_REVIEW_ID = re.compile(r"reviews\.php\?(?:[^#]*&)?id=(\d+)")
_PROFILE = re.compile(r"/profile/([^/?#]+)")
_INT = re.compile(r"-?\d[\d,]*")
#: "(13/26 eps)", "(112/162 chp)", "(3/? eps)", legacy "13 of 26 episodes seen".
_SEEN = re.compile(r"(\d+)\s*(?:/|of)\s*(?:\d+|\?)")


class MalformedReview(Exception):
    """A review element lacks a field the contract requires (internal to the parser)."""


def parse_int(text: str | None, what: str) -> int:
    """Return the first integer in *text* (thousands commas allowed); raise MalformedReview."""
    match = _INT.search(text or "")
    if match is None:
        raise MalformedReview(f"no {what}")
    return int(match.group(0).replace(",", ""))


def parse_date(day_text: str | None, time_text: str | None) -> datetime:
    """Return ``Aug 24, 2008`` + ``5:46 AM`` as a UTC datetime; raise MalformedReview.

    MAL prints no zone; Jikan reads these as UTC and so do we. A missing time
    means midnight.
    """
    match = _DATE.search(day_text or "")
    if match is None or match.group(1).lower() not in _MONTHS:
        raise MalformedReview(f"unreadable date {clean_inline(day_text or '')!r}")
    month = _MONTHS[match.group(1).lower()]
    hour = minute = 0
    # The time sits in the element's title; some captures print it after the date.
    clock = _TIME.search(time_text or "") or _TIME.search(day_text or "", match.end())
    if clock is not None:
        hour, minute = int(clock.group(1)) % 12, int(clock.group(2))
        if clock.group(3).lower() == "p":
            hour += 12
    try:
        return datetime(int(match.group(3)), month, int(match.group(2)), hour, minute, tzinfo=UTC)
    except ValueError as error:
        raise MalformedReview(f"impossible date {match.group(0)!r}: {error}") from None


def review_id(links: list[LexborNode]) -> int:
    """Return the review id from the first ``reviews.php?id=N`` link; raise MalformedReview."""
    for link in links:
        match = _REVIEW_ID.search(link.attrs.get("href") or "")
        if match is not None:
            return int(match.group(1))
    raise MalformedReview("no permalink (reviews.php?id=N)")


def review_id_in(node: LexborNode, selector: str) -> int | None:
    """Return ``review_id(node.css(selector))``, or None when *node* has no such link.

    The first link nearly always names the review, and finding it stops the walk
    there (``css_first``); only when it does not are all the links read.
    """
    first = node.css_first(selector)
    if first is None:
        return None
    match = _REVIEW_ID.search(first.attrs.get("href") or "")
    if match is not None:
        return int(match.group(1))
    return review_id(node.css(selector))


def entry_from_links(links: Iterable[LexborNode], context: PageContext, where: str) -> Entry:
    """Return the entry named by the first of *links* that names one, else the page's
    own entry; raise MalformedReview when there is neither.

    Pages that mix entries name each review's entry next to it; other pages name
    one entry for all their reviews.
    """
    for link in links:
        title = clean_inline(link.text())
        entry = entry_from_url(link.attrs.get("href") or "", title) if title else None
        if entry is not None:
            return entry
    if context.entry is None:
        raise MalformedReview(f"no entry: neither {where} nor an entry page")
    return context.entry


def user_from(link: LexborNode | None, avatar: LexborNode | None) -> User:
    """Return the reviewer named by a profile *link*; raise MalformedReview."""
    if link is None:
        raise MalformedReview("no reviewer link")
    href = link.attrs.get("href") or ""
    match = _PROFILE.search(href)
    name = clean_inline(link.text())
    if match is None or not name:
        raise MalformedReview("no reviewer name")
    image = None
    if avatar is not None:
        image = avatar.attrs.get("data-src") or avatar.attrs.get("src") or None
    return User(
        username=name,
        url=f"{MAL_ORIGIN}/profile/{match.group(1)}",
        image_url=image.strip() if image else None,
    )


def seen_count(text: str | None) -> int | None:
    """Return N from ``(N/M eps)``/``N of M episodes seen``, or None when absent."""
    match = _SEEN.search(text or "")
    return int(match.group(1)) if match is not None else None
