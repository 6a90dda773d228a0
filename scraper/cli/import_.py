"""``reviews import PATH...`` and ``reviews reparse``: saved pages into the archive.

``import`` stores each file as a raw page with its records, exactly as ``archive``
stores a fetched page; ``reparse`` reads every stored raw page again with the
current parser (no network). One line per page on stdout; pages that fail to parse
are still stored, named on stderr, and make the exit code 3.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from contextlib import closing
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode
from scraper.cli._common import (
    add_command,
    add_db_option,
    capped_workers,
    number,
    review_counts,
    stop_signals,
    warn,
)

if TYPE_CHECKING:
    from scraper.api import Imported

__all__ = ["register", "run_import", "run_reparse"]


def register(subparsers: Any) -> None:
    """Add the ``import`` and ``reparse`` sub-commands."""
    from scraper.api import capture_time_rules

    time_from, time_rules = capture_time_rules()
    parser = add_command(
        subparsers,
        "import",
        help="store saved pages (files or folders of *.html) in the archive",
        description="Store saved review pages as raw pages with their review records, as "
        "if they had been fetched. URL: --url, else the one the saving tool noted in the "
        "page (SingleFile, Save Page WE, a browser's 'saved from url'), else the page's "
        f"canonical link. {time_rules} The same file with the same capture time is stored "
        "once, however many times it is imported. A page that fails to parse is still "
        "stored raw; it is named on stderr and makes the exit code 3.",
        example="reviews import saved/ --fetched-at-from name --db reviews.db",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a saved page or a folder")
    parser.add_argument("--url", default=None, help="the URL the page(s) were saved from")
    parser.add_argument(
        "--fetched-at",
        default=None,
        metavar="TIME",
        help="when the page(s) were captured, ISO 8601 (no zone means UTC)",
    )
    parser.add_argument(
        "--fetched-at-from",
        choices=time_from,
        default="file",
        help="where capture times come from when --fetched-at is not given: what the "
        "file says, else its modification time (file, the default); the date in the "
        "file name (name); the modification time only (mtime)",
    )
    _jobs_option(
        parser,
        "processes in all (default: one per CPU from 24 files on), each parsing and "
        "writing its files: on SQLite a batch at a time in turn, on PostgreSQL at once",
    )
    add_db_option(parser)
    parser.set_defaults(run=run_import)

    parser = add_command(
        subparsers,
        "reparse",
        help="parse every stored raw page again with the current parser",
        description="Re-run the current parser over the raw pages in the archive (no "
        "network) and update the records; running it twice changes nothing the second "
        "time. Pages the current parser version read already are skipped unless --all "
        "(a raw page's body never changes); a page whose records come out as stored is "
        "read but not written. Prints what changed; exit code 3 when some "
        "pages now fail to parse.",
        example="reviews reparse --all --jobs 2 --db reviews.db",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        dest="everything",
        help="reparse every page, also those the current parser version read",
    )
    _jobs_option(
        parser,
        "processes in all: each reads and parses, one writes what changed (default: one per CPU)",
    )
    add_db_option(parser)
    parser.set_defaults(run=run_reparse)


def _jobs_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--jobs", type=number(int, "workers"), default=None, metavar="N", help=text)


def run_import(args: argparse.Namespace) -> int:
    """Import ``args.paths``; return 0, or 3 when any page failed."""
    from scraper.api import Archive

    with stop_signals(), Archive(args.db) as archive:
        items = archive.import_files(
            args.paths,
            url=args.url,
            fetched_at=args.fetched_at,
            fetched_at_from=args.fetched_at_from,
            # None: the api picks one per CPU once it knows how many files there are.
            workers=None if args.jobs is None else capped_workers("import", args.jobs),
        )
        with closing(items):  # stopped early (a signal): its workers end here
            return _show(items)


def _show(items: Iterable[Imported]) -> int:
    """Print what each file gave and a summary; return 0, or 3 when any page failed."""
    from scraper.api import copied_folders

    pages = failed = new = updated = unchanged = again = 0
    dated_by_mtime: list[Imported] = []
    for item in items:
        if item.time_source == "mtime":
            dated_by_mtime.append(item)
        report = item.report
        if report is None:  # not stored: unreadable, or refused by the database
            failed += 1
            warn("import", f"error: {item.error}")
            continue
        if report.already_stored:
            again += 1
            print(f"{item.path}: already stored as raw page {report.raw_page_id}", flush=True)
        else:
            pages += 1
            new += report.reviews_new
            updated += report.reviews_updated
            unchanged += report.reviews_unchanged
            kind = report.page_kind.value if report.page_kind is not None else "unreadable"
            print(
                f"{item.path}: raw page {report.raw_page_id} ({kind}, {item.url}): "
                + review_counts(report),
                flush=True,
            )
        if report.error is not None:
            failed += 1
            warn("import", f"{item.path}: stored raw, but: {report.error}")
    for folder, count in copied_folders(dated_by_mtime):
        warn(
            "import",
            f"warning: the {count} files of {folder} that do not say when they were "
            "captured all carry nearly the same modification time, as copies do: their "
            "capture times are probably the copy's (give --fetched-at or "
            "--fetched-at-from name)",
        )
    print(
        f"stored {pages} pages: {new} new, {updated} updated, {unchanged} unchanged reviews"
        + (f"; {again} already stored" if again else "")
        + (f"; {failed} pages failed" if failed else "")
    )
    return ExitCode.PAGE_ERRORS if failed else ExitCode.OK


def run_reparse(args: argparse.Namespace) -> int:
    """Reparse the archive; return 0, or 3 when pages fail to parse or to be reparsed."""
    from scraper.api import Archive

    with stop_signals(), Archive(args.db) as archive:
        report = archive.reparse(
            everything=args.everything, workers=capped_workers("reparse", args.jobs)
        )
    print(
        f"reparsed {report.pages} pages: {report.pages_changed} changed, "
        f"{report.reviews_changed} reviews new or changed, "
        f"{report.new_errors} new errors, {report.fixed_errors} fixed"
        + (
            f"; {report.skipped} pages skipped (read by this parser version already; "
            "--all reads them too)"
            if report.skipped
            else ""
        )
    )
    for failure in report.failed:
        warn("reparse", f"left as it was: {failure}")
    if report.new_errors:
        warn("reparse", f"{report.new_errors} pages no longer parse: see raw_pages.parse_error")
    return ExitCode.PAGE_ERRORS if report.new_errors or report.failed else ExitCode.OK
