"""``reviews import-warc``: ingest the review pages held in WARC files."""

from __future__ import annotations

import argparse
from typing import Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, add_db_option, regular_file, stop_signals, warn


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "import-warc",
        help="ingest review pages from WARC files (ours, wget's, browsertrix's)",
        description="Read every record of the WARC files, checking each one (its "
        "Content-Length against the bytes there, its block and payload digests when it "
        "has them): a truncated or damaged record is named (file, offset, record id) and "
        "skipped, the rest imported. Each 200 HTML response that a site parser reads as a "
        "review page is stored as if just fetched at its WARC-Date: raw page kept, parsed, "
        "history updated. Other responses (other statuses, redirects, robots.txt, "
        "non-HTML, pages that hold no reviews) are counted as skipped, by reason, and "
        "not stored. Importing a file twice adds nothing. Exit code 3 when a record was "
        "damaged or a review page did not parse.",
        example="reviews import-warc crawl-00000.warc.gz crawl-00001.warc.gz",
    )
    add_db_option(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", type=regular_file, help="WARC files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scraper.api import Archive

    with stop_signals(), Archive(args.db) as archive:
        report = archive.import_warc(args.files)
    for line in report.damaged:
        warn("import-warc", line)
    for error in report.errors:
        warn("import-warc", error)
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
    warn(
        "import-warc",
        f"{report.pages} page(s) stored with {report.reviews} review(s); "
        f"{report.already_stored} already stored; "
        f"{sum(report.skipped.values())} response(s) skipped ({skipped or 'none'})"
        + (f"; {len(report.damaged)} damaged record(s) skipped" if report.damaged else ""),
    )
    return ExitCode.PAGE_ERRORS if report.failed else ExitCode.OK
