"""MyAnimeList: its pages' reader (``site``: entry reviews, permalinks, recent and
user reviews, both layouts) and what it decides for the archive (``archive``).

The reader, with the HTML engine it needs, is loaded on first use of ``MAL``:
the read commands need MyAnimeList's rules (``archive.MalPolicy``: tags, keys,
its own record keys) but never its parser, and they have a start-up goal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scraper.sites.mal.site import MAL, MalSite, PageParts, page_parts

__all__ = ["MAL", "MalSite", "PageParts", "page_parts"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from scraper.sites.mal import site

        return getattr(site, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
