"""Small helpers shared by the command modules: common options and output."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from scraper.config import default_workers, usable_cpus
from scraper.errors import Terminated
from scraper.interrupts import raise_or_defer


class HelpFormatter(argparse.HelpFormatter):
    """Wrap prose paragraphs to the terminal; keep indented lines (examples) as written."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        # argparse makes a formatter for every option it adds and asks shutil
        # for the width each time; importing shutil (with bz2 and lzma) was a
        # measurable part of `reviews parse` start-up. Same answer, no import.
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines[1:]):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def terminal_columns() -> int:
    """Return the terminal's width as ``shutil.get_terminal_size()`` would (80 by default)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


@contextmanager
def stop_signals() -> Iterator[None]:
    """While the block runs, SIGTERM (systemd, ``docker stop``) raises Terminated and
    SIGINT (Ctrl-C) KeyboardInterrupt, each deferred to the end of the database
    transaction in hand (``interrupts``): a stop raised inside the driver would leave
    SQLite's write lock held by a connection nobody can close, and every write made
    while stopping would wait the busy timeout for it.

    Long commands then stop cleanly: the page in flight is written whole or not at
    all, the run is closed as interrupted and locks are released at once.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise_or_defer(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())

    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)  # not where SIGINT is ignored (a background job)
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def number(kind: Callable[[str], float], unit: str, *, zero: bool = False) -> Callable[[str], Any]:
    """Return an argparse ``type`` reading a finite number of *unit* above 0 (or >= 0).

    ``kind`` is ``int`` or ``float``; a whole number must also fit the databases' 64-bit
    integers. A bad value is reported by argparse, naming the option, with exit code 2.
    """

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(
                f"must be {'0 or more' if zero else 'more than 0'} {unit}: {text!r}"
            )
        if kind is int and value > _MAX_INT:
            raise argparse.ArgumentTypeError(f"too large: {text!r} (at most {_MAX_INT})")
        return value

    return parse


#: The largest whole number SQLite and PostgreSQL store (a 64-bit integer).
_MAX_INT = 2**63 - 1


def http_url(text: str) -> str:
    """argparse ``type`` for a URL to fetch: absolute http(s), a host, a valid port.

    Anything else (``ftp://``, ``http://[::1``) is a usage error naming the argument,
    before any request is made.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL ({error})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def regular_file(text: str) -> Path:
    """argparse ``type`` for an input file: a path that, when it exists, is a regular
    file (a FIFO or device would block or never end). A missing file passes: the
    command names it among its errors."""
    from scraper.inputs import NO_SUCH_FILE, input_file_problem

    problem = input_file_problem(text, None)
    if problem is not None and problem != NO_SUCH_FILE:
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    return Path(text)


def capped_workers(command: str, asked: int | None, work: int | None = None) -> int:
    """Return *asked* worker processes, at most the CPUs this process may use
    (saying so on stderr when it cuts): more only queue for the same cores.
    Without *asked* (no ``--jobs``), ``config.default_workers`` for *work* files."""
    if asked is None:
        return default_workers(work)
    cpus = usable_cpus()
    if asked > cpus:
        warn(command, f"--jobs {asked}: using {cpus}, the number of CPUs available")
        return cpus
    return asked


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
    """Add a sub-command whose help ends with an ``Example:`` block (``Examples:``
    when *example* holds several command lines, one a line)."""
    lines = example.splitlines()
    heading = "Examples:" if len(lines) > 1 else "Example:"
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="\n".join([heading, *(f"  {line}" for line in lines)]),
        formatter_class=HelpFormatter,
    )
    return parser


class _Counted(Protocol):
    @property
    def reviews_new(self) -> int: ...
    @property
    def reviews_updated(self) -> int: ...
    @property
    def reviews_unchanged(self) -> int: ...


def review_counts(report: _Counted) -> str:
    """``N new, N updated, N unchanged``: what storing one page did to its reviews."""
    return (
        f"{report.reviews_new} new, {report.reviews_updated} updated, "
        f"{report.reviews_unchanged} unchanged"
    )


def warn(command: str, message: str) -> None:
    """Print one line on stderr, prefixed with the command's name."""
    sys.stderr.write(warning_line(command, message))


def warning_line(command: str, message: str) -> str:
    """Return ``warn``'s line (its newline included) for writing later.

    Control characters in *message* (which may quote a page, or a file name) are
    written as escapes: a terminal shown the line runs none of them, and it stays
    one line.
    """
    return f"reviews {command}: {message.translate(_CONTROLS_ESCAPED)}\n"


#: C0 and C1 control characters (and DEL), each as its ``\xNN`` escape.
_CONTROLS_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
