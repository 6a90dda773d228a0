"""Any page with schema.org Review markup: JSON-LD, microdata and RDFa Lite.

The reader behind every page no site of its own claims (see
``scraper.sites.SITES``: MyAnimeList first, this reader last). It reads every
``Review`` node (and its subtypes) of a page, wherever it sits: JSON-LD
blocks (``jsonld.py``, forgiving common breakage), the nodes linked through
``@graph`` and ``@id`` references (``graph.py``), microdata and RDFa items
(``markup.py``, built into the same JSON-LD shape), and turns each into a
contract v2 record (``fields.py``: item, author, date, rating, body...;
``identity.py``: duplicates and ids; ``page.py``: canonical URL, site, next
page). The rules are shared/record-contract.md's v2 section.

What a page yields: ENTRY_REVIEWS with its records; BLOCKED for a challenge
page; NOT_REVIEW_PAGE otherwise, saying whether the page had no Review markup
at all or only an AggregateRating (a rating summary is not a review). What
was skipped on the way (a broken JSON-LD block, a refused rating) is named in
``PageResult.problem``. Work is bounded by ``config.SchemaOrgLimits``.

Why no library. extruct (Scrapy's makers) reads all three syntaxes, but it
parses the page again with lxml and builds RDFa through rdflib: measured by
``bench/bench_schemaorg.py`` over the shared corpus pages (11 real recipe
pages, 230–680 KB), extruct alone costs about 40 ms/page against 3.3 ms/page
for the bare lexbor parse, while this reader, parse included, costs about
4 ms/page, about 1.2× the bare parse (the issue's goal: ≤ 2.5×, and faster than
extruct). Correctness was the same on the corpus (every record matched). So
the page's lexbor tree, which the project already has, is read directly:
JSON-LD with ``json.loads`` on each script's text, microdata and RDFa by CSS
queries on their attributes, and only when the page has items that are
reviews. extruct stays in the test extra, where a test cross-checks this
reader's JSON-LD and microdata reviews against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ParseError
from scraper.records import PageKind, PageResult, Record
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites.schemaorg.fields import (
    Candidate,
    PageInfo,
    read_candidate,
    with_page_item,
)
from scraper.sites.schemaorg.graph import find_reviews, index
from scraper.sites.schemaorg.identity import merge_duplicates, to_records
from scraper.sites.schemaorg.jsonld import read_block
from scraper.sites.schemaorg.markup import MICRODATA, RDFA, items_with_reviews
from scraper.sites.schemaorg.page import canonical_url, day_first, next_page, site_of

if TYPE_CHECKING:
    from scraper.config import SchemaOrgLimits

__all__ = ["SCHEMAORG", "PageReading", "SchemaOrgSite", "read_page", "read_reviews"]

_JSON_LD = "ld+json"


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


def _json_ld_roots(tree: LexborHTMLParser, limits: SchemaOrgLimits) -> tuple[list[Any], list[str]]:
    roots: list[Any] = []
    problems: list[str] = []
    number = 0
    for script in tree.css("script[type]"):
        if _JSON_LD not in (script.attrs.get("type") or "").lower():
            continue
        number += 1
        block = read_block(script, number, limits.max_block_chars)
        roots.extend(block.values)
        if block.problem:
            problems.append(block.problem)
    return roots, problems


class _Gathered(NamedTuple):
    candidates: list[Candidate]
    aggregate: bool
    problems: list[str]
    main: list[dict[str, Any]]  # nodes that may be the page's reviewed thing


def _candidates(
    roots: list[Any], page: PageInfo, source: str, limits: SchemaOrgLimits
) -> _Gathered:
    graph = index(roots, limits)
    problems = [f"{source}: stopped after {limits.max_nodes} nodes"] if graph.truncated else []
    candidates = []
    for found in find_reviews(roots, graph, limits):
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
    page = PageInfo(site_of(page_url), page_url, url or page_url, day_first(tree))
    roots, problems = _json_ld_roots(tree, limits)
    gathered = _candidates(roots, page, "json-ld", limits)
    candidates, aggregate, main = gathered.candidates, gathered.aggregate, gathered.main
    problems.extend(gathered.problems)
    for syntax in (MICRODATA, RDFA):
        items = items_with_reviews(tree, syntax, page.base, limits)
        aggregate = aggregate or items.aggregate
        if items.with_reviews:
            gathered = _candidates(items.with_reviews, page, syntax.name, limits)
            candidates.extend(gathered.candidates)
            problems.extend(gathered.problems)
            main.extend(gathered.main + items.main)
    candidates = with_page_item(candidates, main, page, limits)
    merged = merge_duplicates(candidates)[: limits.max_reviews]
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


class SchemaOrgSite:
    """The schema.org reader as a site (see ``scraper.sites.Site``)."""

    name = "schemaorg"

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
            return PageResult(
                kind=PageKind.ENTRY_REVIEWS,
                url=reading.url,
                reviews=reading.records,  # type: ignore[arg-type]  # until PageResult carries Records
                next_url=next_page(tree, url, reading.url),
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
