"""Reading a page's schema.org reviews: the work behind ``scraper.sites.schemaorg``.

Kept apart from the package's ``__init__`` so that registering the reader (every
``reviews parse`` does) costs no import of its field, graph and markup modules:
they load on the first page that reaches the reader (a MyAnimeList page never does).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.config import SchemaOrgLimits
from scraper.records import PageKind, PageResult
from scraper.sites._blocked import block_reason
from scraper.sites.schemaorg import PageReading
from scraper.sites.schemaorg.fields import (
    Candidate,
    PageInfo,
    read_candidate,
    with_page_item,
    with_page_order,
)
from scraper.sites.schemaorg.graph import walk
from scraper.sites.schemaorg.identity import merge_duplicates, to_records
from scraper.sites.schemaorg.jsonld import read_block
from scraper.sites.schemaorg.markup import MICRODATA, RDFA, items_with_reviews
from scraper.sites.schemaorg.page import canonical_url, day_first, next_page, site_of

__all__ = ["page_result", "read_page"]

# Any spelling of the type: "application/ld+json; charset=utf-8", "Application/LD+JSON".
_JSON_LD = 'script[type*="ld+json" i]'


def _json_ld_roots(
    tree: LexborHTMLParser, limits: SchemaOrgLimits
) -> tuple[list[Any], list[str], bool]:
    """Return the values of every JSON-LD block, what was wrong, and whether IRI keys occur."""
    roots: list[Any] = []
    problems: list[str] = []
    iri_keys = False
    for number, script in enumerate(tree.css(_JSON_LD), start=1):
        if _hidden(script):
            continue
        block = read_block(script, number, limits.max_block_chars)
        roots.extend(value for value in block.values if not _other_vocabulary(value))
        iri_keys = iri_keys or block.iri_keys
        if block.problem:
            problems.append(block.problem)
    return roots, problems, iri_keys


#: Elements whose content a browser running scripts never puts in the page
#: (``<template>`` content is not in the tree at all; ``<noscript>`` is text).
_HIDING_TAGS = frozenset({"noscript", "template"})
_OTHER_VOCABULARIES = ("data-vocabulary.org",)


def _hidden(script: LexborNode) -> bool:
    """Return True for a script inside ``<noscript>`` or ``<template>``: a copy or a
    placeholder (``{{ author }}``), not the page's markup."""
    parent = script.parent
    while parent is not None and parent.tag not in ("html", "head", "body", None):
        if parent.tag in _HIDING_TAGS:
            return True
        parent = parent.parent
    return False


def _other_vocabulary(value: Any) -> bool:
    """Return True for a block whose ``@context`` is another vocabulary's alone
    (Google's retired data-vocabulary.org): its bare ``Review`` is not schema.org's."""
    if not isinstance(value, dict):
        return False
    context = value.get("@context")
    names = [context] if isinstance(context, str) else context if isinstance(context, list) else []
    texts = [name.lower() for name in names if isinstance(name, str)]
    return bool(texts) and all(
        any(other in text for other in _OTHER_VOCABULARIES) for text in texts
    )


class _Gathered(NamedTuple):
    candidates: list[Candidate]
    aggregate: bool
    problems: list[str]
    main: list[dict[str, Any]]  # nodes that may be the page's reviewed thing


def _candidates(
    roots: list[Any], page: PageInfo, source: str, limits: SchemaOrgLimits, iri_keys: bool
) -> _Gathered:
    graph = walk(roots, limits, iri_keys)
    problems = [f"{source}: stopped after {limits.max_nodes} nodes"] if graph.truncated else []
    candidates = []
    for found in graph.found:
        candidate = read_candidate(found, graph.ids, page, source, limits)
        if candidate is not None:
            candidates.append(candidate)
            if candidate.problem:
                problems.append(f"{source} review {len(candidates)}: {candidate.problem}")
    return _Gathered(candidates, graph.aggregate, problems, graph.items)


def read_page(
    tree: LexborHTMLParser, url: str | None, limits: SchemaOrgLimits | None = None
) -> PageReading:
    """Return the page's records and what was noticed on the way (never raises)."""
    limits = limits or SchemaOrgLimits()
    page_url = canonical_url(tree, url)
    page = PageInfo(site_of(page_url), page_url, url or page_url, day_first(tree), {})
    roots, problems, iri_keys = _json_ld_roots(tree, limits)
    gathered = _candidates(roots, page, "json-ld", limits, iri_keys)
    candidates, aggregate, main = gathered.candidates, gathered.aggregate, gathered.main
    problems.extend(gathered.problems)
    for syntax in (MICRODATA, RDFA):
        items = items_with_reviews(tree, syntax, page.base, limits)
        aggregate = aggregate or items.aggregate
        if items.with_reviews:
            gathered = _candidates(items.with_reviews, page, syntax.name, limits, False)
            candidates.extend(gathered.candidates)
            problems.extend(gathered.problems)
            main.extend(gathered.main + items.main)
    candidates = with_page_order(candidates, page.day_first)
    candidates = with_page_item(candidates, main, page, limits)
    merged = merge_duplicates(candidates)
    if len(merged) >= limits.max_reviews:
        problems.append(f"stopped at {limits.max_reviews} reviews (the page may hold more)")
        merged = merged[: limits.max_reviews]
    return PageReading(page_url, to_records(merged, page), aggregate, tuple(problems))


def page_result(
    tree: LexborHTMLParser, url: str | None, limits: SchemaOrgLimits | None
) -> PageResult:
    """Return the page's kind, records and next page (see the package docstring)."""
    reading = read_page(tree, url, limits)
    problem = "; ".join(reading.problems) if reading.problems else None
    if reading.records:
        items = {record.item for record in reading.records}
        sources = dict.fromkeys(record.source for record in reading.records)
        return PageResult(
            kind=PageKind.ENTRY_REVIEWS,
            url=reading.url,
            reviews=reading.records,
            item=items.pop() if len(items) == 1 else None,  # a page of one item's reviews
            next_url=next_page(tree, url, reading.url),
            layout="+".join(sources),  # "json-ld", or "json-ld+microdata"...
            problem=problem,
        )
    reason = block_reason(tree)
    if reason is not None:
        return PageResult(kind=PageKind.BLOCKED, url=reading.url, problem=f"blocked page: {reason}")
    if reading.aggregate:
        why = "no reviews: the page's schema.org markup holds only an AggregateRating"
    else:
        why = "not a review page: no schema.org Review markup on it"
    return PageResult(
        kind=PageKind.NOT_REVIEW_PAGE,
        url=reading.url,
        problem=why if problem is None else f"{why} ({problem})",
    )
