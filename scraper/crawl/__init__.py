"""The crawler: a persistent frontier shared by every process that uses the database,
a per-host budget kept in the database, and the loop that fetches, stores and follows
"More Reviews" chains. ``crawl`` is the entry point; ``archive_pages`` is the same
crawl over a list of URLs, following no link.

One URL, from ``reviews crawl`` to its review row:

1. ``cli.crawl.run`` → ``api.Archive.crawl`` → ``crawl`` (``_crawl.py``): seeds normalised
   (``_seeds.normalise``) and put in the ``Frontier`` (``_frontier.py``);
2. ``CrawlLoop.run`` (``_loop.py``): each worker leases the URL (``Frontier.lease``)
   with its stored validators (``_stored.load_many_validators``);
3. ``PageHandler.handle`` (``_page.py``): ``Fetcher.fetch`` asks for it, conditionally,
   within the shared host budget and robots.txt (``_budget.py``);
4. ``store.ingest.parse_fetched`` → ``sites.parse_page``: the page's records (a full
   crawl: ``sites.look_at`` first, whose ``next_link`` gives the next page and "no
   block page" before the next request; the full parse then runs in ``finish``);
5. ``PageHandler._store`` (a full crawl: ``finish``, in the worker's ``StoreBehind``
   thread, while the next page is fetched) → ``store.ingest.ingest_page`` →
   ``store.upsert.store_records``: the raw page, the ``reviews`` rows and their
   observations, in one transaction;
6. ``PageHandler._complete``: validators saved, the URL marked done, its next page
   queued (``_seeds.follow``); ``CrawlLoop._tally`` counts it in ``crawl_runs``.

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
