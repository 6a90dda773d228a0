"""``reviews stats``: counts of what the archive holds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scraper.cli._common import add_command, add_db_option


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "stats",
        help="count reviews by entry, tag, score and month",
        description="Print how many reviews, entries, users, observations and raw pages "
        "the archive holds and its size, then reviews by entry, tag, score and month: "
        "tables on a terminal; one JSON object (as with --json) when stdout is not a "
        "terminal (a pipe or a file), so scripts get the same output either way.",
        example="reviews stats --json | jq .totals",
    )
    add_db_option(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object even on a terminal (the default when not a terminal)",
    )
    parser.set_defaults(run=run)


def _print(stats: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    totals = Table("total", "count", title="archive")
    for name, value in stats["totals"].items():
        totals.add_row(name.replace("_", " "), "" if value is None else f"{value:,}")
    console.print(totals)
    for key, title in (
        ("by_entry", "entry"),
        ("by_tag", "tag"),
        ("by_score", "score"),
        ("by_month", "month"),
    ):
        table = Table(title, "reviews", title=f"reviews by {title}")
        for name, count in stats[key]:
            table.add_row(str(name), f"{count:,}")
        console.print(table)


def run(args: argparse.Namespace) -> int:
    from scraper.api import Archive

    with Archive(args.db) as archive:
        stats = archive.stats()
    if args.json or not sys.stdout.isatty():
        print(json.dumps(stats, ensure_ascii=False))
    else:
        _print(stats)
    return 0
