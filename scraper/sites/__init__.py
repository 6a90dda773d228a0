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
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from scraper.sites._generic import SitePolicy, address
from scraper.sites.mal.archive import MalPolicy

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

    from scraper.records import PageResult, Record
    from scraper.sites._pages import PageLook

__all__ = [
    "GENERIC",
    "RULES",
    "SITES",
    "NextLink",
    "Site",
    "SiteRules",
    "address",
    "known_tags",
    "load_parsers",
    "look_at",
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


class NextLink(NamedTuple):
    """What ``Site.next_link`` found: the page's next page (``url``; None on the last
    page), the one its full parse gives, and that the page is no block page. (Not a
    dataclass: ``reviews parse`` starts without loading that module.)"""

    url: str | None


class Site(SiteRules, Protocol):
    """What every registered site provides: its rules, and reading its pages."""

    def matches(self, tree: LexborHTMLParser, url: str | None) -> bool:
        """Return True when this site can read the page."""

    def parse(self, tree: LexborHTMLParser, url: str | None) -> PageResult:
        """Return the page's kind, records and next link. Raises ParseError only."""

    def next_link(self, tree: LexborHTMLParser, url: str | None) -> NextLink | None:
        """Return the page's next link found without the full ``parse``, or None when
        only ``parse`` can tell.

        The crawler asks for the next page on this before it parses the page in full
        (which it does while that request is out). So whenever it is not None,
        ``parse(tree, url)`` of the same page must give ``next_url == link.url`` and
        no ``BLOCKED`` page (a block page must be seen before the next request). It
        leaves *tree* as it found it (``parse`` runs on the same tree after it).
        """


#: Each registered site's rules, in the order of ``SITES`` (a test keeps the two in
#: step): what the store, the read side and the crawler need of a site, without
#: loading its parser and the HTML engine (the read commands have a start-up goal).
RULES: tuple[SiteRules, ...] = (MalPolicy(), SitePolicy())  # MyAnimeList, schema.org

#: The policy of every site without a folder of its own (pages read from schema.org markup).
GENERIC: SiteRules = SitePolicy()


def __getattr__(name: str) -> object:
    # The registered sites themselves (rules and parsers), loaded on first use.
    if name == "SITES":
        from scraper.sites._pages import SITES

        return SITES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def site_for_record(namespace: str) -> SiteRules:
    """Return the site whose records carry ``site`` *namespace* (GENERIC for any other)."""
    for site in RULES:
        if site.owns(namespace):
            return site
    return GENERIC


def site_for_url(url: str) -> SiteRules:
    """Return the site *url* belongs to (GENERIC for any other address)."""
    for site in RULES:
        if site.handles_url(url):
            return site
    return GENERIC


def known_tags() -> tuple[str, ...]:
    """Return every registered site's tag labels (for ``--tag``), without repeats."""
    return tuple(dict.fromkeys(tag for site in RULES for tag in site.known_tags))


def load_parsers() -> None:
    """Import every site's parser (and the HTML engine) now rather than on the first
    page: before forking workers, so that they share it instead of each importing it."""
    import scraper.sites._pages  # noqa: F401


def look_at(html: bytes | str, url: str | None = None, *, charset: str | None = None) -> PageLook:
    """Return *html*'s tree and the site that reads it, not yet parsed: its
    ``next_link()`` is cheap, its ``result()`` is ``parse_page``'s answer.

    Raises what ``parse_page`` raises before the site's parser runs (ParseError for
    a page the HTML parser cannot take, UsageError for a *url* that is no address).
    """
    from scraper.sites._pages import look_at as look

    return look(html, url, charset=charset)


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
    deeper than ``MAX_NESTING_DEPTH``: "page too deep") or a parser met a bug on it
    ("the parser failed: ...", ``ParseError.parser_bug``, the bug as its cause), and
    UsageError when *url* is not an address at all: nothing else, so that one page
    never stops a run over many.
    """
    from scraper.sites._pages import parse_page as parse

    return parse(html, url, charset=charset)
