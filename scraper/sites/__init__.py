"""Site parsers: pure functions of (html, url) to review records and the next link.

A site is an object with a ``name``, ``matches(tree, url)`` and
``parse(tree, url) -> PageResult`` (the next page travels in
``PageResult.next_url``). Sites live in ``SITES``, tried in order; adding a
site means adding a folder beside ``mal/`` and an entry there. Nothing here
touches the network or a database, so every parser is testable from a file.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ParseError, UsageError
from scraper.records import PageKind, PageResult
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites.mal import MAL

__all__ = ["SITES", "Site", "parse_page"]


class Site(Protocol):
    """What every site parser provides."""

    name: str

    def matches(self, tree: LexborHTMLParser, url: str | None) -> bool:
        """Return True when this site can read the page."""

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return the page's kind, records and next link. Raises ParseError only."""


#: Registered sites, tried in order.
SITES: tuple[Site, ...] = (MAL,)


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
    subclass) only when the input cannot be read as a page at all, and
    UsageError when *url* is not an address at all.
    """
    if url is not None:
        try:
            urlsplit(url)
        except ValueError as error:
            raise UsageError(f"not a usable URL: {url!r} ({error})") from None
    source = parser_input(html, charset)
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
