"""Sites: pure functions of (html, url) to review records and the next link, and
everything else the archive needs to know about a site.

A site (``Site``) recognises and parses its pages (``matches``, ``parse``; the
next page travels in ``PageResult.next_url``) and decides, for the crawler and
the store, how its listing URLs are spelled and paged, which URLs are its review
pages, how its items and authors are keyed, its own filters (tags, item types)
and which of its own record keys are kept (``scraper.sites._generic.SitePolicy``
holds the defaults). Sites live in ``SITES``, tried in order: a site of its own
(``sites/mal/``) reads its pages, and the generic schema.org reader any other page.
Adding a site means adding a folder beside ``mal/`` and one line there. Nothing
here touches the network or a database, so every parser is testable from a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ParseError, UsageError
from scraper.records import PageKind, PageResult, Record
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites._generic import SitePolicy, address
from scraper.sites._limits import check_depth
from scraper.sites.mal import MAL
from scraper.sites.schemaorg import SCHEMAORG

__all__ = [
    "GENERIC",
    "SITES",
    "Site",
    "SiteRules",
    "address",
    "known_tags",
    "parse_page",
    "site_for_record",
    "site_for_url",
]


class SiteRules(Protocol):
    """What a site decides for the crawler and the store (see ``SitePolicy``)."""

    name: str
    known_tags: tuple[str, ...]
    item_types: tuple[str, ...]
    paging_parameters: tuple[str, ...]
    counting_extras: tuple[str, ...]
    csv_columns: tuple[str, ...]

    def owns(self, namespace: str) -> bool: ...
    def handles_url(self, url: str) -> bool: ...
    def listing_url(self, url: str, *, mode: str) -> str: ...
    def in_listing(self, url: str, seed: str) -> bool: ...
    def is_review_url(self, url: str) -> bool: ...
    def item_key(self, record: Record) -> str: ...
    def author_key(self, record: Record) -> str | None: ...
    def same_author(self, first_image: str | None, second_image: str | None) -> bool: ...
    def item_keys(self, text: str) -> list[str] | None: ...
    def stored_extra(self, record: Record) -> dict[str, Any] | None: ...
    def record_extra(
        self, record: Record, item_key: str, stored: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None: ...
    def observation_extra(self, record: Record) -> dict[str, Any] | None: ...
    def csv_cells(self, record: Mapping[str, Any]) -> dict[str, Any]: ...
    def history_keys(self, observation: Mapping[str, Any]) -> dict[str, Any]: ...


class Site(SiteRules, Protocol):
    """What every registered site provides: its rules, and reading its pages."""

    def matches(self, tree: LexborHTMLParser, url: str | None) -> bool:
        """Return True when this site can read the page."""

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return the page's kind, records and next link. Raises ParseError only."""


#: Registered sites, tried in order.
SITES: tuple[Site, ...] = (MAL, SCHEMAORG)  # the schema.org reader takes every other page

#: The policy of every site without a folder of its own (pages read from schema.org markup).
GENERIC: SiteRules = SitePolicy()


def site_for_record(namespace: str) -> SiteRules:
    """Return the site whose records carry ``site`` *namespace* (GENERIC for any other)."""
    for site in SITES:
        if site.owns(namespace):
            return site
    return GENERIC


def site_for_url(url: str) -> SiteRules:
    """Return the site *url* belongs to (GENERIC for any other address)."""
    for site in SITES:
        if site.handles_url(url):
            return site
    return GENERIC


def known_tags() -> tuple[str, ...]:
    """Return every registered site's tag labels (for ``--tag``), without repeats."""
    return tuple(dict.fromkeys(tag for site in SITES for tag in site.known_tags))


def parse_page(
    html: bytes | str, url: str | None = None, *, charset: str | None = None
) -> PageResult:
    """Return what one page holds: its kind, review records, entry and next page.

    *html* is the page as fetched (bytes, decoded with *charset* from the HTTP
    header, else the page's BOM/meta, else UTF-8) or already text. *url* is
    where it was served from: records always carry the site's own addresses,
    while ``next_url`` keeps the scheme and host of *url*. Non-review, blocked
    and unrecognised pages come back as a PageResult of that kind (call
    ``raise_for_kind()`` to turn them into errors). Raises ParseError (or a
    subclass) only when the input cannot be read as a page at all (one nested
    deeper than ``MAX_NESTING_DEPTH``: "page too deep"), and
    UsageError when *url* is not an address at all.
    """
    if url is not None:
        try:
            urlsplit(url)
        except ValueError as error:
            raise UsageError(f"not a usable URL: {url!r} ({error})") from None
    source = parser_input(html, charset)
    check_depth(source, url)  # before the parser: its work grows with the depth
    try:
        tree = LexborHTMLParser(source)
    except Exception as error:  # the C parser's failures have no common class
        raise ParseError(f"the HTML parser refused the page: {error}", url=url) from error
    for site in SITES:
        if site.matches(tree, url):
            return site.parse(tree, url)
    reason = block_reason(tree)
    if reason is not None:
        return PageResult(kind=PageKind.BLOCKED, url=url, problem=f"blocked page: {reason}")
    return PageResult(
        kind=PageKind.NOT_REVIEW_PAGE, url=url, problem="not a review page of any known site"
    )
