"""What a schema.org page says about itself: its canonical URL, its site, its next page.

The site of a record is the host of the page's canonical URL (``<link
rel="canonical">``, else ``og:url``, else the address it was served from)
without a leading ``www.``; a page with no address at all is site
``unknown``.

The next page is a ``<link rel="next">`` or ``<a rel="next">`` that pages
*this* document: same host, and the same path (``?page=2``) or a path below
it (``/comment-page-2/``, ``/reviews/2``). Blog themes mark the link to the
next *post* with ``rel="next"`` too; following that would walk a whole blog
one recipe at a time, so a link to another path is not the next page.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

__all__ = ["canonical_url", "day_first", "next_page", "site_of"]

_CANONICAL = 'link[rel~="canonical" i]'
_OG_URL = 'meta[property="og:url"]'
_NEXT = 'link[rel~="next" i], a[rel~="next" i]'
UNKNOWN_SITE = "unknown"


def _http(address: str | None, base: str | None) -> str | None:
    """Return *address* made absolute against *base* when it is an http(s) URL, else None."""
    if not address:
        return None
    address = address.strip()
    try:
        joined = urljoin(base, address) if base else address
        parts = urlsplit(joined)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return joined


def canonical_url(tree: LexborHTMLParser, url: str | None) -> str | None:
    """Return the page's canonical URL (see the module docstring), or None."""
    for selector, attribute in ((_CANONICAL, "href"), (_OG_URL, "content")):
        element = tree.css_first(selector)
        if element is not None:
            address = _http(element.attrs.get(attribute), url)
            if address is not None:
                return address
    return _http(url, None)


def site_of(address: str | None) -> str:
    """Return the host of *address* without a leading ``www.``."""
    try:
        host = urlsplit(address).hostname if address else None
    except ValueError:
        host = None
    if not host:
        return UNKNOWN_SITE
    return host.removeprefix("www.")


def next_page(tree: LexborHTMLParser, url: str | None, page_url: str | None) -> str | None:
    """Return the next page of this document (see the module docstring), or None."""
    base = url or page_url
    here = page_url or url
    if not here:
        return None
    try:
        current = urlsplit(here)
    except ValueError:
        return None
    path = current.path or "/"
    for element in tree.css(_NEXT):
        address = _http(element.attrs.get("href"), base)
        if address is None:
            continue
        target = urlsplit(address)
        same_host = site_of(address) == site_of(here)
        target_path = target.path or "/"
        below = target_path == path or target_path.startswith(path.rstrip("/") + "/")
        if same_host and below and address.split("#", 1)[0] != here.split("#", 1)[0]:
            return address
    return None


#: Languages whose all-number dates put the month first (``03/04/2023`` is March 4).
_MONTH_FIRST_LANGUAGES = ("", "en", "en-us", "en-ph", "en-ca")


def day_first(tree: LexborHTMLParser) -> bool:
    """Return True when the page's language writes all-number dates day first."""
    root = tree.css_first("html")
    language = (root.attrs.get("lang") or "").strip().lower().replace("_", "-") if root else ""
    return language not in _MONTH_FIRST_LANGUAGES
