"""One review node into the fields of a record: item, author, date, title, rating, body, reactions.

Values arrive in every shape schema.org allows and a few it does not: text or
object or list (the first usable entry counts), ``{"@value": ...}`` wrappers,
``{"@id": ...}`` references to nodes elsewhere on the page, numbers as
strings. Every reader returns None for what it cannot read; none raises.

Ratings: ``reviewRating`` (an object, or a bare number) with ``bestRating`` /
``worstRating``, schema.org's defaults 5 and 1. When the page gives no best
and the value is above 5, the scale is taken to be 10 (or 100 above 10): a
``ratingValue`` of 8 with no scale is eight out of ten, not an impossible
eight out of five. With no worst, a value below 1 (or a percentage) means
the scale starts at 0. A rating that is not a finite number, whose scale is
upside down, whose value lies outside its own scale, or whose numbers are
absurdly large (``SchemaOrgLimits.max_rating``) is refused: the record keeps
its other fields with ``rating`` null, and the page's problem says why; a
review left with neither body nor rating is no review. So is a "review" whose
``reviewRating`` is an ``AggregateRating`` (or carries ``reviewCount`` /
``ratingCount``) and which has no body: shops fill a Review with the item's
summary to get stars shown, and a summary is not one person's rating.

Why these scale rules, beside the contract's "defaults are best 5, worst 1":
the defaults are kept wherever they give a rating inside its scale; they are
set aside only where following them would give a value outside the scale (a
refused rating, a lost field), which is what pages that write ``9`` for "9/10"
or ``0.5`` for "half of one" mean. A value of 5 or less with no scale is
always read on 1..5, as the contract says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from scraper.config import SchemaOrgLimits
from scraper.records import Author, Rating, Record, ReviewedItem
from scraper.sites.schemaorg.graph import (
    MAIN_TYPES,
    Found,
    is_page_type,
    local_name,
    resolve,
    type_names,
)
from scraper.sites.schemaorg.markup import Literal
from scraper.sites.schemaorg.text import inline_text, render_body
from scraper.sites.schemaorg.values import numeric_order, parse_date, parse_number

if TYPE_CHECKING:  # `reviews parse` starts without loading the settings module
    from scraper.config import SchemaOrgLimits

__all__ = ["Candidate", "PageInfo", "read_candidate", "with_page_item", "with_page_order"]

Node = dict[str, Any]

_BODY_KEYS = ("reviewBody", "description", "text")


# How many entries of a list value are looked at for the first usable one.
_LIST_LOOK = SchemaOrgLimits().list_look


class PageInfo(NamedTuple):
    """What every record of a page shares."""

    site: str
    url: str | None  # the canonical URL
    base: str | None  # what relative addresses are resolved against
    day_first: bool = False  # 03/04/2023 is 3 April (see values.parse_date)
    #: The item each holder node gives, once per page (hundreds of reviews share one).
    holders: dict[int, ReviewedItem] | None = None


class Candidate(NamedTuple):
    """A review read from one node, before identity and duplicates are settled.

    ``record`` has every field but ``id`` and ``url`` (empty until
    ``identity.to_records`` settles them from ``own_url`` / ``own_id``).
    """

    own_url: str | None
    own_id: str | None
    record: Record
    problem: str | None
    raw_date: str | None = None  # the date as written, for ``with_page_order``


def _entries(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value[:_LIST_LOOK]
    return [] if value is None else [value]


def _text(value: Any) -> str | None:
    """Return the first text in *value* (str, ``@value`` object, number, list)."""
    for entry in _entries(value):
        if isinstance(entry, dict):
            entry = entry.get("@value")
        if isinstance(entry, list):
            entry = entry[0] if entry else None
        if isinstance(entry, str):
            if entry.strip():
                return entry
        elif isinstance(entry, int | float) and not isinstance(entry, bool):
            return str(entry)
    return None


def _label(value: Any, limits: SchemaOrgLimits) -> str | None:
    text = _text(value)
    if text is None:
        return None
    label = inline_text(text[: limits.max_text_chars])
    return label or None


def _address(value: Any, page: PageInfo) -> str | None:
    """Return the first http(s) address in *value* (text, link, ``{"@id"}``, ``{"url"}``)."""
    for entry in _entries(value):
        if isinstance(entry, Literal) and entry.href:
            entry = entry.href
        elif isinstance(entry, dict):
            entry = (
                _text(entry.get("url")) or _text(entry.get("contentUrl")) or _text(entry.get("@id"))
            )
        if isinstance(entry, str):
            address = _absolute(entry.strip(), page)
            if address:
                return address
    return None


def _absolute(address: str, page: PageInfo) -> str | None:
    if not address or len(address) > 4096 or any(space in address for space in " \n\t"):
        return None
    try:
        joined = urljoin(page.base, address) if page.base else address
        if urlsplit(joined).scheme in ("http", "https"):
            return joined
    except ValueError:
        return None
    return None


def _node(value: Any, ids: dict[str, Node]) -> Any:
    """Return the first usable entry of *value*, references resolved."""
    for entry in _entries(value):
        entry = resolve(entry, ids)
        if isinstance(entry, dict | str) and entry:
            return entry
    return None


def read_item(
    found: Found, ids: dict[str, Node], page: PageInfo, limits: SchemaOrgLimits
) -> ReviewedItem:
    """Return the reviewed item: ``itemReviewed``, else the node holding the review."""
    holder = found.holder
    if holder is not None and any(is_page_type(name) for name in type_names(holder)):
        holder = None  # a web page holds reviews of what it is about, not of itself
    reviewed = _node(found.node.get("itemReviewed"), ids)
    if isinstance(reviewed, str):
        href = reviewed.href if isinstance(reviewed, Literal) else None
        name = _label(reviewed, limits)
        if href is None and name and name.startswith(("http://", "https://")) and " " not in name:
            href, name = name, None  # "itemReviewed": "https://...": an address, not a name
        return ReviewedItem(name, None, href and _absolute(href, page))
    if isinstance(reviewed, dict):
        name = _label(reviewed.get("name"), limits)
        types = type_names(reviewed)
        if name is None and holder is not None:
            return _from_holder(holder, page, limits)
        url = _address(reviewed.get("url"), page) or _address(
            reviewed.get("mainEntityOfPage"), page
        )
        return ReviewedItem(name, types[0] if types else None, url)
    if holder is not None:
        return _from_holder(holder, page, limits)
    return ReviewedItem(None, None, None)


def _from_holder(holder: Node, page: PageInfo, limits: SchemaOrgLimits) -> ReviewedItem:
    known = page.holders.get(id(holder)) if page.holders is not None else None
    if known is None:
        known = _holder_item(holder, page, limits)
        if page.holders is not None:
            page.holders[id(holder)] = known
    return known


def _holder_item(holder: Node, page: PageInfo, limits: SchemaOrgLimits) -> ReviewedItem:
    types = type_names(holder)
    url = (
        _address(holder.get("url"), page)
        or _address(holder.get("mainEntityOfPage"), page)
        or page.url  # the reviews sit on the item's own page
    )
    name = _label(holder.get("name"), limits) or _label(holder.get("headline"), limits)
    return ReviewedItem(name, types[0] if types else None, url)


def read_author(
    value: Any, ids: dict[str, Node], page: PageInfo, limits: SchemaOrgLimits
) -> Author:
    """Return the review's author: text, object (name, url, image) or the first of a list."""
    author = _node(value, ids)
    if isinstance(author, str):
        href = author.href if isinstance(author, Literal) else None
        name = _label(author, limits)
        if href is None and name and name.startswith(("http://", "https://")) and " " not in name:
            return Author(None, _absolute(name, page))
        return Author(name, href and _absolute(href, page))
    if not isinstance(author, dict):
        return Author(None)
    name = _label(author.get("name"), limits)
    if name is None:
        given = _label(author.get("givenName"), limits)
        family = _label(author.get("familyName"), limits)
        name = " ".join(part for part in (given, family) if part) or _label(
            author.get("alternateName"), limits
        )
    image = _address(resolve(author.get("image"), ids), page)
    return Author(name, _address(author.get("url"), page), image)


