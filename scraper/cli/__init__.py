"""The ``reviews`` command: a thin shell over ``scraper.api``.

Each command lives in its own module here with two functions: ``register(subparsers)``
adds its parser (help ending with an example) and ``run(args) -> int`` makes one api
call and returns an exit code. Command modules import heavy libraries (SQLAlchemy,
httpx) inside ``run`` only, so ``reviews parse`` never pays for them.

Exit codes (documented in the README and in ``reviews --help``):

====  ==============================================================
0     success
1     failure: the command could not do its job (database, network)
2     usage: a bad argument, option, path or jobs file
3     finished, but some pages failed (errors named on stderr)
4     stopped by the site: repeated refusals or block pages
5     already running: a job lock or the SQLite crawl lock is held
====  ==============================================================
"""

from __future__ import annotations

import argparse
import enum
import importlib
import keyword
import re
import sys
from collections.abc import Sequence

from scraper import __version__
from scraper.cli._common import HelpFormatter
from scraper.errors import (
    INTERRUPTS,
    ConfigError,
    JobAlreadyRunning,
    ScraperError,
    SiteBlocked,
    UsageError,
)

__all__ = ["ExitCode", "main"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    PAGE_ERRORS = 3
    SITE_BLOCKED = 4
    ALREADY_RUNNING = 5
    INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report SIGINT


#: Library parameters whose option is not ``--`` + the name with dashes (``min_score``
#: is ``--min-score``).
FLAGS: dict[str, str] = {"workers": "--jobs", "everything": "--all"}


def flag(parameter: str) -> str:
    """Return the command-line option that sets the library's *parameter*."""
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def flags_named(error: ScraperError) -> str:
    """Return *error*'s message with its parameters said as the options that set them."""
    text = error.message
    for parameter in filter(None, (error.parameter, *error.also)):
        # The first mention only: a value quoted after it may hold the same word.
        found = re.search(rf"(?<![\w-]){re.escape(parameter)}(?![\w-])", text)
        if found is not None:
            text = text[: found.start()] + flag(parameter) + text[found.end() :]
    if error.url and error.url not in text:
        text = f"{error.url}: {text}"
    return text


def explain(error: ScraperError) -> tuple[ExitCode, str]:
    """Return the exit code for *error* and the words to say it with (one place for both).

    An error naming a library parameter is said with the option's name instead.
    """
    said = flags_named(error) if error.parameter is not None else str(error)
    if isinstance(error, UsageError | ConfigError):
        return ExitCode.USAGE, f"error: {said}"
    if isinstance(error, SiteBlocked):
        return ExitCode.SITE_BLOCKED, f"stopped by the site: {said}"
    if isinstance(error, JobAlreadyRunning):
        return ExitCode.ALREADY_RUNNING, said
    return ExitCode.FAILURE, f"error: {said}"


#: Command modules, in the order ``reviews --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "parse",
    "archive",
    "crawl",
    "import_",
    "db",
    "jobs",
    "schedule",
    "run",
    "query",
    "export",
    "import_warc",
    "stats",
    "sql",
    "serve",
    "datasette",
)

EPILOG = """\
exit codes: 0 success, 1 failure, 2 usage error, 3 some pages failed,
            4 stopped by the site, 5 already running (a job lock or a crawl lock)

Example:
  reviews parse fixtures/mal/ > records.jsonl
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and no traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"reviews: error: {message}\n")


def module_of(command: str | None) -> str | None:
    """Return the name of the module named after *command* (``import-warc`` →
    ``import_warc``; ``import``, a Python keyword, → ``import_``), or None."""
    if command is None:
        return None
    name = command.replace("-", "_")
    return f"{name}_" if keyword.iskeyword(name) else name


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the ``reviews`` argument parser.

    When *command* (the first word of the command line) names a module of
    ``COMMAND_MODULES`` (see ``module_of``), only that module is imported and registered: every
    command module costs start-up time, and ``reviews parse`` has a start-up
    goal. If that module does not register *command* itself, or *command* is
    None or anything else (``--help``, a typo), the full parser is returned.
    """
    parser = _Parser(
        prog="reviews",
        description="Keep a faithful, queryable archive of review pages (MyAnimeList first).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reviews {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    own = module_of(command)
    alone = own in COMMAND_MODULES
    for name in (own,) if alone else COMMAND_MODULES:
        module = importlib.import_module(f"scraper.cli.{name}")
        module.register(subparsers)
    if alone and command not in subparsers.choices:
        return build_parser()
    return parser


#: Options whose value may start with "-" (``--sort -date``: newest first). argparse
#: would take "-date" for an option; it reads ``--sort=-date`` as meant.
_DASH_VALUED = ("--sort",)


def _dash_values(words: list[str]) -> list[str]:
    """Return *words* with ``--sort -date`` joined into ``--sort=-date``."""
    joined: list[str] = []
    at = 0
    while at < len(words):
        word = words[at]
        following = words[at + 1] if at + 1 < len(words) else ""
        if word in _DASH_VALUED and following[1:2].isalpha() and following[:1] == "-":
            joined.append(f"{word}={following}")
            at += 2
            continue
        if word == "--":
            joined.extend(words[at:])
            break
        joined.append(word)
        at += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reviews`` command and return its exit code."""
    words = _dash_values(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    try:
        code: int = args.run(args)
    except INTERRUPTS:
        print("reviews: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except ScraperError as error:
        exit_code, message = explain(error)
        print(f"reviews {args.command}: {message}", file=sys.stderr)
        return exit_code
    except BrokenPipeError:
        # `reviews export | head`: the reader left; that is not our failure.
        sys.stderr.close()
        return ExitCode.OK
    return code
