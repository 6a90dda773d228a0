"""The runs history: past runs of jobs, read from ``crawl_runs`` (written by the crawler)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from scraper.config import DEFAULT_JOBS_FILE, JobSettings, database_url
from scraper.errors import StoreError
from scraper.schema.tables import crawl_runs
from scraper.store.engine import open_engine, store_error

__all__ = ["FAILED_OUTCOMES", "RunRow", "last_started", "list_runs", "runs_for"]

_SETTINGS = JobSettings()

#: Outcomes that mean the run did not do its whole job.
FAILED_OUTCOMES = frozenset({"failed", "site_blocked", "interrupted", "page_errors"})


@dataclass(frozen=True, slots=True)
class RunRow:
    """One past run, as ``reviews runs`` shows it."""

    id: int
    job: str | None
    command: str
    started_at: datetime
    finished_at: datetime | None
    pages: int
    reviews_new: int
    reviews_updated: int
    not_modified: int
    errors: int
    outcome: str
    message: str | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish; None while running (or if killed)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def failed(self) -> bool:
        """True when the run should stand out: it failed, was stopped or lost pages."""
        return self.outcome in FAILED_OUTCOMES


def missing_sqlite_file(db_url: str) -> Path | None:
    """Return the path of *db_url*'s SQLite file when it does not exist yet, else None
    (reading the history must not create an empty archive as a side effect)."""
    url = sa.make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    path = Path(url.database).expanduser()
    return None if os.path.exists(path) else path  # (False for a name too long to look up)


@contextmanager
def _engine(db_url: str) -> Iterator[Engine]:
    missing = missing_sqlite_file(db_url)
    if missing is not None:
        raise StoreError(f"no database at {missing}: no run has been recorded there yet")
    engine = open_engine(db_url)
    try:
        yield engine
    except SQLAlchemyError as error:
        raise store_error(engine, error) from error
    finally:
        engine.dispose()


def list_runs(
    db_url: str, job: str | None = None, *, limit: int = _SETTINGS.runs_listed
) -> list[RunRow]:
    """Return the newest *limit* runs (of *job* when given), newest first.

    Raises StoreError when the database cannot be opened or read.
    """
    columns = [crawl_runs.c[name] for name in RunRow.__slots__]
    query = sa.select(*columns).order_by(crawl_runs.c.started_at.desc(), crawl_runs.c.id.desc())
    if job is not None:
        query = query.where(crawl_runs.c.job == job)
    with _engine(db_url) as engine, engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).all()
    return [RunRow(*row) for row in rows]


def runs_for(
    db: str | None,
    job: str | None,
    *,
    limit: int = _SETTINGS.runs_listed,
    jobs_path: str | None = None,
) -> list[RunRow]:
    """Return past runs, newest first, from the database(s) the caller means.

    *db* wins; else the databases of the jobs file's jobs (only *job*'s when named),
    when ``--jobs`` names a file or ``./reviews.toml`` exists; else ``$REVIEWS_DB`` /
    ``./reviews.db``. Raises ConfigError for a broken jobs
    file or an unknown job, StoreError for a database that cannot be read.
    """
    urls = [database_url(db)] if db else _job_databases(job, jobs_path)
    rows = [row for url in urls for row in list_runs(url, job, limit=limit)]
    rows.sort(key=lambda row: (row.started_at, row.id), reverse=True)
    return rows[:limit]


def _job_databases(job: str | None, jobs_path: str | None) -> list[str]:
    from scraper.jobs.config import load_jobs

    if jobs_path is None and not Path(DEFAULT_JOBS_FILE).is_file():
        return [database_url(None)]
    jobs = load_jobs(jobs_path)
    chosen = [jobs.get(job)] if job is not None else list(jobs.jobs)
    return list(dict.fromkeys(item.db for item in chosen))


def last_started(db_url: str, job: str) -> datetime | None:
    """Return when *job* last started a run, or None if it never did.

    Raises StoreError when the database cannot be opened or read.
    """
    if missing_sqlite_file(db_url) is not None:
        return None
    query = sa.select(sa.func.max(crawl_runs.c.started_at)).where(crawl_runs.c.job == job)
    with _engine(db_url) as engine, engine.connect() as conn:
        # max() keeps the column's type, so the value comes back as an aware datetime.
        value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value
