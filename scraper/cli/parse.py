"""``reviews parse``: read saved pages and print their review records.

Pure and fast: no database, no network, no heavy imports. Pages that hold no
reviews (not a review page, a block page, an unrecognised layout) are named on
stderr and the rest still run; the exit code then says 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, warn
from scraper.errors import ParseError, UsageError
from scraper.records import PageKind

__all__ = ["expand_paths", "register", "run"]

_KIND_PHRASES = {
    PageKind.NOT_REVIEW_PAGE: "not a review page",
    PageKind.BLOCKED: "a block/captcha page, not content",
    PageKind.UNRECOGNISED: "looks like a review page, but its layout is not recognised",
}


def register(subparsers: Any) -> None:
    """Add the ``parse`` sub-command."""
    parser = add_command(
        subparsers,
        "parse",
        help="print the review records of saved pages (JSON Lines)",
        description="Parse saved review pages (files, or folders of *.html) and print one "
        "record per review on stdout. Pages without reviews are named on stderr and make "
        "the exit code 3; the other pages are still printed.",
        example="reviews parse fixtures/mal/ --format jsonl > records.jsonl",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a saved page or a folder")
    parser.add_argument(
        "--url",
        default=None,
        help="the address the page(s) were served from (default: each page's canonical link)",
    )
    parser.add_argument(
        "--format",
        choices=("jsonl", "json"),
        default="jsonl",
        help="jsonl: one record per line (default); json: one array of all records",
    )
    parser.set_defaults(run=run)


def expand_paths(paths: list[str]) -> list[Path]:
    """Return the files to parse: each file as given, each folder's ``*.html`` sorted.

    Raises UsageError naming the first path that is missing, unreadable, or a
    folder without pages.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            pages = sorted(child for child in path.glob("*.html") if child.is_file())
            if not pages:
                raise UsageError(f"{raw}: folder holds no *.html page")
            files.extend(pages)
        elif path.is_file():
            if not os.access(path, os.R_OK):
                raise UsageError(f"{raw}: file is not readable")
            files.append(path)
        elif path.exists():
            raise UsageError(f"{raw}: not a file or folder")
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return files


def _page_records(path: Path, url: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return (records, problem) for one page; problem names what went wrong, if anything."""
    from scraper.api import parse_page

    try:
        result = parse_page(path.read_bytes(), url)
    except ParseError as error:
        return [], f"unreadable page: {error.message}"
    records = [review.to_dict() for review in result.reviews]
    if not result.kind.has_reviews:
        return records, f"{_KIND_PHRASES.get(result.kind, result.kind.value)} ({result.problem})"
    return records, result.problem


def run(args: argparse.Namespace) -> int:
    """Print the records of every page; return 0, or 3 when some page held none."""
    files = expand_paths(args.paths)
    if hasattr(sys.stdout, "reconfigure"):
        # Records are UTF-8 by contract, whatever the terminal's locale says.
        sys.stdout.reconfigure(encoding="utf-8")
    code = ExitCode.OK
    collected: list[dict[str, Any]] = []
    for path in files:
        try:
            records, problem = _page_records(path, args.url)
        except OSError as error:
            # Checked readable a moment ago; report it and keep going.
            warn("parse", f"{path}: cannot read: {error.strerror or error}")
            code = ExitCode.USAGE
            continue
        if problem is not None:
            warn("parse", f"{path}: {problem}")
            if code == ExitCode.OK:
                code = ExitCode.PAGE_ERRORS
        if args.format == "json":
            collected.extend(records)
            continue
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    if args.format == "json":
        sys.stdout.write(json.dumps(collected, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()
    return int(code)
