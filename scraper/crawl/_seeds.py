"""Seed and link normalisation: which spelling of a URL the crawl fetches, and the key
that names one crawl (its seed set and mode), so the same command resumes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from scraper.errors import UsageError
from scraper.fetch.urls import canonicalize
from scraper.sites import site_for_url

__all__ = ["ARCHIVE", "MODES", "check_mode", "crawl_key", "follow", "normalise", "normalise_seeds"]

#: ``full`` reads every page of every chain; ``incremental`` reads listings newest
#: first and stops a chain at the first page holding a review already stored.
MODES = ("full", "incremental")
#: The mode of ``reviews archive``: the URLs given, each fetched as given
#: (canonicalized), no link followed.
ARCHIVE = "archive"


def normalise(url: str, *, mode: str = "full") -> str:
    """Return the canonical URL the crawl fetches for *url*.

    The URL is canonicalized, then spelled as its site wants its listings read
    (``Site.listing_url``: a listing that hides some reviews unless asked shows
    them all and, in incremental mode, the newest first); an archive fetches the page
    as given. Raises BadURL for a non-http(s) URL.
    """
    url = canonicalize(url)
    if mode == ARCHIVE:
        return url
    return canonicalize(site_for_url(url).listing_url(url, mode=mode))


def follow(page_url: str, next_url: str, *, mode: str) -> str | None:
    """Return the normalised *next_url* of the page at *page_url*, or None when it
    leaves the page's host (a chain stays on its seed's host, whatever the site).
    Raises BadURL for a non-http(s) URL."""
    target = normalise(next_url, mode=mode)
    return target if urlsplit(target).netloc == urlsplit(page_url).netloc else None


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