def read_rating(
    value: Any, ids: dict[str, Node], limits: SchemaOrgLimits
) -> tuple[Rating | None, str | None]:
    """Return the rating and, when one was given but refused, why."""
    rating = _node(value, ids)
    if rating is None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            rating = value
        else:
            return None, None
    if isinstance(rating, dict):
        if _summary(rating):
            return None, "an AggregateRating as a review's rating refused: it rates the item"
        raw = rating.get("ratingValue")
        best_given = parse_number(_text(rating.get("bestRating")))
        worst_given = parse_number(_text(rating.get("worstRating")))
    else:
        raw, best_given, worst_given = rating, None, None
    number = parse_number(_text(raw) if not isinstance(raw, int | float) else raw)
    if number is None:
        return None, (f"rating {_text(raw)!r} is not a number" if _text(raw) else None)
    score = number.value
    best = best_given.value if best_given else number.best
    if best is None:
        best = 5.0 if score <= 5 else 10.0 if score <= 10 else 100.0
    if worst_given is not None:
        worst = worst_given.value
    elif number.percent or score < 1 or best <= 1:
        worst = 0.0
    else:
        worst = 1.0
    if max(abs(score), abs(best), abs(worst)) > limits.max_rating:
        return None, f"rating {score:g} refused: too large"
    if not worst < best or not worst <= score <= best:
        return None, f"rating {score:g} refused: outside its scale {worst:g}..{best:g}"
    return Rating(score, best, worst), None


