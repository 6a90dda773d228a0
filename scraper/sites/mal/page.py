"""Page-level facts of a MyAnimeList page: its address, entry, kind and next page.

Records always name myanimelist.net, whatever host served the page (a local
mirror, an archive); only the next-page link follows the serving host, so a
mirror is crawled on itself.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.records import PageKind
from scraper.sites.mal import selectors as sel
from scraper.sites.mal.text import clean_inline
from scraper.sites.mal.v1 import Entry, User

__all__ = [
    "MAL_ORIGIN",
    "PageContext",
    "canonical_url",
    "entry_from_url",
    "guess_kind",
    "next_page_url",
    "on_mal",
    "page_context",
]

MAL_ORIGIN = "https://myanimelist.net"

_ENTRY_PATH = re.compile(r"^/(anime|manga)/(\d+)(?:/([^/?#]*))?")
_PROFILE_REVIEWS_PATH = re.compile(r"^/profile/([^/]+)/reviews/?$")
# Titles look like "Cowboy Bebop - Reviews - MyAnimeList.net".
_TITLE_SUFFIX = re.compile(r"\s+-\s+Reviews\s+-\s+MyAnimeList\.net\s*$", re.IGNORECASE)
# Most links on a page are already plain https://myanimelist.net addresses;
# for those, joining and splitting with urllib (several microseconds a link)
# gives back what this match holds. Parameters (;), fragments, an empty
# query, spaces and controls are left to urllib, which treats them specially.
_PLAIN_MAL = re.compile(
    r"https://myanimelist\.net(/[^?#;\s\x00-\x1f\x7f]*)(\?[^#;\s\x00-\x1f\x7f]+)?"
)


def on_mal(href: str, base: str = MAL_ORIGIN + "/") -> str | None:
    """Return *href* (absolute, or relative to *base*) as an address on myanimelist.net.

    Returns None for an address that cannot be parsed at all (``http://[x``):
    page content is never trusted to be well-formed.
    """
    href = href.strip()
    if _PLAIN_MAL.fullmatch(href) is not None:
        return href
    try:
        parts = urlsplit(urljoin(base, href))
    except ValueError:
        return None
    return urlunsplit(("https", "myanimelist.net", parts.path, parts.query, ""))


def _rebase(href: str, url: str | None, page_url: str | None) -> str | None:
    """Return *href* on the scheme and host of *url* (myanimelist.net when None).

    A relative *href* is read against the page's own address, as a browser would.
    """
    absolute = on_mal(href, page_url or MAL_ORIGIN + "/")
    if absolute is None or not url:
        return absolute
    served = urlsplit(url)  # parse_page has checked that *url* parses
    if not served.scheme or not served.netloc:
        return absolute
    parts = urlsplit(absolute)
    return urlunsplit((served.scheme, served.netloc, parts.path, parts.query, ""))


def _attr(tree: LexborHTMLParser, selector: str, name: str) -> str | None:
    node = tree.css_first(selector)
    if node is None:
        return None
    value = node.attrs.get(name)
    return value.strip() if value and value.strip() else None


def canonical_url(tree: LexborHTMLParser, url: str | None) -> str | None:
    """Return the page's own address on myanimelist.net, or None when unknown.

    The page's ``<link rel=canonical>`` / ``og:url`` wins over the *url* it was
    served from, because a mirror's address says nothing about the page.
    """
    for href in (_attr(tree, sel.CANONICAL, "href"), _attr(tree, sel.OG_URL, "content"), url):
        address = on_mal(href) if href else None
        if address is not None:
            return address
    return None


def entry_from_url(href: str, title: str) -> Entry | None:
    """Return the entry an ``/anime|manga/{id}/{Slug}...`` address names, or None."""
    address = on_mal(href)
    match = _ENTRY_PATH.match(urlsplit(address).path) if address else None
    if match is None:
        return None
    kind, mal_id, slug = match.groups()
    entry_url = f"{MAL_ORIGIN}/{kind}/{mal_id}" + (f"/{slug}" if slug else "")
    return Entry(mal_id=int(mal_id), type=kind, title=title, url=entry_url)  # type: ignore[arg-type]


def _entry_title(tree: LexborHTMLParser) -> str:
    title = _attr(tree, sel.OG_TITLE, "content")
    if title:
        return clean_inline(title)
    heading = tree.css_first(sel.ENTRY_HEADING)
    if heading is not None and heading.text(strip=True):
        return clean_inline(heading.text())
    title_node = tree.css_first("title")
    text = title_node.text() if title_node is not None else ""
    return clean_inline(_TITLE_SUFFIX.sub("", text))


class PageContext(NamedTuple):
    """What the page as a whole says about its reviews.

    ``entry`` is set on an entry's reviews page, ``owner`` on a user's reviews
    page (whose review boxes may not repeat the reviewer's name). ``titleblocks``
    is False when the page holds no ``div.titleblock`` at all: then no review
    names its own entry there, and none is looked for.
    """

    url: str | None
    kind: PageKind | None
    entry: Entry | None
    owner: User | None
    titleblocks: bool = True


def _owner(tree: LexborHTMLParser, name: str) -> User:
    image = tree.css_first(sel.PROFILE_IMAGE)
    src = None
    if image is not None:
        src = image.attrs.get("data-src") or image.attrs.get("src")
    return User(username=name, url=f"{MAL_ORIGIN}/profile/{name}", image_url=src or None)


def page_context(tree: LexborHTMLParser, page_url: str | None) -> PageContext:
    """Return what the page's address (and head) say about the reviews on it."""
    if not page_url:
        return PageContext(url=None, kind=None, entry=None, owner=None)
    parts = urlsplit(page_url)
    entry = None
    if _ENTRY_PATH.match(parts.path) is not None:
        entry = entry_from_url(page_url, _entry_title(tree))
    profile = _PROFILE_REVIEWS_PATH.match(parts.path)
    owner = _owner(tree, unquote(profile.group(1))) if profile is not None else None
    return PageContext(url=page_url, kind=_kind_from_url(page_url), entry=entry, owner=owner)


def _kind_from_url(page_url: str) -> PageKind | None:
    parts = urlsplit(page_url)
    if _ENTRY_PATH.match(parts.path) is not None:
        return PageKind.ENTRY_REVIEWS
    if _PROFILE_REVIEWS_PATH.match(parts.path) is not None:
        return PageKind.USER_REVIEWS
    if parts.path.rstrip("/") == "/reviews.php":
        query = parse_qs(parts.query)
        return PageKind.SINGLE_REVIEW if "id" in query else PageKind.RECENT_REVIEWS
    return None


def guess_kind(context: PageContext, review_count: int, names_entries: bool) -> PageKind:
    """Return the kind of review page; structure decides when the address is silent."""
    if context.kind is not None:
        return context.kind
    if names_entries:
        return PageKind.SINGLE_REVIEW if review_count == 1 else PageKind.RECENT_REVIEWS
    return PageKind.ENTRY_REVIEWS


def _is_more_link(node: LexborNode) -> bool:
    return clean_inline(node.text()) == sel.MORE_REVIEWS_TEXT


def next_page_url(
    tree: LexborHTMLParser,
    more: LexborNode | None,
    url: str | None,
    page_url: str | None = None,
) -> str | None:
    """Return the "More Reviews" address on the host of *url*, or None on the last page.

    *more* is the page's marked "More Reviews" link, if it has one; else the
    link with a page number whose text says so is looked for. *page_url* is
    the page's own address, against which a relative link is read.
    """
    link = more
    if link is None:
        link = next(filter(_is_more_link, tree.css(sel.PAGER_LINKS)), None)
    href = link.attrs.get("href") if link is not None else None
    if not href or href.startswith(("#", "javascript:")):
        return None
    return _rebase(href, url, page_url)
