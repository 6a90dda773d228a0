"""Any page with schema.org Review markup: JSON-LD, microdata and RDFa Lite.

The reader behind every page no site of its own claims (see
``scraper.sites.SITES``: sites of their own first, this reader last). It reads every
``Review`` node (and its subtypes) of a page, wherever it sits: JSON-LD
blocks (``jsonld.py``, forgiving common breakage), the nodes linked through
``@graph`` and ``@id`` references (``graph.py``), microdata and RDFa items
(``markup.py``, built into the same JSON-LD shape), and turns each into a
contract v2 record (``fields.py``: item, author, date, rating, body...;
``identity.py``: duplicates and ids; ``page.py``: canonical URL, site, next
page). The rules are shared/record-contract.md's v2 section.

Choices where the contract leaves room, or where following it to the letter
would give a nonsense value (each is tested, and each module says more):

- Ratings: the contract's defaults (best 5, worst 1) hold wherever they give
  a value inside its scale. Only where they cannot (``9`` with no scale,
  ``0.5`` with no worst) is the scale read as 10 / 100, or as starting at 0:
  otherwise the rating would be refused and lost (``fields.py``). A
  ``reviewRating`` that is an ``AggregateRating`` is no one's rating.
- Dates as given, never shifted: the page's own offset is kept, a year alone
  stays a year. Only all-number dates are ambiguous; ``03/04/2023`` is read
  month first on pages in US English or with no language (as US pages and
  the plugins that default to ``en`` write them) and day first on any other
  language; a first number above 12 is a day whatever the language, and a
  page whose own dates prove one order (``25/12/2023``) has its ambiguous
  ones read that way (``values.py``, ``page.day_first``,
  ``fields.with_page_order``).
- One review marked up twice is one record when the words of its body agree
  (letters and digits: quotes, dashes, entities and spaces are what a CMS
  changes between copies) and nothing else contradicts; two equal short
  bodies ("Great!") by different authors are two (``identity.py``).
- Ids: the review's own URL or ``@id`` unless several reviews share it or it
  is the item's or the page's own address; else ``key:`` + SHA-256 of item
  (URL, name), author (name, URL) and date, the contract's "what does not
  change when a review is edited" (``identity.py``).
- ``rel="next"`` is followed only to the same host and the same or a deeper
  path: themes mark the next *post* with it too (``page.py``).
- A review that names no item and sits in none takes the page's one reviewed
  thing (a single Product, Recipe or rated node); with several, none.
- Not read: JSON-LD inside ``<noscript>`` or ``<template>`` (copies for
  script-less readers, placeholders) or in HTML comments (not in the tree at
  all), and blocks whose ``@context`` is only data-vocabulary.org (Google's
  retired vocabulary, whose bare ``Review`` is not schema.org's).

What a page yields: ENTRY_REVIEWS with its records; BLOCKED for a challenge
page; NOT_REVIEW_PAGE otherwise, saying whether the page had no Review markup
at all or only an AggregateRating (a rating summary is not a review). What
was skipped on the way (a broken JSON-LD block, a refused rating) is named in
``PageResult.problem``. Work is bounded by ``config.SchemaOrgLimits``.

Why no library. extruct (Scrapy's makers) reads all three syntaxes, but it
parses the page a second time with lxml and builds RDFa through rdflib.
Measured with ``bench/bench_schemaorg.py`` (CPU time, best of 5, on the
shared corpus's 11 real pages of 230-680 KB, a 2-core machine under load):
the bare lexbor parse takes 0.84-1.0 ms/page; this reader, its own parse
included, 1.6-1.8 ms/page (1.8-2.0x the bare parse; the goal is <= 2.5x);
extruct alone, before building a single record, 56-65 ms/page, about 35x
slower than the whole reader (on our fixtures grown to 300 KB: 1.5-1.6x the
bare parse, extruct 70x slower; a 500 KB page with 5 reviews: 1.4x). What
is not at the goal is a page of hundreds of reviews, where the Python cost
of each review (about 30 µs read, merged and keyed), not the parse, is the
bill: 200 reviews in JSON-LD take 7.5-9x the bare parse, 200 marked up twice
(JSON-LD and microdata) 16-21x, against extruct's 100+ ms. Correctness
does not tell them apart: extruct only lifts the markup out (every field
rule here would still be needed on top), this reader reads all 81 corpus
reviews in check form, and ``tests/test_schemaorg_extruct.py`` finds the
same review bodies in extruct's reading of every corpus and fixture page
but those where we differ by design (named there). So
the lexbor tree the project already has is read directly: JSON-LD with
``json.loads`` on each script's text, microdata and RDFa by CSS queries on
their attributes (built only when the page has review items). extruct is in
the test extra only, for that cross-check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.errors import ParseError
from scraper.records import PageKind, PageResult, Record
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites._generic import SitePolicy
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

if TYPE_CHECKING:
    from scraper.config import SchemaOrgLimits

__all__ = ["SCHEMAORG", "PageReading", "SchemaOrgSite", "read_page", "read_reviews"]

# Any spelling of the type: "application/ld+json; charset=utf-8", "Application/LD+JSON".
_JSON_LD = 'script[type*="ld+json" i]'


def _default_limits() -> SchemaOrgLimits:
    # Imported on first use: `reviews parse` starts without the settings module
    # (and the dataclasses machinery it loads); see tests/test_parse_cli.py.
    from scraper.config import SchemaOrgLimits

    return SchemaOrgLimits()


class PageReading(NamedTuple):
    """Everything the reader got from one page."""

    url: str | None  # the canonical URL
    records: tuple[Record, ...]
    aggregate: bool  # an AggregateRating was seen
    problems: tuple[str, ...]


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
    limits = limits or _default_limits()
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


def read_reviews(
    page: bytes | str | LexborHTMLParser,
    url: str | None = None,
    *,
    limits: SchemaOrgLimits | None = None,
) -> tuple[Record, ...]:
    """Return the schema.org review records of *page* (HTML bytes or text, or a parsed tree).

    Raises ParseError only when the HTML parser refuses the page.
    """
    if isinstance(page, LexborHTMLParser):
        tree = page
    else:
        try:
            tree = LexborHTMLParser(parser_input(page))
        except Exception as error:  # the C parser's failures have no common class
            raise ParseError(f"the HTML parser refused the page: {error}", url=url) from error
    return read_page(tree, url, limits).records


class SchemaOrgSite(SitePolicy):
    """The schema.org reader as a site (see ``scraper.sites.Site``).

    Its archive-side rules are the generic site's (``SitePolicy``): it owns no
    namespace of its own, since each record's ``site`` is its page's host.
    """

    def __init__(self, limits: SchemaOrgLimits | None = None) -> None:
        self.limits = limits

    def matches(self, tree: LexborHTMLParser, url: str | None) -> bool:
        """Return True: every page no other site claims is this reader's to judge."""
        return True

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return the page's kind, records and next page (see the module docstring)."""
        reading = read_page(tree, url, self.limits)
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
            return PageResult(
                kind=PageKind.BLOCKED, url=reading.url, problem=f"blocked page: {reason}"
            )
        if reading.aggregate:
            why = "no reviews: the page's schema.org markup holds only an AggregateRating"
        else:
            why = "not a review page: no schema.org Review markup on it"
        return PageResult(
            kind=PageKind.NOT_REVIEW_PAGE,
            url=reading.url,
            problem=why if problem is None else f"{why} ({problem})",
        )


SCHEMAORG = SchemaOrgSite()
