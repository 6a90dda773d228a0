"""``reviews parse``: read saved pages and print their review records.

Pure and fast: no database, no network, no heavy imports. Pages that hold no
reviews (not a review page, a block page, an unrecognised layout) are named on
stderr and the rest still run; the exit code then says 3.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command, capped_workers, warning_line
from scraper.cli._inturn import Chunk, Frame, can_write_in_turn, write_in_turn
from scraper.config import CliSettings
from scraper.errors import ParseError, UsageError
from scraper.inputs import check_page_url, expand_paths
from scraper.jsontext import record_bytes
from scraper.records import PageKind

if TYPE_CHECKING:
    from scraper.records import Record

__all__ = ["record_json", "register", "run"]

_SETTINGS = CliSettings()

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
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: one per CPU from 24 files on; 1: none)",
    )
    parser.set_defaults(run=run)


class _Trouble(enum.IntFlag):
    """What a chunk met (``_inturn.Chunk.flags``): a file that could not be read; a page
    that held no reviews or a broken one."""

    UNREADABLE = enum.auto()
    PAGE = enum.auto()


def record_json(review: Record) -> bytes:
    """Return one contract record as JSON in UTF-8: what ``json.dumps(review.to_dict(),
    ensure_ascii=False).encode()`` returns, faster (see ``scraper.jsontext``)."""
    return record_bytes(review.to_dict())


def _parse_file(path: str, url: str | None) -> Chunk:
    """Parse one saved page: its records as lines of JSON (UTF-8) and its warning."""
    from scraper.api import parse_page

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        # Checked readable a moment ago; report it and keep going.
        reason = error.strerror or error
        return Chunk(
            [], warning_line("parse", f"{path}: cannot read: {reason}"), _Trouble.UNREADABLE
        )
    records: list[bytes] = []
    try:
        result = parse_page(data, url)
    except ParseError as error:  # a parser bug met on the page is one too (parser_bug)
        problem: str | None = f"unreadable page: {error.message}"
    else:
        records = [record_json(review) for review in result.reviews]
        problem = result.problem
        if not result.kind.has_reviews and not problem:
            problem = _KIND_PHRASES.get(result.kind, result.kind.value)
    if problem is None:
        return Chunk(records)
    return Chunk(records, warning_line("parse", f"{path}: {problem}"), _Trouble.PAGE)


def _parse_chunk(work: Sequence[str], url: str | None, number: int) -> Chunk:
    """Parse chunk *number* of *work* (``CliSettings.parse_chunk`` files)."""
    size = _SETTINGS.parse_chunk
    pages = [_parse_file(path, url) for path in work[number * size : (number + 1) * size]]
    records = [record for page in pages for record in page.out]
    flags = 0
    for page in pages:
        flags |= page.flags
    return Chunk(records, "".join(page.err for page in pages), flags)


def _framer(json_array: bool) -> Frame:
    """Return how records are put on stdout: lines, or the items of one JSON array
    (opened and closed by ``run``)."""
    if json_array:
        return lambda records, first: (b"\n" if first else b",\n") + b",\n".join(records)
    return lambda records, first: b"\n".join(records) + b"\n"


def _workers(jobs: int | None, files: int) -> int:
    workers = capped_workers("parse", jobs, files)
    return min(workers, _SETTINGS.parse_max_workers) if jobs is None else workers


def _parse_all(
    work: list[str], url: str | None, jobs: int | None, frame: Frame
) -> tuple[int, bool]:
    """Write the records of every file of *work* on stdout and its warnings on stderr,
    in order; return (the chunks' flags OR-ed, whether any record was written).

    Pages are independent and parsing is CPU-bound, so a folder of hundreds of pages
    is spread over the CPUs, whose workers write their chunks themselves
    (``scraper.cli._inturn``); a handful is parsed here, where starting workers would
    cost more than it saves, and so is everything when stdout or stderr is not a file
    (a caller's in-memory stream).
    """
    workers = _workers(jobs, len(work))
    if workers > 1 and can_write_in_turn():
        # Loaded once here, before the fork: else every worker imports the parser
        # (and the HTML engine) again on its first page.
        from scraper.api import load_parsers

        load_parsers()
        chunks = -(-len(work) // _SETTINGS.parse_chunk)
        return write_in_turn(chunks, partial(_parse_chunk, work, url), frame, workers)
    sys.stdout.flush()  # what ``run`` wrote, before the bytes beneath it
    buffer = getattr(sys.stdout, "buffer", None)
    write = buffer.write if buffer is not None else lambda data: sys.stdout.write(data.decode())
    flags, wrote = 0, False
    for path in work:
        page = _parse_file(path, url)
        if page.err:
            sys.stderr.write(page.err)
        if page.out:
            write(frame(page.out, not wrote))
            wrote = True
        flags |= page.flags
    if buffer is not None:
        buffer.flush()
    return flags, wrote


def run(args: argparse.Namespace) -> int:
    """Print the records of every page; return 0, 2 (unreadable file) or 3 (page errors)."""
    files = expand_paths(args.paths)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {args.jobs}")
    if args.url is not None:
        check_page_url(args.url)
    # Records are UTF-8 by contract, whatever the terminal's locale says: written as
    # bytes, encoded once (a stream without bytes beneath it gets them decoded).
    as_array = args.format == "json"
    if as_array:
        sys.stdout.write("[")
    work = [str(path) for path in files]
    flags, wrote = _parse_all(work, args.url, args.jobs, _framer(as_array))
    if as_array:
        sys.stdout.write("\n]\n" if wrote else "]\n")
    sys.stdout.flush()
    if flags & _Trouble.UNREADABLE:
        return int(ExitCode.USAGE)
    return int(ExitCode.PAGE_ERRORS if flags & _Trouble.PAGE else ExitCode.OK)
