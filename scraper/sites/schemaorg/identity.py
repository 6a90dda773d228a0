"""Which reviews on a page are one review, and what each one's id is.

Duplicates. A page may mark one review up twice: in JSON-LD and in microdata,
or in two JSON-LD blocks (an SEO plugin's graph beside a recipe plugin's
block). Two candidates are one review when their bodies agree (compared by their
letters and digits alone, case ignored, so punctuation, quotes, spaces and
entities a CMS changes on the way do not count; a body cut short with "..."
agrees with the whole), and nothing else disagrees: dates on the same day (or one
missing; a day apart for two copies of one long text, since one may be written in the
site's time and one in UTC), equal ratings on the 0..1 scale or as written (or one
missing: one copy may say worst 0 where the other leaves the default 1), and the same author
name (by its letters and digits: "Jane D." is "Jane D") or one missing: a real page (sizzlingeats)
holds one text twice, by "Lisa" and by "Lisa says", and those are two.
Rating-only reviews agree on author, day and rating; a rating-only copy
of a review with a body (review widgets list ratings again) agrees when
author, day and rating are all given and equal. The first one read is
kept (JSON-LD before microdata before RDFa); what it lacks is filled from the
other, and of two dates of the same day the more precise one is kept.

Ids. A review's own ``url``, else its ``@id`` (microdata ``itemid``, RDFa
``resource``), made absolute, is its id, unless that address is not the
review's own: shared by several reviews of the page, or the reviewed item's
own address (shops give every review the product's URL), or the page's own
address (a lone review whose ``url`` is the page would change id the day a
second review appears). Otherwise the id is
derived from what editing a review or moving its counts leaves alone:
``key:`` and the first 24 hex digits of the SHA-256 of the item (its URL,
else the page's, and its name), the author (name and URL) and the date (to the
second: fractions are how a generator prints, not when it was written), so
that the next capture of the page names the same review again. Reviews that
share all of those (the same reader twice on one undated page) get ``-2``,
``-3``... in page order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

from scraper.config import SchemaOrgLimits
from scraper.records import Author, Rating, Record, ReviewedItem
from scraper.sites.schemaorg.fields import Candidate, PageInfo

__all__ = ["merge_duplicates", "to_records"]

# How much of a folded body keys the search for its duplicates; a body cut
# short ("...") still shares its first characters with the whole one.
_KEY_CHARS = SchemaOrgLimits().duplicate_key_chars
_ELLIPSES = ("read more",)
_NOT_WORD = re.compile(r"[\W_]+")
# The same, for ASCII text: every character that is not a letter or a digit, deleted.
_ASCII_NOT_WORD = {code: None for code in range(128) if not chr(code).isalnum()}


def _body_key(body: str | None) -> str:
    """Return *body* as letters and digits only, case folded: what two copies share.

    Two markups of one review differ in what a CMS does to text on the way
    (WordPress turns ' into ’ in the page but not in its JSON-LD, entities,
    spaces, a "..." where one copy is cut short); the words stay.
    """
    folded = body.casefold() if body else ""
    for ending in _ELLIPSES:
        folded = folded.rstrip().removesuffix(ending)
    if folded.isascii():  # most bodies: one C call, not a regex
        return folded.translate(_ASCII_NOT_WORD)
    return _NOT_WORD.sub("", folded)


def _scaled(rating: Rating | None) -> float | None:
    if rating is None:
        return None
    return round((rating.value - rating.worst) / (rating.best - rating.worst), 6)


def _compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


class _Keys(NamedTuple):
    """What comparing a review with others needs, computed once per review."""

    body: str
    author: str
    day: str | None
    scaled: float | None
    value: float | None  # the rating as written, before scaling


def _keys(record: Record, known: _Keys | None = None) -> _Keys:
    """Return *record*'s keys; *known* gives the body key already computed."""
    day = record.date[:10] if record.date else None
    value = record.rating.value if record.rating else None
    body = _body_key(record.body) if known is None else known.body
    return _Keys(body, _body_key(record.author.name), day, _scaled(record.rating), value)


def _near_days(a: str | None, b: str | None) -> bool:
    """Return True for the same day, a day missing, or (for two copies of one text)
    days one apart: one copy gives the site's local time, the other UTC."""
    if a is None or b is None or a == b:
        return True
    try:
        return abs((date.fromisoformat(a) - date.fromisoformat(b)).days) <= 1
    except ValueError:  # "2023", "2023-06": only the same text agrees
        return False


def _ratings_agree(a: _Keys, b: _Keys) -> bool:
    """Return True when a rating is missing, or both say the same (on 0..1, or as written:
    one copy may state worst 0 where the other leaves schema.org's default 1)."""
    return a.scaled is None or b.scaled is None or a.scaled == b.scaled or a.value == b.value