def _summary(rating: Node) -> bool:
    """Return True for a rating that sums up many (an AggregateRating, or counts beside it)."""
    if "AggregateRating" in type_names(rating):
        return True
    return "reviewCount" in rating or "ratingCount" in rating


def read_body(node: Node, limits: SchemaOrgLimits) -> str | None:
    """Return the body: ``reviewBody``, else ``description``, else ``text``, rendered."""
    for key in _BODY_KEYS:
        for entry in _entries(node.get(key)):
            if isinstance(entry, Literal) and entry.rendered:
                if entry:
                    return str(entry)
                continue
            text = _text(entry)
            if text:
                body = render_body(text[: limits.max_text_chars])
                if body:
                    return body
    return None


_REACTION_KEYS = frozenset({"interactionStatistic", "upvoteCount", "downvoteCount"})


def read_reactions(node: Node, ids: dict[str, Node]) -> dict[str, int] | None:
    """Return counts by kind (``like``, ``dislike``, ``upvote``...), or None when none is given."""
    if not _REACTION_KEYS.intersection(node):  # most reviews: spare the lookups
        return None
    counts: dict[str, int] = {}
    for entry in _entries(node.get("interactionStatistic")):
        entry = resolve(entry, ids)
        if not isinstance(entry, dict):
            continue
        kinds = _entries(entry.get("interactionType"))
        kind = kinds[0] if kinds else None
        if isinstance(kind, dict):
            names = type_names(kind)
            kind = names[0] if names else _text(kind.get("@id"))
        elif isinstance(kind, Literal) and kind.href:  # microdata <link href=...>
            kind = kind.href
        kind = _text(kind)
        count = _count(entry.get("userInteractionCount"))
        name = local_name(kind.strip()) if kind else None
        if name and count is not None:
            key = name.removesuffix("Action").lower() or name.lower()
            counts[key] = counts.get(key, 0) + count
    for field, key in (("upvoteCount", "upvote"), ("downvoteCount", "downvote")):
        count = _count(node.get(field))
        if count is not None:
            counts[key] = count
    return counts or None


def _count(value: Any) -> int | None:
    number = parse_number(_text(value) if not isinstance(value, int | float) else value)
    if number is None or number.value < 0 or number.value > 1e12 or not number.value.is_integer():
        return None
    return int(number.value)


