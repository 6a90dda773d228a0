"""``reviews sql``: one read-only SQL statement against the archive."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime
from typing import Any

from scraper.cli._common import add_command, add_db_option, number
from scraper.cli.query import utf8_stdout
from scraper.config import SQL_READ_ONLY_ROLE, SQL_TIMEOUT


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "sql",
        help="run one read-only SQL statement",
        description="Run one SQL query on a read-only connection (SQLite), or in a "
        f"read-only transaction as the read-only role {SQL_READ_ONLY_ROLE} (PostgreSQL): "
        "a write, COPY, NOTIFY, SET and functions that act on the server are refused, and "
        "a statement running past --timeout is stopped. Tables: reviews, "
        "entries, users, tags, review_tags, review_observations, raw_pages; the view "
        "reviews_view joins reviews with item names and author names.",
        example='reviews sql "SELECT item_name, count(*) FROM reviews_view GROUP BY 1"',
    )
    add_db_option(parser)
    parser.add_argument("statement", metavar="SQL", help="the statement (quote it)")
    parser.add_argument(
        "--format",
        choices=("table", "jsonl", "csv"),
        default=None,
        help="output format (default: table on a terminal, else jsonl)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=number(float, "seconds"),
        default=SQL_TIMEOUT,
        help=f"stop the statement after this long (default {SQL_TIMEOUT:g})",
    )
    parser.set_defaults(run=run)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return value


def run(args: argparse.Namespace) -> int:
    from scraper.api import Archive

    format = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    out = utf8_stdout()
    try:
        with (
            Archive(args.db) as archive,
            archive.sql(args.statement, timeout=args.timeout) as result,
        ):
            if format == "table":
                from rich.console import Console
                from rich.table import Table

                table = Table(*result.columns)
                for row in result.rows:
                    table.add_row(*("" if v is None else str(_plain(v)) for v in row))
                Console(file=out).print(table)
            elif format == "csv":
                writer = csv.writer(out)
                writer.writerow(result.columns)
                writer.writerows([_plain(v) for v in row] for row in result.rows)
            else:
                for row in result.rows:
                    record = {k: _plain(v) for k, v in zip(result.columns, row, strict=True)}
                    out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    finally:
        out.flush()
        out.detach()
    return 0
