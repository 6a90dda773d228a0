"""``reviews query``: find reviews in the archive by site, item, author, tag, rating, date, text."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from scraper.cli._common import add_command, add_db_option
from scraper.config import CliSettings

if TYPE_CHECKING:
    from scraper.api import ReviewQuery

#: Rows a terminal table shows when no --limit is given (a table is built in memory).
TABLE_ROWS = CliSettings().table_rows


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Add the review filters shared by ``query`` and ``export``."""
    group = parser.add_argument_group("filters (all optional, combined with AND)")
    group.add_argument(
        "--site", help="the reviews' site: a site's own name, or a host (example.com)"
    )
    group.add_argument(
        "--entry", help="part of the reviewed item's name, or its key in the site's own syntax"
    )
    group.add_argument("--user", help="reviewer name, current or former")
    group.add_argument(
        "--tag", action="append", default=[], help="tag label, e.g. recommended (repeatable)"
    )
    group.add_argument("--type", help="the reviewed item's type, as its site names it")
    group.add_argument("--min-score", metavar="N", help="lowest score (1-10)")
    group.add_argument("--max-score", metavar="N", help="highest score (1-10)")
    group.add_argument("--since", metavar="DATE", help="reviews from DATE (YYYY[-MM[-DD]])")
    group.add_argument("--until", metavar="DATE", help="reviews up to DATE, inclusive")
    group.add_argument(
        "--search", metavar="TEXT", help='full text: words all present, "quoted phrases" in order'
    )
    group.add_argument(
        "--sort",
        default="id",
        help="id, date, score, entry or user; a leading - reverses: --sort -date is "
        "newest first (default: id)",
    )
    group.add_argument("--limit", metavar="N", help="at most N reviews")


def query_from_args(args: argparse.Namespace) -> ReviewQuery:
    """Return the checked query for the parsed options; raises UsageError naming one."""
    from scraper.api import Archive

    return Archive.select(
        entry=args.entry,
        user=args.user,
        tags=args.tag,
        type=args.type,
        min_score=args.min_score,
        max_score=args.max_score,
        since=args.since,
        until=args.until,
        search=args.search,
        sort=args.sort,
        limit=args.limit,
        site=args.site,
    )


def utf8_stdout() -> io.TextIOWrapper:
    """Return stdout as UTF-8 text without newline translation (CSV writes CRLF itself)."""
    return io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "query",
        help="find reviews in the archive",
        description="Print the reviews matching the filters: a table on a terminal, "
        "JSON Lines (contract records) otherwise.",
        example='reviews query --entry "Cowboy Bebop" --tag recommended --search "space western"',
    )
    add_db_option(parser)
    parser.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        default=None,
        help="output format (default: table on a terminal, else jsonl)",
    )
    add_filter_options(parser)
    parser.set_defaults(run=run)


def _table(records: Iterable[dict[str, Any]], out: IO[str], shown: int) -> None:
    from scraper.cli._table import print_reviews

    def note(count: int) -> str:
        more = f"; showing the first {shown}, see --limit" if count == shown else ""
        return f"{count} review(s){more}"

    # As wide as the terminal: columns are dropped rather than squeezed (see _table).
    print_reviews(records, out, note)


def run(args: argparse.Namespace) -> int:
    from scraper.api import Archive

    query = query_from_args(args)
    format = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    if format == "table" and query.limit is None:
        from dataclasses import replace

        query = replace(query, limit=TABLE_ROWS)
    out = utf8_stdout()
    try:
        with Archive(args.db) as archive:
            if format == "table":
                _table(archive.query(query), out, TABLE_ROWS if args.limit is None else -1)
            else:
                archive.export(out, format=format, query=query)
    finally:
        out.flush()
        out.detach()
    return 0
