"""The Python API of review-archiver: what the ``reviews`` command calls.

Each function here is one job a user can ask for. They wire the rooms together
(fetch → sites → store, crawl, export) and hold no logic of their own.

Imports of the database and HTTP stacks happen inside the functions that need
them, on purpose: ``parse_page`` / ``reviews parse`` must start fast, without
SQLAlchemy or httpx loaded (a measured goal of the project).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from scraper.config import CrawlSettings, FetchSettings, database_url
from scraper.errors import UsageError

__all__ = [
    "Archived",
    "archive",
    "archive_stats",
    "crawl",
    "datasette_setup",
    "db_info",
    "export_parquet",
    "export_records",
    "export_warc",
    "import_files",
    "import_warc",
    "install_schedule",
    "last_unfinished_crawl",
    "list_runs",
    "load_jobs",
    "parse_page",
    "query_reviews",
    "remove_schedule",
    "reparse",
    "run_job",
    "run_schedule",
    "run_sql",
    "schedule_crontab",
    "schedule_systemd",
    "upgrade",
]

# --- parsing (no network, no database) ------------------------------------------

from scraper.sites import parse_page  # re-exported

# --- archive: store, import, reparse, archive URLs --------------------------------

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scraper.crawl import Archived


def __getattr__(name: str) -> object:
    # ``Archived`` lives with the code that makes it (scraper.crawl, which loads
    # SQLAlchemy): handed out on first use, so importing this module stays light.
    if name == "Archived":
        from scraper.crawl import Archived

        return Archived
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def archive(
    urls: Iterable[str],
    *,
    db: str | None = None,
    delay: float | None = None,
    user_agent: str | None = None,
    settings: FetchSettings | None = None,
) -> Iterator[Archived]:
    """Fetch each URL once, politely, and store it; yield one Archived per URL, in order.

    Repeated URLs (same canonical form) are fetched once. A URL archived before is
    asked for conditionally (its stored ETag / Last-Modified): a 304 is yielded with
    ``unchanged_since`` and nothing is stored again. A fetch failure (bad URL,
    robots.txt, network, non-HTML, oversized) is recorded in ``fetch_errors`` and
    yielded; the next URL still runs. A page that fails to parse is stored raw and
    yielded with its ParseError. The run is recorded in ``crawl_runs`` (command
    ``archive``). It is a crawl that follows no link (``scraper.crawl.archive_pages``):
    refusals (403/429) and transient failures are retried later, a block page fails
    its URL. Raises StoreError when the database is unusable, UsageError for a
    dishonest user agent or a negative delay, SiteBlocked when the host keeps
    refusing or serves block pages in a row, JobAlreadyRunning when another process
    crawls the same SQLite file.
    """
    from scraper.crawl import archive_pages
    from scraper.fetch import honest_user_agent

    settings = settings or FetchSettings()
    if user_agent is not None:
        settings = replace(settings, user_agent=honest_user_agent(user_agent))
    pace = CrawlSettings().delay if delay is None else delay
    if pace < 0:
        raise UsageError(f"--delay must be 0 or more seconds, not {pace:g}")
    yield from archive_pages(database_url(db), urls, settings=settings, delay=pace)


if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from scraper.store.files import Imported
    from scraper.store.migrate import SchemaState
    from scraper.store.reparse import Progress, ReparseReport


def upgrade(db: str | None = None) -> SchemaState:
    """Create or migrate the database to the newest schema; return its state before.

    Raises StoreError naming the database when it is unreachable or not ours.
    """
    from scraper.store.engine import open_engine
    from scraper.store.migrate import upgrade as migrate

    engine = open_engine(database_url(db), migrate=False)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def db_info(db: str | None = None) -> tuple[str, SchemaState, dict[str, int]]:
    """Return the database (password hidden), its schema state and row counts per table.

    Neither creates nor migrates. Raises StoreError naming the database when it is
    unreachable or (SQLite) does not exist.
    """
    from scraper.store.engine import describe_url, open_engine
    from scraper.store.migrate import row_counts, schema_state

    url = database_url(db)
    engine = open_engine(url, migrate=False, create=False)
    try:
        state = schema_state(engine)
        counts = row_counts(engine) if state.current else {}
        return describe_url(url), state, counts
    finally:
        engine.dispose()


def import_files(
    paths: Iterable[str | Path],
    *,
    db: str | None = None,
    url: str | None = None,
    fetched_at: datetime | str | None = None,
    fetched_at_from: str = "file",
    workers: int = 1,
) -> Iterator[Imported]:
    """Store saved pages (files, or folders of ``*.html``); yield one Imported per file.

    *url* defaults to the URL the saving tool noted, else each page's canonical link;
    *fetched_at* (ISO 8601 text or an aware datetime) to what the file says, else its
    modification time (``scraper.store.files.TIME_RULES``; *fetched_at_from* is
    ``file``, ``name`` or ``mtime``). Raises UsageError for a missing path, a bad *url*
    or *fetched_at*, or a file name without a date under ``name``, before anything is
    stored; StoreError for the database. With *workers* > 1, that many processes parse
    pages while this one writes.
    """
    from scraper.store.engine import open_engine
    from scraper.store.files import check_page_url, expand_paths, import_paths, parse_fetched_at

    moment = parse_fetched_at(fetched_at) if isinstance(fetched_at, str) else fetched_at
    url = check_page_url(url) if url is not None else None
    files = expand_paths(paths)
    engine = open_engine(database_url(db))
    try:
        yield from import_paths(
            engine,
            files,
            url=url,
            fetched_at=moment,
            time_from=fetched_at_from,
            workers=workers,
        )
    finally:
        engine.dispose()


def reparse(
    db: str | None = None,
    *,
    progress: Progress | None = None,
    everything: bool = False,
    workers: int = 1,
) -> ReparseReport:
    """Re-run the current parser over the stored raw pages; return what changed.

    Pages the current parser version read are skipped unless *everything*; with
    *workers* > 1 that many processes work (one writes, the others parse). No
    network. Raises StoreError naming the database when it refuses a read or write.
    """
    from scraper.store.engine import open_engine
    from scraper.store.reparse import reparse as run

    engine = open_engine(database_url(db))
    try:
        return run(engine, progress=progress, everything=everything, workers=workers)
    finally:
        engine.dispose()


# --- crawl -----------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scraper.crawl import CrawlProgress, CrawlReport, LastCrawl


def crawl(
    db_url: str,
    seeds: Sequence[str],
    *,
    settings: CrawlSettings,
    fetch_settings: FetchSettings,
    mode: str = "full",
    refresh_after: float | None = None,
    job: str | None = None,
    resume: bool = True,
    progress: Callable[[CrawlProgress], None] | None = None,
) -> CrawlReport:
    """Crawl from *seeds* (following "More Reviews" chains) into *db_url*; return a report.

    See ``scraper.crawl.crawl``: ``mode`` is "full" or "incremental", *resume*
    continues an unfinished crawl of the same seeds. Raises UsageError,
    JobAlreadyRunning (another crawler on the same SQLite file), SiteBlocked,
    StoreError.
    """
    from scraper.crawl import crawl as run_crawl

    return run_crawl(
        db_url,
        seeds,
        settings=settings,
        fetch_settings=fetch_settings,
        mode=mode,
        refresh_after=refresh_after,
        job=job,
        resume=resume,
        progress=progress,
    )


def last_unfinished_crawl(db_url: str) -> LastCrawl | None:
    """Return the seeds and mode of the newest crawl with URLs left, or None."""
    from scraper.crawl import last_unfinished_crawl as find

    return find(db_url)


# --- jobs and schedules -----------------------------------------------------------

if TYPE_CHECKING:
    from scraper.jobs.config import JobsFile
    from scraper.jobs.history import RunRow
    from scraper.jobs.runner import JobRun
    from scraper.jobs.schedule import SystemdUnit


def load_jobs(jobs_path: str | None = None) -> JobsFile:
    """Return the checked jobs file (default ./reviews.toml). Raises ConfigError."""
    from scraper.jobs.config import load_jobs as load

    return load(jobs_path)


def list_runs(
    db: str | None = None,
    job: str | None = None,
    *,
    limit: int = 20,
    jobs_path: str | None = None,
) -> list[RunRow]:
    """Return past runs, newest first: from *db* when given, else from the databases of
    the jobs file's jobs (of *job* only when named), else $REVIEWS_DB / ./reviews.db.

    Raises ConfigError for a broken jobs file or unknown job, StoreError for the database.
    """
    from scraper.jobs.history import runs_for

    return runs_for(db, job, limit=limit, jobs_path=jobs_path)


def run_job(job: str, *, jobs_path: str | None = None) -> JobRun:
    """Run *job* of the jobs file once, under its lock; return what its passes did.

    Raises ConfigError for a broken jobs file or unknown job, JobAlreadyRunning when
    another run holds the lock, SiteBlocked when the site stops us, StoreError.
    """
    from scraper.jobs.runner import run_job as run

    return run(load_jobs(jobs_path).get(job))


def schedule_crontab(jobs_path: str | None = None) -> str:
    """Return the marked crontab block that runs the jobs file's scheduled jobs."""
    from scraper.jobs.schedule import crontab_block

    return crontab_block(load_jobs(jobs_path))


