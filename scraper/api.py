"""The Python API of review-archiver: what the ``reviews`` command calls.

Each function here is one job a user can ask for. They wire the rooms together
(fetch → sites → store, crawl, export) and hold no logic of their own.

Imports of the database and HTTP stacks happen inside the functions that need
them, on purpose: ``parse_page`` / ``reviews parse`` must start fast, without
SQLAlchemy or httpx loaded (a measured goal of the project).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scraper.config import CrawlSettings, FetchSettings, database_url
from scraper.errors import UsageError

__all__ = [
    "Archived",
    "archive",
    "parse_page",
]

# --- parsing (no network, no database) ------------------------------------------

from scraper.sites import parse_page  # re-exported

# --- archive: store, import, reparse, archive URLs --------------------------------

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scraper.errors import ScraperError
    from scraper.store.ingest import IngestReport


@dataclass(frozen=True, slots=True)
class Archived:
    """One URL handled by ``archive``.

    ``report`` is what was stored (None when the page could not be fetched);
    ``error`` the fetch error, or the ParseError of a page stored raw only.
    """

    url: str
    report: IngestReport | None = None
    error: ScraperError | None = None


def archive(
    urls: Iterable[str],
    *,
    db: str | None = None,
    delay: float | None = None,
    user_agent: str | None = None,
    settings: FetchSettings | None = None,
) -> Iterator[Archived]:
    """Fetch each URL once, politely, and store it; yield one Archived per URL, in order.

    Repeated URLs (same canonical form) are fetched once. A fetch failure (bad URL,
    robots.txt, network, non-HTML, oversized) is recorded in ``fetch_errors`` and
    yielded; the next URL still runs. A page that fails to parse is stored raw and
    yielded with its ParseError. Raises StoreError when the database is unusable
    and UsageError for a dishonest user agent or a negative delay.
    """
    from scraper.errors import FetchError
    from scraper.fetch import Fetcher, canonicalize, honest_user_agent
    from scraper.store.engine import open_engine
    from scraper.store.ingest import ingest_page, record_fetch_error

    settings = settings or FetchSettings()
    if user_agent is not None:
        settings = replace(settings, user_agent=honest_user_agent(user_agent))
    pace = CrawlSettings().delay if delay is None else delay
    if pace < 0:
        raise UsageError(f"--delay must be 0 or more seconds, not {pace:g}")
    engine = open_engine(database_url(db))
    seen: set[str] = set()
    try:
        with Fetcher(settings, delay=pace) as fetcher:
            for url in urls:
                try:
                    key = canonicalize(url)
                    if key in seen:
                        continue
                    seen.add(key)
                    page = fetcher.fetch(url)
                except FetchError as error:
                    record_fetch_error(engine, url, error)
                    yield Archived(url, error=error)
                    continue
                report = ingest_page(engine, page, source="http")
                yield Archived(url, report=report, error=report.error)
    finally:
        engine.dispose()


# --- crawl -----------------------------------------------------------------------

# --- jobs and schedules -----------------------------------------------------------

# --- query and export -------------------------------------------------------------
