"""``reviews parse``: read saved pages and print their review records.

Pure and fast: no database, no network, no heavy imports. Pages that hold no
reviews (not a review page, a block page, an unrecognised layout) are named on
stderr and the rest still run; the exit code then says 3.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from scraper.cli import ExitCode
from scraper.cli._common import add_command, capped_workers, warn
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


class _PageOutcome(NamedTuple):
    """What one file gave: its records as lines of JSON (UTF-8), a problem, or a read error."""

    path: str
    records: list[bytes]
    problem: str | None = None
    read_error: str | None = None


def record_json(review: Record) -> bytes:
    """Return one contract record as JSON in UTF-8: what ``json.dumps(review.to_dict(),
    ensure_ascii=False).encode()`` returns, faster (see ``scraper.jsontext``)."""
    return record_bytes(review.to_dict())


def _parse_file(job: tuple[str, str | None]) -> _PageOutcome:
    """Parse one saved page (runs in a worker process when there are many)."""
    from scraper.api import parse_page

    path, url = job
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return _PageOutcome(path, [], read_error=str(error.strerror or error))
    try:
        result = parse_page(data, url)
    except ParseError as error:
        return _PageOutcome(path, [], problem=f"unreadable page: {error.message}")
    records = [record_json(review) for review in result.reviews]
    problem = result.problem
    if not result.kind.has_reviews and not problem:
        problem = _KIND_PHRASES.get(result.kind, result.kind.value)
    return _PageOutcome(path, records, problem=problem)


def _outcomes(files: list[Path], url: str | None, jobs: int | None) -> Iterator[_PageOutcome]:
    """Yield each file's outcome in order, using worker processes for many files.

    Pages are independent and parsing is CPU-bound, so a folder of hundreds
    of pages is split across the CPUs; a handful is parsed here, where
    starting workers would cost more than it saves.
    """
    work = [(str(path), url) for path in files]
    workers = capped_workers("parse", jobs, len(work))
    if jobs is None:
        workers = min(workers, _SETTINGS.parse_max_workers)
    if workers < 2 or "fork" not in _start_methods():
        yield from map(_parse_file, work)
        return
    import multiprocessing

    # Loaded once here, before the fork: else every worker imports the parser
    # (and the HTML engine) again on its first page.
    from scraper.api import load_parsers

    load_parsers()

    with multiprocessing.get_context("fork").Pool(workers, _quiet_worker) as pool:
        yield from pool.imap(_parse_file, work, chunksize=_SETTINGS.parse_chunk)


def _quiet_worker() -> None:
    # Ctrl-C is the parent's to handle (it stops the pool); workers that saw
    # it too would each print a traceback.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def run(args: argparse.Namespace) -> int:
    """Print the records of every page; return 0, 2 (unreadable file) or 3 (page errors)."""
    files = expand_paths(args.paths)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {args.jobs}")
    if args.url is not None:
        check_page_url(args.url)
    # Records are UTF-8 by contract, whatever the terminal's locale says: written as
    # bytes, encoded once (a stream without bytes beneath it gets them decoded).
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    write = buffer.write if buffer is not None else lambda data: sys.stdout.write(data.decode())
    code = ExitCode.OK
    first = True
    if args.format == "json":
        write(b"[")
    for outcome in _outcomes(files, args.url, args.jobs):
        if outcome.read_error is not None:
            # Checked readable a moment ago; report it and keep going.
            warn("parse", f"{outcome.path}: cannot read: {outcome.read_error}")
            code = ExitCode.USAGE
            continue
        if outcome.problem is not None:
            warn("parse", f"{outcome.path}: {outcome.problem}")
            if code == ExitCode.OK:
                code = ExitCode.PAGE_ERRORS
        if not outcome.records:
            continue
        if args.format == "json":
            write((b"\n" if first else b",\n") + b",\n".join(outcome.records))
        else:
            write(b"\n".join(outcome.records) + b"\n")
        first = False
    if args.format == "json":
        write(b"\n]\n" if not first else b"]\n")
    if buffer is not None:
        buffer.flush()
    sys.stdout.flush()
    return int(code)
