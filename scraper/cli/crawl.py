"""``reviews crawl URL...``: crawl review listings and their "More Reviews" chains.

A thin shell over ``scraper.api.Archive.crawl``: options in, one call, a summary out. On a
terminal a progress bar (rich) shows the frontier; otherwise one plain line per
URL goes to stdout, so logs stay readable. Exit codes: 0 done, 3 done but some
pages failed, 4 stopped by the site, 5 another crawler holds the SQLite file,
2 usage, 1 failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, add_db_option, number, stop_signals, warn
from scraper.config import CrawlSettings
from scraper.errors import UsageError

if TYPE_CHECKING:
    from scraper.api import CrawlProgress, CrawlReport

__all__ = ["register", "run"]

_DEFAULTS = CrawlSettings()


def register(subparsers: Any) -> None:
    """Add the ``crawl`` sub-command."""
    parser = add_command(
        subparsers,
        "crawl",
        help="crawl review listings and their 'More Reviews' chains, politely and resumably",
        description="Start from seed URLs (entry reviews, recent reviews, a user's reviews, "
        "single reviews), follow each listing's 'More Reviews' chain, and store every page "
        "with its records. robots.txt is obeyed, one request at a time goes to a host and "
        "request starts are at least --delay seconds apart as the site sees them "
        "(robots.txt Crawl-delay wins when larger), Retry-After is honoured, "
        "and pages already stored are asked for conditionally (ETag / Last-Modified). "
        "The frontier lives in the database: run the same command again (or --resume) "
        "after an interruption to continue. Several processes may share one PostgreSQL "
        "database; a SQLite file takes one crawling process (a second exits with code 5). "
        "Exit codes: 0 done, 3 some pages failed, 4 stopped by the site, 5 another crawler "
        "is using the SQLite file.",
        example="reviews crawl 'https://myanimelist.net/anime/1/Cowboy_Bebop/reviews' "
        "--max-pages 50",
    )
    parser.add_argument("urls", nargs="*", metavar="URL", help="a seed URL (http or https)")
    add_db_option(parser)
    parser.add_argument(
        "--delay",
        type=number(float, "seconds", zero=True),
        default=_DEFAULTS.delay,
        metavar="S",
        help="minimum seconds between two request starts to one host, one request at a "
        f"time (default {_DEFAULTS.delay:g})",
    )
    parser.add_argument(
        "--max-pages",
        type=number(int, "pages"),
        metavar="N",
        help="stop after N URLs (the rest stays queued)",
    )
    parser.add_argument(
        "--max-time",
        type=number(float, "seconds"),
        metavar="S",
        help="stop starting new pages after S seconds (the rest stays queued)",
    )
    parser.add_argument(
        "--user-agent",
        metavar="UA",
        help="identify as UA (name your tool and a contact URL; default: review-archiver's)",
    )
    parser.add_argument(
        "--concurrency",
        type=number(int, "workers"),
        default=_DEFAULTS.concurrency,
        metavar="N",
        help="worker threads in this process (the per-host delay still holds; default 1)",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="read listings newest first and stop each chain at the first page holding a "
        "review already stored",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted crawl (without URLs: the newest unfinished one)",
    )
    resume.add_argument(
        "--restart",
        action="store_true",
        help="forget the unfinished frontier of these URLs and start over",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Crawl ``args.urls``; return 0, 3 when some pages failed (4 and 5 come as errors)."""
    from scraper.api import Archive

    settings = _DEFAULTS._replace(
        delay=args.delay,
        concurrency=args.concurrency,
        max_pages=args.max_pages,
        max_time=args.max_time,
        mode="incremental" if args.incremental else "full",
        resume=not args.restart,
    )
    if not args.urls and not args.resume:
        raise UsageError("give URLs to crawl")
    with Archive(args.db) as archive, stop_signals(), _progress_display() as show:
        report = archive.crawl(
            args.urls,
            settings=settings,
            user_agent=args.user_agent,
            progress=show,
            resume_last=not args.urls,
            resumed=_resuming,
        )
    print(summary(report))
    if report.errors:
        for line in report.failures:
            warn("crawl", f"failed: {line}")
        warn("crawl", f"{report.errors} page(s) failed: see the fetch_errors table")
        return ExitCode.PAGE_ERRORS
    return ExitCode.OK


def _resuming(seeds: Sequence[str]) -> None:
    print(f"resuming the crawl of {len(seeds)} seed URL(s)", file=sys.stderr)


def summary(report: CrawlReport) -> str:
    """Return the end-of-crawl summary (one paragraph)."""
    text = (
        f"crawl run {report.run_id} {report.outcome} in {report.elapsed:.1f} s: "
        f"{report.pages} pages ({report.not_modified} not modified), reviews "
        f"{report.reviews_new} new / {report.reviews_updated} updated / "
        f"{report.reviews_unchanged} unchanged, {report.robots_skipped} skipped by "
        f"robots.txt, {report.errors} errors"
    )
    if report.message:
        text += f"; {report.message}"
    if report.open_urls:
        text += f"; {report.open_urls} URLs left: run the same command again to continue"
    return text


@contextmanager
def _progress_display() -> Iterator[Callable[[CrawlProgress], None]]:
    """Yield the progress callback: a rich bar on a terminal, plain lines otherwise."""
    if not sys.stderr.isatty():
        yield _log_line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("crawling", total=None)

        def show(event: CrawlProgress) -> None:
            counts = event.frontier
            bar.update(
                task,
                total=counts.total,
                completed=counts.total - counts.open,
                description=f"{event.figures.pages} pages, {event.figures.reviews_new} new reviews",
            )

        yield show


def _log_line(event: CrawlProgress) -> None:
    detail = f": {event.message}" if event.message else ""
    print(f"{event.event} {event.url}{detail}", flush=True)
