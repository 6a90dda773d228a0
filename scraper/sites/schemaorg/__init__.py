"""Any page with schema.org Review markup: JSON-LD, microdata and RDFa Lite.

The reader behind every page no site of its own claims (see
``scraper.sites.SITES``: sites of their own first, this reader last). It reads every
``Review`` node (and its subtypes) of a page, wherever it sits: JSON-LD
blocks (``jsonld.py``, forgiving common breakage), the nodes linked through
``@graph`` and ``@id`` references (``graph.py``), microdata and RDFa items
(``markup.py``, built into the same JSON-LD shape), and turns each into a
contract v2 record (``fields.py``: item, author, date, rating, body...;
``identity.py``: duplicates and ids; ``page.py``: canonical URL, site, next
page; ``reader.py`` ties them together and is imported on a page's first use,
so that ``reviews parse`` of MyAnimeList pages starts without any of them). The
rules are shared/record-contract.md's v2 section.

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

from typing import TYPE_CHECKING, NamedTuple

from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ParseError
from scraper.records import Record
from scraper.sites._decode import parser_input
from scraper.sites._generic import SitePolicy

if TYPE_CHECKING:
    from scraper.config import SchemaOrgLimits
    from scraper.records import PageResult
    from scraper.sites import NextLink

__all__ = ["SCHEMAORG", "PageReading", "SchemaOrgSite", "read_page", "read_reviews"]


class PageReading(NamedTuple):
    """Everything the reader got from one page."""

    url: str | None  # the canonical URL
    records: tuple[Record, ...]
    aggregate: bool  # an AggregateRating was seen
    problems: tuple[str, ...]


def read_page(
    tree: LexborHTMLParser, url: str | None, limits: SchemaOrgLimits | None = None
) -> PageReading:
    """Return the page's records and what was noticed on the way (never raises)."""
    # The reader's modules load on first use (see reader.py): start-up is part of
    # `reviews parse`'s measured cost, and most pages never reach this reader.
    from scraper.sites.schemaorg import reader

    return reader.read_page(tree, url, limits)


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

    def next_link(self, tree: LexborHTMLParser, url: str | None) -> NextLink | None:
        """Return None: whether a page has a next link here depends on its records
        (a page without any has none), which only the full parse reads."""
        return None

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return the page's kind, records and next page (see the module docstring)."""
        from scraper.sites.schemaorg import reader

        return reader.page_result(tree, url, self.limits)


SCHEMAORG = SchemaOrgSite()
