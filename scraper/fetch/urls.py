"""URL checks and canonical forms: the fetch layer's vocabulary for "the same page".

``canonicalize`` decides when two spellings name one page (so a crawl fetches it
once); ``host_key`` names the unit that politeness applies to (robots.txt, the
per-host interval), as ``scheme://netloc`` — the key of the ``hosts`` table.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, quote, unquote_plus, urlsplit, urlunsplit

from scraper.errors import BadURL

__all__ = ["canonicalize", "host_key", "require_http", "robots_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

# Characters left as they are in a path: RFC 3986 unreserved, sub-delims, ":@/" and
# "%" (an existing escape is kept, never escaped twice).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
#: Spaces and control characters: never part of a URL we send.
_UNSAFE_CHAR = re.compile(r"[\x00-\x20\x7f]")


def _split(url: str) -> SplitResult:
    """Split *url*, raising BadURL unless it is an absolute http(s) URL with a host."""
    if not isinstance(url, str) or not url.strip():
        raise BadURL("empty URL", url=str(url))
    text = url.strip()
    if _UNSAFE_CHAR.search(text):
        raise BadURL(f"URL {text!r} holds spaces or control characters", url=text)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise BadURL(f"not a valid URL: {error}", url=text) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise BadURL(f"only http and https URLs can be fetched ({shown})", url=text)
    if not parts.hostname:
        raise BadURL("URL has no host", url=text)
    del port
    return parts


def require_http(url: str) -> str:
    """Return *url* stripped of surrounding whitespace.

    Raises BadURL when it is not an absolute http(s) URL with a host, or when it
    cannot be parsed (bad port, spaces or control characters inside).
    """
    _split(url)
    return url.strip()


def _netloc(parts: SplitResult) -> str:
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal loses its brackets in .hostname
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS[parts.scheme.lower()]:
        host = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username
        if parts.password is not None:
            userinfo = f"{userinfo}:{parts.password}"
        host = f"{userinfo}@{host}"
    return host


def _sorted_query(query: str) -> str:
    # Sort by the decoded (key, value) but keep each pair's own spelling, so that
    # sorting never changes what the server receives.
    pairs = [pair for pair in query.split("&") if pair]

    def decoded(pair: str) -> tuple[str, str]:
        key, _, value = pair.partition("=")
        return unquote_plus(key), unquote_plus(value)

    return "&".join(sorted(pairs, key=decoded))


def canonicalize(url: str) -> str:
    """Return the canonical spelling of *url*.

    Lower-cases scheme and host, drops the default port and the fragment, sorts
    the query parameters, escapes characters a server would need escaped, and
    keeps the path's case (paths are case-sensitive). Raises BadURL as
    ``require_http`` does.
    """
    parts = _split(url)
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = _sorted_query(quote(parts.query, safe=_PATH_SAFE + "?"))
    return urlunsplit((parts.scheme.lower(), _netloc(parts), path, query, ""))


def host_key(url: str) -> str:
    """Return ``scheme://netloc`` of *url* (lower-case, default port dropped).

    This is the unit of politeness: robots.txt and the request interval are per
    host key. Raises BadURL as ``require_http`` does.
    """
    parts = _split(url)
    netloc = _netloc(parts).rpartition("@")[2]
    return f"{parts.scheme.lower()}://{netloc}"


def robots_url(url: str) -> str:
    """Return the robots.txt URL that governs *url*. Raises BadURL as ``require_http``."""
    return f"{host_key(url)}/robots.txt"
