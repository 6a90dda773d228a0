"""``reviews run JOB``: one run of a job from the jobs file (what cron calls), and
``reviews runs [JOB]``: the history of past runs."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scraper.cli import ExitCode, explain
from scraper.cli._common import add_command, add_db_option, number, stop_signals
from scraper.cli.jobs import add_jobs_option
from scraper.config import JobSettings
from scraper.errors import (
    INTERRUPTS,
    ScraperError,
)

if TYPE_CHECKING:
    from scraper.api import Job, RunRow

__all__ = ["register", "run", "run_history"]

_EXIT_CODES = {
    "success": ExitCode.OK,
    "page_errors": ExitCode.PAGE_ERRORS,
    "site_blocked": ExitCode.SITE_BLOCKED,
}


def register(subparsers: Any) -> None:
    """Add the ``run`` and ``runs`` sub-commands."""
    parser = add_command(
        subparsers,
        "run",
        help="run one job of the jobs file once (what cron calls)",
        description="Run JOB from the jobs file once, under its lock: a run already going "
        "(here or on another machine sharing the database) makes this one exit at once with "
        "code 5. Log lines go to stderr and to the job's log_file. Exit codes: 0 success, "
        "3 some pages failed, 4 stopped by the site, 5 already running, 1 failure, 2 a "
        "broken jobs file.",
        example="reviews run daily --jobs ~/archive/reviews.toml",
    )
    parser.add_argument("job", metavar="JOB", help="the name of a [jobs.NAME] table")
    add_jobs_option(parser)
    parser.set_defaults(run=run)

    history = add_command(
        subparsers,
        "runs",
        help="list past runs: start, duration, pages, new/updated reviews, outcome",
        description="List past runs, newest first (of JOB only when given), from --db, or "
        "else from the jobs file's databases. Runs that failed, were stopped or lost pages "
        "stand out (a '!' in the first column when not on a terminal).",
        example="reviews runs daily --limit 10",
    )
    history.add_argument("job", metavar="JOB", nargs="?", default=None, help="only this job")
    history.add_argument(
        "--limit",
        type=number(int, "runs"),
        default=JobSettings().runs_listed,
        help="how many (default %(default)s)",
    )
    add_jobs_option(history)
    add_db_option(history)
    history.set_defaults(run=run_history)


def run(args: argparse.Namespace) -> int:
    """Run the job; return its exit code. Every failure is logged (stderr and log file)."""
    from scraper import api

    job = api.load_jobs(args.jobs).get(args.job)  # read once: its log file, then its run
    with stop_signals():
        return _run_logged(job)


def _run_logged(job: Job) -> int:
    from scraper import api

    with api.logging_to(f"reviews run {job.name}", job.log_file) as log:
        try:
            result = api.run_job(job)
        except ScraperError as error:
            code, words = explain(error)
            log.error("%s", words)
            return code
        except INTERRUPTS:
            log.error("interrupted: the next run continues where this one stopped")
            return ExitCode.INTERRUPTED
        log.info(
            "job %s: %s: %d pages, %d new and %d updated reviews, %d errors",
            job.name,
            result.outcome,
            result.total("pages"),
            result.total("reviews_new"),
            result.total("reviews_updated"),
            result.total("errors"),
        )
    return _EXIT_CODES.get(result.outcome, ExitCode.FAILURE)


def run_history(args: argparse.Namespace) -> int:
    """Print past runs; failed ones stand out."""
    from scraper import api

    rows = api.list_runs(args.db, args.job, limit=args.limit, jobs_path=args.jobs)
    if not rows:
        print("no runs recorded yet", file=sys.stderr)
        return ExitCode.OK
    if sys.stdout.isatty():
        _print_table(rows)
    else:
        _print_plain(rows)
    return ExitCode.OK


_HEADERS = ("run", "job", "started", "duration", "pages", "new", "updated", "errors", "outcome")


def _cells(row: RunRow) -> list[str]:
    started = row.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return [
        str(row.id),
        row.job or "-",
        started,
        _duration(row.duration),
        str(row.pages),
        str(row.reviews_new),
        str(row.reviews_updated),
        str(row.errors),
        row.outcome + (f" ({row.message})" if row.message and row.failed else ""),
    ]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _print_plain(rows: list[RunRow]) -> None:
    lines = [["", *_HEADERS]] + [["!" if row.failed else "", *_cells(row)] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())


def _print_table(rows: list[RunRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs as of {datetime.now().astimezone():%Y-%m-%d %H:%M}")
    for header in _HEADERS:
        numeric = header in ("run", "pages", "new", "updated", "errors")
        table.add_column(header, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*_cells(row), style="bold red" if row.failed else None)
    Console().print(table)
