"""The jobs file: named crawl jobs in TOML (``reviews.toml`` by default).

A small example::

    db = "reviews.db"                 # default for every job: SQLite path or URL

    [jobs.daily]
    seeds = ["https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"]
    mode = "incremental"              # or "full"
    delay = "3s"                      # seconds between requests (number or duration)
    max_pages = 500
    max_time = "1h"
    refresh_after = "7d"              # stored pages older than this are re-checked
    schedule = "@daily"               # cron expression or @hourly/@daily/@weekly/...
    log_file = "logs/daily.log"

Relative paths (``db``, ``log_file``) are read from the jobs file's folder, so a job
means the same thing whatever folder cron starts it in. Every mistake is a
``ConfigError`` naming the file, the job and the key.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from scraper.config import (
    DB_ENV_VAR,
    DEFAULT_DB_PATH,
    DEFAULT_JOBS_FILE,
    MAX_JOBS_FILE_BYTES,
    USER_AGENT,
    CrawlSettings,
    FetchSettings,
    JobSettings,
    database_url,
    url_problem,
)
from scraper.errors import ConfigError
from scraper.inputs import NO_SUCH_FILE, input_file_problem

__all__ = [
    "Job",
    "JobsFile",
    "format_duration",
    "load_jobs",
    "next_runs",
    "parse_duration",
    "validate_schedule",
]

Mode = Literal["incremental", "full"]

#: Job names end up in crontab lines, systemd unit names and log file names.
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

#: The cron aliases both crontab and systemd understand (``@reboot`` is not a schedule).
CRON_ALIASES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")

_DEFAULT_DELAY = CrawlSettings().delay

TOP_LEVEL_KEYS = frozenset({"db", "jobs"})
JOB_KEYS = frozenset(
    {
        "seeds",
        "mode",
        "delay",
        "max_pages",
        "max_time",
        "user_agent",
        "refresh_after",
        "db",
        "schedule",
        "log_file",
    }
)


@dataclass(frozen=True, slots=True)
class Job:
    """One named job of a jobs file, every value checked and every path absolute."""

    name: str
    seeds: tuple[str, ...]
    db: str
    mode: Mode = "incremental"
    delay: float = _DEFAULT_DELAY
    max_pages: int | None = None
    max_time: float | None = None
    user_agent: str = USER_AGENT
    #: Seconds after which a stored page is re-checked (conditionally); None: never.
    refresh_after: float | None = None
    schedule: str | None = None
    log_file: Path | None = None

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        """Return the next *count* times this job's schedule fires after *after*
        (aware); none when it has no schedule."""
        return [] if self.schedule is None else next_runs(self.schedule, after, count)

    @staticmethod
    def duration(seconds: float) -> str:
        """Return *seconds* as a jobs file writes a duration (``7d``, ``90m``, ``2.5s``)."""
        return format_duration(seconds)

    def crawl_settings(self) -> CrawlSettings:
        """Return the crawler's pacing, limits, mode and refresh for this job (a job's
        run always continues its unfinished crawl)."""
        return CrawlSettings(
            delay=self.delay,
            max_pages=self.max_pages,
            max_time=self.max_time,
            mode=self.mode,
            refresh_after=self.refresh_after,
        )

    def fetch_settings(self) -> FetchSettings:
        """Return the fetcher's settings for this job (its User-Agent)."""
        return FetchSettings(user_agent=self.user_agent)


@dataclass(frozen=True, slots=True)
class JobsFile:
    """A loaded jobs file: its absolute path and its jobs, in file order."""

    path: Path
    jobs: tuple[Job, ...]

    @property
    def folder(self) -> Path:
        """The folder relative paths are read from (and cron ``cd``s to)."""
        return self.path.parent

    def get(self, name: str) -> Job:
        """Return the job called *name*; raise ConfigError listing the known ones."""
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(job.name for job in self.jobs) or "none"
        raise ConfigError(f"{self.path}: no job named {name!r} (jobs: {known})")


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Return *value* in seconds: a number, or a string like ``30s``, ``15m``, ``12h``,
    ``7d``, ``2w``. Raise ValueError for anything else, negatives, and zero unless
    *allow_zero*."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '7d', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):  # TOML has nan and inf
            raise ValueError(f"expected a finite number of seconds, not {value!r}")
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError(
            f"expected a duration such as '30s', '15m', '12h', '7d' or '2w', not {value!r}"
        )
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"a duration must be positive, not {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Return *seconds* in the jobs file's units, largest whole unit first: ``7d``,
    ``90m``, ``2.5s``."""
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def validate_schedule(expression: str) -> str:
    """Return *expression* normalised (single spaces) when it is a 5-field cron expression
    or an alias such as ``@daily``; raise ValueError saying why not otherwise."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in CRON_ALIASES:
            raise ValueError(f"unknown alias {text!r} (known: {', '.join(CRON_ALIASES)})")
        return text.lower()
    if len(text.split()) != 5:
        raise ValueError(
            f"{text!r} is not a cron expression: expected 5 fields "
            "(minute hour day-of-month month day-of-week) or an alias such as '@daily'"
        )
    from croniter import croniter

    if not croniter.is_valid(text):
        raise ValueError(f"{text!r} is not a valid cron expression")
    return text


