"""The registered sites with their parsers, and reading a page with them.

Loaded on first use (``scraper.sites.parse_page``, ``scraper.sites.SITES``): it
brings in the HTML engine and every site's reader, which the read commands never
need.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from scraper.errors import ParseError, UsageError
from scraper.records import PageKind, PageResult
from scraper.sites import Site
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites._limits import check_depth
from scraper.sites.mal.site import MAL
from scraper.sites.schemaorg import SCHEMAORG

__all__ = ["SITES", "parse_page"]

#: Registered sites, tried in order.
SITES: tuple[Site, ...] = (MAL, SCHEMAORG)  # the schema.org reader takes every other page


def parse_page(html: bytes | str, url: str | None, *, charset: str | None) -> PageResult:
    """See ``scraper.sites.parse_page``."""
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
