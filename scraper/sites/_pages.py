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
from scraper.sites import NextLink, Site
from scraper.sites._blocked import block_reason
from scraper.sites._decode import parser_input
from scraper.sites._limits import check_depth
from scraper.sites.mal.site import MAL
from scraper.sites.schemaorg import SCHEMAORG

__all__ = ["SITES", "PageLook", "look_at", "parse_page"]

#: Registered sites, tried in order.
SITES: tuple[Site, ...] = (MAL, SCHEMAORG)  # the schema.org reader takes every other page


def parse_page(html: bytes | str, url: str | None, *, charset: str | None) -> PageResult:
    """See ``scraper.sites.parse_page``."""
    return look_at(html, url, charset=charset).result()


def look_at(html: bytes | str, url: str | None, *, charset: str | None) -> PageLook:
    """See ``scraper.sites.look_at``."""
    if url is not None:
        try:
            urlsplit(url)
        except ValueError as error:
            raise UsageError(f"not a usable URL: {url!r} ({error})") from None
    try:
        return _look(html, url, charset)
    except ParseError:
        raise
    except Exception as error:  # a bug met on this page (its decoding, a site's test)
        raise ParseError.parser_bug(error, url) from error


def _look(html: bytes | str, url: str | None, charset: str | None) -> PageLook:
    source = parser_input(html, charset)
    check_depth(source, url)  # before the parser: its work grows with the depth
    try:
        tree = LexborHTMLParser(source)
    except Exception as error:  # the C parser's failures have no common class
        raise ParseError(f"the HTML parser refused the page: {error}", url=url) from error
    site = next((site for site in SITES if site.matches(tree, url)), None)
    return PageLook(tree, url, site)


class PageLook:
    """One page's tree and the site that reads it: ``parse_page`` in two steps, a cheap
    look at the next link (``next_link``) and then the full parse (``result``)."""

    __slots__ = ("_read", "site", "tree", "url")

    def __init__(self, tree: LexborHTMLParser, url: str | None, site: Site | None) -> None:
        self.tree = tree
        self.url = url
        self.site = site
        self._read = False

    def next_link(self) -> NextLink | None:
        """The site's ``Site.next_link`` (None: only the full parse can tell). Leaves
        the tree as it was; a site's failure here is None, the full parse reports it."""
        if self.site is None or self._read:
            return None
        try:
            return self.site.next_link(self.tree, self.url)
        except Exception:
            return None

    def result(self) -> PageResult:
        """The page's full parse, as ``parse_page`` gives it (once: it consumes the tree).

        Raises ParseError (or a subclass), also for a bug a site's parser met on this
        page (``ParseError.parser_bug``, the bug as its cause): every caller then names
        the page and goes on to the next.
        """
        if self._read:
            raise RuntimeError("a PageLook is parsed once (the parse consumes its tree)")
        self._read = True
        tree, url = self.tree, self.url
        if self.site is not None:
            try:
                return self.site.parse(tree, url)
            except ParseError:
                raise
            except Exception as error:  # a bug met on this page
                raise ParseError.parser_bug(error, url) from error
        reason = block_reason(tree)
        if reason is not None:
            return PageResult(kind=PageKind.BLOCKED, url=url, problem=f"blocked page: {reason}")
        return PageResult(
            kind=PageKind.NOT_REVIEW_PAGE, url=url, problem="not a review page of any known site"
        )
