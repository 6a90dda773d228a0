"""Small helpers shared by the command modules: common options and output."""

from __future__ import annotations

import argparse
import sys
from typing import Any


class HelpFormatter(argparse.HelpFormatter):
    """Wrap prose paragraphs to the terminal; keep indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines[1:]):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--db`` (SQLite path or SQLAlchemy URL; default $REVIEWS_DB or ./reviews.db)."""
    parser.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        default=None,
        help="SQLite file or database URL (postgresql+psycopg://...); "
        "default: $REVIEWS_DB or ./reviews.db",
    )


def add_command(
    subparsers: Any, name: str, *, help: str, description: str, example: str
) -> argparse.ArgumentParser:
    """Add a sub-command whose help ends with an ``Example:`` block."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"Example:\n  {example}",
        formatter_class=HelpFormatter,
    )
    return parser


def warn(command: str, message: str) -> None:
    """Print one line on stderr, prefixed with the command's name."""
    print(f"reviews {command}: {message}", file=sys.stderr)
