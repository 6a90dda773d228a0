"""``reviews export``: the archive out as JSON Lines, CSV or WARC files."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from scraper.cli._common import add_command, add_db_option, warn
from scraper.cli.query import add_filter_options, query_from_args, utf8_stdout
from scraper.errors import UsageError

if TYPE_CHECKING:
    from scraper.api import Archive, ReviewQuery

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_size(text: str) -> int:
    """Read ``500M``, ``1G``, ``200000`` as bytes; raises UsageError naming --max-size."""
    found = _SIZE.fullmatch(text.strip())
    size = int(float(found.group(1)) * _UNITS[found.group(2).lower()]) if found else 0
    if size < 1:
        raise UsageError(f"--max-size: {text!r} is not a size (e.g. 500M, 1G)")
    return size


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "export",
        help="write reviews as JSON Lines, CSV or Parquet, or raw pages as WARC",
        description="Export the archive: contract records (jsonl), a spreadsheet (csv), "
        "a typed table for pandas/polars/DuckDB (parquet: nested fields as structs and "
        "lists, dates as UTC timestamps, integers stay integers), "
        "or the stored raw pages as WARC files (warc: request/response pairs, revisits "
        "for repeated bodies, a new file at --max-size). Filters select reviews; for "
        "WARC, the raw pages those reviews were seen on.",
        example="reviews export --format jsonl --history --out reviews.jsonl",
    )
    add_db_option(parser)
    parser.add_argument("--format", choices=("jsonl", "csv", "parquet", "warc"), default="jsonl")
    parser.add_argument(
        "--out", metavar="FILE", help="output file (default: stdout; parquet, warc: needed)"
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="jsonl, parquet: add every capture as 'observations' (what it said, its tags, "
        "sub-scores and the raw page it was read from)",
    )
    parser.add_argument(
        "--bom", action="store_true", help="csv: start with a byte-order mark (for Excel)"
    )
    parser.add_argument(
        "--max-size", metavar="SIZE", default="1G", help="warc: start a new file past SIZE"
    )
    parser.add_argument(
        "--cdxj", action="store_true", help="warc: write a CDXJ index beside each file (pywb)"
    )
    add_filter_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scraper.api import Archive

    if args.cdxj and args.format != "warc":
        raise UsageError("--cdxj needs --format warc (a CDXJ index points into WARC files)")
    if args.format == "warc" and args.out is None:
        raise UsageError("--format warc needs --out FILE (WARC files are binary and roll over)")
    if args.format == "warc" and args.history:
        raise UsageError("--history needs --format jsonl or parquet")
    query = query_from_args(args)
    max_size = parse_size(args.max_size) if args.format == "warc" else None
    with Archive(args.db) as archive:
        if args.format != "warc":
            count = _records(archive, args, query)
            warn("export", f"{count} review(s) written")
            return 0
        report = archive.export_warc(args.out, query=query, max_size=max_size, cdxj=args.cdxj)
    files = ", ".join(str(path) for path in report.files)
    warn(
        "export",
        f"{report.responses} response(s), {report.revisits} revisit(s), "
        f"{report.resources} resource(s) written to {files}",
    )
    for index in report.indexes:
        warn("export", f"index {index}")
    return 0


def _records(archive: Archive, args: argparse.Namespace, query: ReviewQuery) -> int:
    """Write the records to --out, else to stdout (as UTF-8); return how many."""
    options = {"format": args.format, "query": query, "history": args.history, "bom": args.bom}
    if args.out is not None:
        return archive.export(args.out, **options)
    out = utf8_stdout()
    try:
        return archive.export(out, **options)
    finally:
        out.flush()
        out.detach()
