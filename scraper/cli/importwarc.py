"""``reviews import-warc``: ingest the review pages held in WARC files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, add_db_option, warn


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "import-warc",
        help="ingest review pages from WARC files (ours, wget's, browsertrix's)",
        description="Read every response record of a review page in the WARC files and "
        "store it as if just fetched at its WARC-Date: raw page kept, parsed, history "
        "updated. Other records (images, robots.txt, ...) are skipped; importing a file "
        "twice adds nothing.",
        example="reviews import-warc crawl-00000.warc.gz crawl-00001.warc.gz",
    )
    add_db_option(parser)
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path, help="WARC files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scraper import api

    report = api.import_warc(args.db, args.files)
    for error in report.errors:
        warn("import-warc", error)
    warn(
        "import-warc",
        f"{report.pages} page(s) stored with {report.reviews} review(s); "
        f"{report.already_stored} already stored, {report.not_review_pages} other record(s) "
        "skipped",
    )
    return ExitCode.PAGE_ERRORS if report.errors else ExitCode.OK
