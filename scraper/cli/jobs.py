"""``reviews jobs check`` / ``reviews jobs list``: validate the jobs file and say what
each job will do. No database, no network."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from scraper.cli import ExitCode
from scraper.cli._common import add_command
from scraper.config import JobSettings

if TYPE_CHECKING:
    from scraper.api import Job

__all__ = ["add_jobs_option", "describe_job", "register", "run"]

_MODES = {
    "incremental": "incremental (newest first; stop at the first page holding a stored review)",
    "full": "full (every page of every chain)",
}


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--jobs FILE`` (default ./reviews.toml)."""
    parser.add_argument(
        "--jobs",
        metavar="FILE",
        default=None,
        help="the jobs file (TOML; default: ./reviews.toml)",
    )


def register(subparsers: Any) -> None:
    """Add the ``jobs`` sub-command with ``check`` and ``list``."""
    parser = add_command(
        subparsers,
        "jobs",
        help="check the jobs file and show what each job will do",
        description="Validate the jobs file (default ./reviews.toml): every error names the "
        "job and the key. `check` prints what each job will do; `list` one line per job.",
        example="reviews jobs check --jobs reviews.toml\nreviews jobs list",
    )
    parser.add_argument(
        "action", nargs="?", default="check", choices=("check", "list"), help="default: check"
    )
    add_jobs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the checked jobs file; ConfigError (exit 2) when it is broken."""
    from scraper import api

    jobs = api.load_jobs(args.jobs)
    now = datetime.now().astimezone()
    if args.action == "list":
        for job in jobs.jobs:
            print(f"{job.name}\t{job.mode}\t{job.schedule or '-'}\t{_next(job, now, 1)}")
        return ExitCode.OK
    count = len(jobs.jobs)
    print(f"{jobs.path}: {count} job{'s' if count != 1 else ''}, all valid")
    for job in jobs.jobs:
        print()
        print("\n".join(describe_job(job, now)))
    return ExitCode.OK


def _next(job: Job, now: datetime, count: int) -> str:
    if job.schedule is None:
        return "not scheduled"
    return ", ".join(f"{time:%Y-%m-%d %H:%M %Z}" for time in job.next_runs(now, count))


def _describe_db(url: str) -> str:
    """The database for people: an SQLite file as its path, a server URL without its
    password (SQLAlchemy is not loaded just for this: `jobs check` stays quick)."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe_job(job: Job, now: datetime) -> list[str]:
    """Return the lines saying what *job* will do, with its next 3 run times after *now*."""
    limits = [f"delay {job.duration(job.delay) if job.delay else '0s'} between requests"]
    if job.max_pages is not None:
        limits.append(f"at most {job.max_pages} pages")
    if job.max_time is not None:
        limits.append(f"at most {job.duration(job.max_time)}")
    refresh = (
        f"stored pages older than {job.duration(job.refresh_after)} are re-checked "
        "with conditional requests"
        if job.refresh_after is not None
        else "stored pages are not re-checked (no refresh_after)"
    )
    lines = [
        f"job {job.name}",
        f"  seeds:      {len(job.seeds)}",
        *(f"    {seed}" for seed in job.seeds),
        f"  mode:       {_MODES[job.mode]}",
        f"  limits:     {', '.join(limits)}",
        f"  refresh:    {refresh}",
        f"  database:   {_describe_db(job.db)}",
        f"  user agent: {job.user_agent}",
        f"  schedule:   {job.schedule or 'none (run it by hand or from your own scheduler)'}",
    ]
    if job.schedule is not None:
        lines.append(f"  next runs:  {_next(job, now, JobSettings().next_runs_shown)}")
    lines.append(f"  log file:   {job.log_file or 'none (stderr only)'}")
    return lines
