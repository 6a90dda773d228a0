"""``reviews archive URL...``: fetch pages once, politely, and keep them in the archive.

An archive is a crawl of the URLs given that follows no link: each URL goes the
crawl's way (robots.txt, the per-host delay shared with every crawler, retries,
size cap, refusals and block pages) and is stored raw with its parsed records. One
line per URL on stdout says what was stored; failures are named on stderr, the
other URLs still run, and the exit code is then 3. A host that keeps refusing us,
or serves block pages, stops the run (exit code 4), as it stops a crawl.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode
from scraper.cli._common import (
    add_command,
    add_db_option,
    http_url,
    number,
    review_counts,
    warn,
)

if TYPE_CHECKING:
    from scraper.api import Archived

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``archive`` sub-command."""
    parser = add_command(
        subparsers,
        "archive",
        help="fetch review pages once, politely, and store them with their records",
        description="Fetch each URL once (robots.txt obeyed, at most one request per "
        "--delay seconds to a host, retries with backoff, Retry-After honoured), store "
        "the raw page and its review records, and print what was stored. A page archived "
        "before is asked for conditionally (ETag / Last-Modified): a 304 stores nothing "
        "again. A page that fails to parse is still stored raw. The run is recorded in the "
        "history (reviews runs). Failures are named on stderr and make the "
        "exit code 3; the other URLs still run. A host that keeps refusing (403/429) "
        "or serves block pages stops the run with exit code 4, as in reviews crawl.",
        example="reviews archive 'https://myanimelist.net/anime/1/Cowboy_Bebop/reviews'",
    )
    parser.add_argument(
        "urls", nargs="+", metavar="URL", type=http_url, help="an http(s) page to archive"
    )
    add_db_option(parser)
    parser.add_argument(
        "--delay",
        type=number(float, "seconds", zero=True),
        default=None,
        metavar="S",
        help="minimum seconds between requests to one host (default 2; "
        "robots.txt Crawl-delay wins when larger)",
    )
    parser.add_argument(
        "--user-agent",
        default=None,
        metavar="UA",
        help="identify as UA (name your tool and a contact URL; default: review-archiver's)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Archive ``args.urls``; return 0, or 3 when any URL failed."""
    from scraper.api import Archive

    with Archive(args.db) as archive:
        return _show(archive.archive(args.urls, delay=args.delay, user_agent=args.user_agent))


def _show(items: Iterable[Archived]) -> int:
    """Print what each URL gave; return 0, or 3 when any URL failed."""
    failed = handled = 0
    for item in items:
        handled += 1
        report = item.report
        if item.unchanged_since is not None:
            print(f"{item.url}: not modified since raw page {item.unchanged_since}", flush=True)
            continue
        if report is None:
            failed += 1
            warn("archive", f"error: {item.error}")
            continue
        kind = report.page_kind.value if report.page_kind is not None else "unreadable"
        reviews = len(report.result.reviews) if report.result is not None else 0
        print(
            f"{item.url}: stored raw page {report.raw_page_id} ({kind}), {reviews} reviews: "
            + review_counts(report),
            flush=True,
        )
        if item.error is not None:
            failed += 1
            warn("archive", f"error: {item.url}: stored raw only: {item.error.message}")
    if failed:
        warn("archive", f"{failed} of {handled} URLs failed")
    return ExitCode.PAGE_ERRORS if failed else ExitCode.OK