def read_candidate(
    found: Found, ids: dict[str, Node], page: PageInfo, source: str, limits: SchemaOrgLimits
) -> Candidate | None:
    """Return the review *found* holds, or None when it has neither a body nor a rating."""
    node = found.node
    rating, problem = read_rating(node.get("reviewRating"), ids, limits)
    body = read_body(node, limits)
    if body is None and rating is None:
        return None
    raw_date = _text(node.get("datePublished")) or _text(node.get("dateCreated"))
    own_id = _text(node.get("@id"))
    if own_id is not None:  # a blank node's id ("_:b0") names nothing beyond this page
        own_id = None if own_id.startswith("_:") else _absolute(own_id, page) or own_id
    record = Record(
        site=page.site,
        id="",
        url="",
        item=read_item(found, ids, page, limits),
        author=read_author(node.get("author") or node.get("creator"), ids, page, limits),
        date=parse_date(raw_date, page.day_first),
        title=_label(node.get("name"), limits) or _label(node.get("headline"), limits),
        rating=rating,
        body=body,
        tags=(),
        reactions=read_reactions(node, ids),
        source=source,
    )
    return Candidate(_address(node.get("url"), page), own_id, record, problem, raw_date)


def with_page_order(candidates: list[Candidate], day_first: bool) -> list[Candidate]:
    """Return *candidates* with all-number dates read in the order the page itself proves.

    The page's language is only a default: WordPress says ``en-US`` on British
    sites that write ``25/12/2023``. When some date of the page can only be
    day first (or only month first) and none says otherwise, every ambiguous
    date of the page (``03/04/2023``) is read that way too.
    """
    votes = set()
    for candidate in candidates:
        raw = candidate.raw_date
        if raw and not raw[:4].isdigit():  # ISO and 2023/03/04 prove nothing
            votes.add(numeric_order(raw))
    votes.discard(None)
    if len(votes) != 1 or votes == {day_first}:
        return candidates
    order = votes.pop() is True
    return [
        candidate._replace(record=candidate.record._replace(date=parse_date(raw, order)))
        if (raw := candidate.raw_date) and not raw[:4].isdigit()
        else candidate
        for candidate in candidates
    ]


_NO_ITEM = ReviewedItem(None, None, None)


def with_page_item(
    candidates: list[Candidate], main: list[Node], page: PageInfo, limits: SchemaOrgLimits
) -> list[Candidate]:
    """Return *candidates*, each review that names no item given the page's one reviewed thing.

    A review with no ``itemReviewed`` and nothing holding it (Magento's review
    list sits outside its Product item; a widget's bare Review block), or one
    whose item has no name (``{"@type": "Product", "@id": "#p"}`` defined nowhere), is about
    the page's reviewed thing when the page has exactly one: one Product or
    Recipe (whatever else carries a rating: a site-wide Organization's), else
    one node with an ``aggregateRating``, by name. With none, or several, its
    item stays empty: no guess between two products.
    """
    if all(candidate.record.item.name is not None for candidate in candidates):
        return candidates
    # A Product or Recipe first: a site-wide Organization rating beside the one
    # product does not make the product's reviews anyone's.
    things = [node for node in main if MAIN_TYPES.intersection(type_names(node))]
    item = _only_item(things, page, limits) or _only_item(main, page, limits)
    if item is None:
        return candidates
    return [
        candidate._replace(
            record=candidate.record._replace(item=_named(candidate.record.item, item))
        )
        if candidate.record.item.name is None
        else candidate
        for candidate in candidates
    ]


def _only_item(nodes: list[Node], page: PageInfo, limits: SchemaOrgLimits) -> ReviewedItem | None:
    """Return the one named item among *nodes* (by name), or None for none or several."""
    named: dict[str, ReviewedItem] = {}
    for node in nodes:
        item = _from_holder(node, page, limits)
        if item.name is not None:
            named.setdefault(item.name, item)
    return next(iter(named.values())) if len(named) == 1 else None


def _named(own: ReviewedItem, page_item: ReviewedItem) -> ReviewedItem:
    """Return the page's item for a review that names none; one that gives only a type or
    an address (an ``itemReviewed`` reference the page never defines) keeps what it gives
    when it does not contradict the page's item."""
    if own == _NO_ITEM:
        return page_item
    if own.type is not None and page_item.type is not None and own.type != page_item.type:
        return own
    return ReviewedItem(page_item.name, own.type or page_item.type, own.url or page_item.url)
