"""``reviews db upgrade`` and ``reviews db info``: the database itself.

Every command creates and migrates its database on first use; ``db upgrade`` does
it on purpose (before a deployment, say) and ``db info`` shows where things stand.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, add_db_option

if TYPE_CHECKING:
    from scraper.api import SchemaState

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``db`` sub-command and its ``upgrade`` / ``info`` actions."""
    parser = add_command(
        subparsers,
        "db",
        help="create or migrate the database, or show its state",
        description="upgrade: create the database if needed and migrate it to the newest "
        "schema. info: show the database, its schema revision and the rows per table.",
        example="reviews db upgrade --db postgresql+psycopg://me@localhost/reviews\n"
        "reviews db info --db reviews.db",
    )
    parser.add_argument("action", choices=["upgrade", "info"], help="what to do")
    add_db_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``db upgrade`` or ``db info``; return 0."""
    from scraper.api import Archive

    with Archive(args.db) as archive:
        if args.action == "upgrade":
            return _upgraded(archive.upgrade())
        where, state, counts = archive.info()
    print(f"database: {where}")
    current = ", ".join(state.current) or "none (empty database)"
    note = "" if state.up_to_date else " (out of date: run `reviews db upgrade`)"
    print(f"schema revision: {current}, newest {state.head}{note}")
    for table, count in counts.items():
        print(f"  {table:20} {count}")
    return ExitCode.OK


def _upgraded(before: SchemaState) -> int:
    if before.up_to_date:
        print(f"already at schema revision {before.head}")
    else:
        was = ", ".join(before.current) or "empty"
        print(f"migrated from {was} to schema revision {before.head}")
    return ExitCode.OK