def next_runs(
    schedule: str, after: datetime, count: int = JobSettings().next_runs_shown
) -> list[datetime]:
    """Return the next *count* times *schedule* fires strictly after *after* (aware)."""
    from croniter import croniter

    iterator = croniter(schedule, after)
    return [iterator.get_next(datetime) for _ in range(count)]


def load_jobs(path: str | os.PathLike[str] | None = None) -> JobsFile:
    """Read and check the jobs file at *path* (default ``./reviews.toml``).

    Returns a JobsFile. Raises ConfigError naming the file, job and key for a missing
    or unreadable file, bad TOML, an unknown key or a bad value.
    """
    file = Path(path if path is not None else DEFAULT_JOBS_FILE).expanduser().absolute()
    # Looked at before it is opened: a FIFO would block, /dev/zero never end.
    problem = input_file_problem(file, MAX_JOBS_FILE_BYTES)
    if problem == NO_SUCH_FILE:
        raise ConfigError(f"{file}: jobs file not found (use --jobs FILE)")
    if problem is not None:
        raise ConfigError(f"{file}: cannot read the jobs file: {problem}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read the jobs file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a={...}}
        raise ConfigError(f"{file}: not valid TOML: arrays or tables nested too deep") from None
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            f"{file}: unknown top-level key {unknown[0]!r} "
            f"(known: {', '.join(sorted(TOP_LEVEL_KEYS))}; jobs go in [jobs.NAME] tables)"
        )
    default_db = data.get("db")
    if default_db is not None and (not isinstance(default_db, str) or not default_db.strip()):
        raise ConfigError(f"{file}: top-level key 'db': expected a path or URL string")
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise ConfigError(f"{file}: no jobs: add at least one [jobs.NAME] table")
    return JobsFile(
        path=file,
        jobs=tuple(_load_job(file, name, table, default_db) for name, table in jobs.items()),
    )


def _load_job(file: Path, name: str, table: object, default_db: str | None) -> Job:
    if not JOB_NAME.match(name):
        raise ConfigError(
            f"{file}: job {name!r}: a job name is letters, digits, '.', '_' or '-' "
            "(it is used in crontab lines and file names)"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: job {name!r}: expected a [jobs.{name}] table")
    for key in table:
        if key not in JOB_KEYS:
            raise ConfigError(
                f"{file}: job {name!r}: unknown key {key!r} (known: {', '.join(sorted(JOB_KEYS))})"
            )
    if "seeds" not in table:
        raise ConfigError(f"{file}: job {name!r}: key 'seeds' is required (a list of URLs)")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        try:
            values[key] = _CHECKS[key](raw, file.parent)
        except ValueError as error:
            raise ConfigError(f"{file}: job {name!r}, key {key!r}: {error}") from None
    try:
        db = values.pop("db", None) or _db_value(default_db, file.parent)
    except ValueError as error:
        where = "top-level key 'db'" if default_db else f"${DB_ENV_VAR}"
        raise ConfigError(f"{file}: job {name!r}: {where}: {error}") from None
    return Job(name=name, db=db, **values)


def _db_value(value: str | None, folder: Path) -> str:
    """A database URL, with a relative SQLite path read from the jobs file's folder."""
    text = value or os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH
    if "://" in text:
        problem = url_problem(text)
        if problem is not None:
            raise ValueError(f"not a database URL ({problem})")
        return text
    return database_url(str((folder / Path(text).expanduser()).absolute()))


def _check_seeds(raw: object, folder: Path) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("expected a non-empty list of URLs")
    seeds = []
    for seed in raw:
        parts = urlsplit(seed.strip()) if isinstance(seed, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{seed!r} is not an http(s) URL")
        seeds.append(parts.geturl())
    return tuple(seeds)


def _check_mode(raw: object, folder: Path) -> Mode:
    if raw == "incremental" or raw == "full":
        return raw
    raise ValueError(f"expected 'incremental' or 'full', not {raw!r}")


def _check_delay(raw: object, folder: Path) -> float:
    # A delay of 0 is legitimate against one's own stand-in server; robots.txt's
    # Crawl-delay still applies on top of it.
    return parse_duration(raw, allow_zero=True)


def _check_max_pages(raw: object, folder: Path) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    raise ValueError(f"expected a positive whole number, not {raw!r}")


def _check_text(raw: object, folder: Path) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"expected a non-empty string, not {raw!r}")
    if any(ord(char) < 32 for char in raw):
        raise ValueError("must not contain control characters or line breaks")
    return raw.strip()


def _check_schedule(raw: object, folder: Path) -> str:
    return validate_schedule(_check_text(raw, folder))


def _check_path(raw: object, folder: Path) -> Path:
    return (folder / Path(_check_text(raw, folder)).expanduser()).absolute()


def _check_db(raw: object, folder: Path) -> str:
    return _db_value(_check_text(raw, folder), folder)


_CHECKS: Mapping[str, Any] = {
    "seeds": _check_seeds,
    "mode": _check_mode,
    "delay": _check_delay,
    "max_pages": _check_max_pages,
    "max_time": lambda raw, folder: parse_duration(raw),
    "user_agent": _check_text,
    "refresh_after": lambda raw, folder: parse_duration(raw),
    "db": _check_db,
    "schedule": _check_schedule,
    "log_file": _check_path,
}