def _same(a: _Keys, b: _Keys) -> bool:
    if a.body or b.body:
        if not (a.body and b.body):
            return False
        shorter, longer = sorted((a.body, b.body), key=len)
        if not longer.startswith(shorter) or (shorter != longer and len(shorter) < _KEY_CHARS):
            return False
        # A day apart only for a text long enough to be one person's own: two
        # "Great!" by "Amazon Customer" on two days are two reviews.
        days = _near_days(a.day, b.day) if len(shorter) >= _KEY_CHARS else a.day == b.day
        days = days or a.day is None or b.day is None
    else:
        if a.author != b.author:
            return False
        days = _compatible(a.day, b.day)
    return days and _ratings_agree(a, b) and (not a.author or not b.author or a.author == b.author)


def _fill(kept: Candidate, other: Candidate, keys: tuple[_Keys, _Keys]) -> Candidate:
    """Return *kept* with what it lacks taken from *other* (and the longer of two bodies)."""
    mine, theirs = kept.record, other.record
    body = mine.body
    if theirs.body and (not body or len(keys[1].body) > len(keys[0].body)):
        body = theirs.body
    item = ReviewedItem(
        mine.item.name or theirs.item.name,
        mine.item.type or theirs.item.type,
        mine.item.url or theirs.item.url,
    )
    author = Author(
        mine.author.name or theirs.author.name,
        mine.author.url or theirs.author.url,
        mine.author.image_url or theirs.author.image_url,
    )
    record = mine._replace(
        item=item,
        author=author,
        date=max(mine.date or "", theirs.date or "", key=len) or None,  # the more precise
        title=mine.title or theirs.title,
        rating=mine.rating or theirs.rating,
        body=body,
        reactions=mine.reactions or theirs.reactions,
    )
    return Candidate(
        kept.own_url or other.own_url, kept.own_id or other.own_id, record, kept.problem
    )


def _rating_only_copy(a: _Keys, b: _Keys) -> bool:
    """Return True when one of *a*, *b* is a rating-only copy of the other.

    Review widgets list the page's reviews again with their ratings only; such
    a copy is the same review when author, day and rating are all given and
    all agree.
    """
    if bool(a.body) == bool(b.body) or not (a.day and b.day and a.scaled is not None):
        return False
    return bool(a.author) and a.author == b.author and a.day == b.day and a.scaled == b.scaled


def merge_duplicates(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Return *candidates* with each review marked up more than once kept once, in order."""
    kept: list[Candidate] = []
    kept_keys: list[_Keys] = []
    by_key: dict[str, list[int]] = {}
    by_person: dict[tuple[str, str | None], list[int]] = {}
    for candidate in candidates:
        keys = _keys(candidate.record)
        bucket = keys.body[:_KEY_CHARS] if keys.body else "\x00" + keys.author
        places = by_key.setdefault(bucket, [])
        match = next((place for place in places if _same(kept_keys[place], keys)), None)
        if match is None:
            person = by_person.get((keys.author, keys.day), ())
            match = next((p for p in person if _rating_only_copy(kept_keys[p], keys)), None)
        if match is not None:
            pair = (kept_keys[match], keys)
            kept[match] = _fill(kept[match], candidate, pair)
            longer = max(pair, key=lambda keys: len(keys.body))
            kept_keys[match] = _keys(kept[match].record, longer)
            continue
        places.append(len(kept))
        by_person.setdefault((keys.author, keys.day), []).append(len(kept))
        kept.append(candidate)
        kept_keys.append(keys)
    return kept


# Fractions of a second: a site that moves from ".000Z" to "Z" still names the same review.
_FRACTION = re.compile(r"\.\d+")


def _derived(record: Record, page: PageInfo) -> str:
    parts = (
        record.item.url or page.url or "",
        record.item.name or "",
        record.author.name or "",
        record.author.url or "",
        _FRACTION.sub("", record.date) if record.date else "",
    )
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()
    return "key:" + digest[:24]


def to_records(candidates: list[Candidate], page: PageInfo) -> tuple[Record, ...]:
    """Return the records of *candidates* with their ids settled (see the module docstring)."""
    owners: dict[str, int] = {}
    for candidate in candidates:
        for given in {address for address in (candidate.own_url, candidate.own_id) if address}:
            owners[given] = owners.get(given, 0) + 1
    records: list[Record] = []
    used: dict[str, int] = {}
    for candidate in candidates:
        record = candidate.record
        own = next(
            (
                address
                for address in (candidate.own_url, candidate.own_id)
                if address
                and owners[address] == 1
                and address not in (record.item.url, page.url, page.base)
            ),
            None,
        )
        identifier = own or _derived(record, page)
        count = used.get(identifier, 0) + 1
        used[identifier] = count
        if count > 1:
            identifier = f"{identifier}-{count}"
        url = candidate.own_url if own is not None and own == candidate.own_url else None
        records.append(record._replace(id=identifier, url=url or page.url or ""))
    return tuple(records)
