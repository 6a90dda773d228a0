"""The crawler: a persistent frontier shared by every process that uses the database,
a per-host budget kept in the database, and the loop that fetches, stores and follows
"More Reviews" chains. ``crawl`` is the one entry point.

Importing this package loads SQLAlchemy: the CLI and ``scraper.api`` import it inside
the functions that crawl.
"""

from __future__ import annotations

from scraper.crawl._archive import Archived, archive_pages
from scraper.crawl._budget import DatabaseRobotsStore, DatabaseThrottle
from scraper.crawl._crawl import LastCrawl, crawl, last_unfinished_crawl
from scraper.crawl._frontier import Frontier, FrontierCounts, FrontierItem
from scraper.crawl._loop import CrawlProgress, CrawlReport
from scraper.crawl._seeds import MODES, crawl_key, normalise
from scraper.crawl._stored import stale_pages

__all__ = [
    "MODES",
    "Archived",
    "CrawlProgress",
    "CrawlReport",
    "DatabaseRobotsStore",
    "DatabaseThrottle",
    "Frontier",
    "FrontierCounts",
    "FrontierItem",
    "LastCrawl",
    "archive_pages",
    "crawl",
    "crawl_key",
    "last_unfinished_crawl",
    "normalise",
    "stale_pages",
]
