"""What a site decides about its records and addresses, with the defaults of a
generic site (any page read from schema.org markup).

A dedicated site (``scraper.sites.mal``) overrides what it knows better: how its
listing URLs are spelled and paged, how its items and authors are keyed, which of
its own keys (``Record.extra``) the archive keeps and how they come back.
Everything here is pure: no network, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from scraper.records import Record

__all__ = ["PAGING_PARAMETERS", "SitePolicy", "address"]

#: Query parameters that number the pages of a generic listing (``?page=2``).
PAGING_PARAMETERS: tuple[str, ...] = ("page", "p", "pg", "start", "offset")


def address(url: str) -> str:
    """Return *url* without its query and fragment: what every page of a listing shares."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class SitePolicy:
    """The archive-side decisions of a site; these defaults serve any generic site.

    ``name`` names the site in messages and in ``--site``; ``known_tags`` are
    the tag labels ``--tag`` spells canonically (any other label is taken as
    written); ``paging_parameters`` the query parameters that number pages.
    """

    name = "generic"
    known_tags: tuple[str, ...] = ()
    item_types: tuple[str, ...] = ()
    paging_parameters: tuple[str, ...] = PAGING_PARAMETERS
    #: Keys of ``stored_extra`` that move on every capture (counts): kept, but not edits.
    counting_extras: tuple[str, ...] = ()
    #: CSV columns of the site's own keys, before the v2 columns (``csv_cells`` fills them).
    csv_columns: tuple[str, ...] = ()

    def owns(self, namespace: str) -> bool:
        """Return True when records of *namespace* (their ``site``) are this site's."""
        return False

    def handles_url(self, url: str) -> bool:
        """Return True when *url* is an address of this site."""
        return False

    # --- addresses ---------------------------------------------------------------------

    def listing_url(self, url: str, *, mode: str) -> str:
        """Return the spelling of listing *url* (already canonical) that the crawl fetches.

        *mode* is ``full`` or ``incremental`` (newest first, where the site can say so).
        """
        return url

    def in_listing(self, url: str, seed: str) -> bool:
        """Return True when *url* is a page of the listing that starts at *seed*.

        Generic: the same host, a path under the seed's, and every query parameter
        of the seed but the paging ones.
        """
        page, start = urlsplit(url), urlsplit(seed)
        if (page.scheme, page.netloc) != (start.scheme, start.netloc):
            return False
        base = start.path.rstrip("/")
        if page.path.rstrip("/") != base and not page.path.startswith(base + "/"):
            return False
        have = dict(parse_qsl(page.query, keep_blank_values=True))
        wanted = parse_qsl(start.query, keep_blank_values=True)
        return all(
            have.get(key) == value for key, value in wanted if key not in self.paging_parameters
        )

    def is_review_url(self, url: str) -> bool:
        """Return True when *url* may be a review page of the site (any http(s) page may)."""
        return urlsplit(url).scheme in ("http", "https")

    # --- keys --------------------------------------------------------------------------

    def item_key(self, record: Record) -> str:
        """Return the key of *record*'s item within its site: its URL, else its type and name."""
        item = record.item
        if item.url:
            return item.url
        if item.name or item.type:
            return f"{item.type or ''}:{item.name or ''}"
        return record.url

    def author_key(self, record: Record) -> str | None:
        """Return the key of *record*'s author within its site (its URL, else its name).

        None means the site names its authors only by names that change (renames):
        the store then finds them by every name they were seen under.
        """
        author = record.author
        return author.url or author.name or ""

    def same_author(self, first_image: str | None, second_image: str | None) -> bool:
        """Whether two authors now sharing a name are one person (their images say so)."""
        return False

    def item_keys(self, text: str) -> list[str] | None:
        """Return the item keys *text* names in this site's own syntax, or None."""
        return None

    # --- the site's own keys -----------------------------------------------------------

    def stored_extra(self, record: Record) -> dict[str, Any] | None:
        """Return what of ``record.extra`` the archive keeps (JSON), or None."""
        return dict(record.extra) if record.extra else None

    def record_extra(
        self, record: Record, item_key: str, stored: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """Return ``extra`` for a record read back from the archive (its v2 fields set)."""
        return stored or None

    def observation_extra(self, record: Record) -> dict[str, Any] | None:
        """Return what of ``record.extra`` each capture (observation) keeps, or None."""
        return self.stored_extra(record)

    def csv_cells(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return the cells of ``csv_columns`` for contract record *record* (a dict)."""
        return {}

    def history_keys(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """Return the site's own keys of one history entry (printed before the v2 keys)."""
        return {}