def schedule_systemd(jobs_path: str | None = None) -> tuple[list[SystemdUnit], list[str]]:
    """Return systemd service + timer units for the scheduled jobs, and notes naming
    the jobs whose schedule systemd cannot express."""
    from scraper.jobs.schedule import systemd_units

    return systemd_units(load_jobs(jobs_path))


def install_schedule(jobs_path: str | None = None) -> str:
    """Install (or replace) the jobs file's block in the user's crontab; return it.

    Raises ConfigError when no job has a schedule, ScraperError when crontab fails.
    """
    from scraper.errors import ConfigError
    from scraper.jobs.schedule import CrontabEditor

    jobs = load_jobs(jobs_path)
    if all(job.schedule is None for job in jobs.jobs):
        raise ConfigError(f"{jobs.path}: no job has a schedule: nothing to install")
    return CrontabEditor().install(jobs)


def remove_schedule(jobs_path: str | None = None) -> bool:
    """Remove the jobs file's block from the user's crontab; return False if absent."""
    from scraper.jobs.schedule import CrontabEditor

    return CrontabEditor().remove(load_jobs(jobs_path))


def run_schedule(jobs_path: str | None = None) -> None:
    """Run due jobs in the foreground until SIGTERM / Ctrl-C (no cron needed)."""
    from scraper.jobs.loop import serve

    serve(load_jobs(jobs_path))


# --- query and export -------------------------------------------------------------

from scraper.export.datasette import datasette_setup  # noqa: E402  (re-exported; light)
from scraper.export.facade import (  # noqa: E402  (re-exported; light to import)
    archive_stats,
    export_parquet,
    export_records,
    export_warc,
    import_warc,
    query_reviews,
    run_sql,
)
