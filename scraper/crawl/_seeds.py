"""Seed and link normalisation: which spelling of a URL the crawl fetches, and the key
that names one crawl (its seed set and mode), so the same command resumes it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scraper.errors import UsageError
from scraper.fetch.urls import canonicalize

__all__ = ["MODES", "check_mode", "crawl_key", "is_entry_reviews", "normalise", "normalise_seeds"]

#: ``full`` reads every page of every chain; ``incremental`` reads listings newest
#: first and stops a chain at the first page holding a review already stored.
MODES = ("full", "incremental")

#: ``/anime/1/Cowboy_Bebop/reviews`` and ``/manga/2/Berserk/reviews`` (slug optional).
_ENTRY_REVIEWS = re.compile(r"^/(anime|manga)/\d+(/[^/]*)?/reviews/?$")

#: Entry review listings hide spoiler and preliminary reviews unless asked: always ask.
_SHOW_ALL = {"spoiler": "on", "preliminary": "on"}


def is_entry_reviews(url: str) -> bool:
    """Return True when *url* is an entry's review listing (anime or manga)."""
    return bool(_ENTRY_REVIEWS.match(urlsplit(url).path))


def normalise(url: str, *, mode: str = "full") -> str:
    """Return the canonical URL the crawl fetches for *url*.

    Entry review listings get ``spoiler=on&preliminary=on`` (no review hidden),
    ``p=1`` is dropped (the same page as no ``p``), and in incremental mode they
    are read newest first (``sort=newest``). Raises BadURL for a non-http(s) URL.
    """
    url = canonicalize(url)
    if not is_entry_reviews(url):
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(_SHOW_ALL)
    if query.get("p") == "1":
        del query["p"]
    if mode == "incremental":
        query["sort"] = "newest"
    rebuilt = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return canonicalize(rebuilt)


def check_mode(mode: str) -> str:
    """Return *mode* when it is one of ``MODES``; raise UsageError otherwise."""
    if mode not in MODES:
        raise UsageError(f"unknown crawl mode {mode!r} (choose {' or '.join(MODES)})")
    return mode


def normalise_seeds(seeds: Iterable[str], *, mode: str) -> list[str]:
    """Return the distinct normalised seeds in their given order.

    Raises UsageError when there is none, or BadURL naming the first bad one.
    """
    result = list(dict.fromkeys(normalise(seed, mode=mode) for seed in seeds))
    if not result:
        raise UsageError("give at least one URL to crawl")
    return result


def crawl_key(seeds: Sequence[str], *, mode: str) -> str:
    """Return the key naming the crawl of these normalised *seeds* in *mode* (sha256 hex)."""
    text = "\n".join([mode, *sorted(set(seeds))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
