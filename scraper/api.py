"""The Python API of review-archiver: what the ``reviews`` command calls.

The front door is ``Archive``, one archive database, in the manner of
sqlite-utils' ``Database``: it opens its engine on first use and closes it in
``close()`` (or at the end of a ``with`` block)::

    from scraper.api import Archive

    with Archive("reviews.db") as archive:          # None: $REVIEWS_DB or ./reviews.db
        for item in archive.import_files(["saved/"]):
            print(item.path, item.report)
        for record in archive.query(archive.select(entry="Cowboy Bebop", min_score=8)):
            print(record["review"][:80])
        archive.export("reviews.csv", format="csv")  # written aside, renamed when done

``parse_page`` needs no database and stays a function; so do the jobs and
schedule functions, which read a jobs file that names its own databases.

Imports of the database and HTTP stacks happen inside the methods that need them:
the command modules import this module when they run, and a read command's start-up
is measured (tests/test_startup.py) against importing SQLAlchemy alone.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from scraper.config import (
    CrawlSettings,
    FetchSettings,
    JobSettings,
    database_url,
    default_workers,
)
from scraper.errors import OutputError, ScraperError, UsageError
from scraper.sites import load_parsers, parse_page

if TYPE_CHECKING:
    from datetime import datetime
    from logging import Logger

    from sqlalchemy.engine import Engine

    from scraper.crawl import Archived as Archived
    from scraper.crawl import CrawlProgress as CrawlProgress
    from scraper.crawl import CrawlReport as CrawlReport
    from scraper.export.datasette import DatasetteSetup
    from scraper.export.warc import WarcExport
    from scraper.export.warcimport import WarcImport
    from scraper.jobs.config import Job as Job
    from scraper.jobs.config import JobsFile
    from scraper.jobs.history import RunRow as RunRow
    from scraper.jobs.runner import JobRun
    from scraper.jobs.schedule import SystemdUnit
    from scraper.store.files import Imported as Imported
    from scraper.store.migrate import SchemaState as SchemaState
    from scraper.store.read import ReviewQuery as ReviewQuery
    from scraper.store.reparse_run import Progress, ReparseReport
    from scraper.store.sqlshell import SqlResult

__all__ = [
    "Archive",
    "capture_time_rules",
    "copied_folders",
    "datasette_setup",
    "install_schedule",
    "list_runs",
    "load_jobs",
    "load_parsers",
    "logging_to",
    "parse_page",
    "remove_schedule",
    "run_job",
    "run_schedule",
    "schedule_crontab",
    "schedule_systemd",
]


class Archive:
    """One archive database: a SQLite file, a SQLAlchemy URL, or None for
    ``$REVIEWS_DB`` / ``./reviews.db``.

    The engine is opened on the first call that needs it and kept until ``close()``
    (a ``with`` block closes it too). ``stats``, ``runs``, ``archive`` and ``crawl``
    open their own connection each call (a SQLite read without SQLAlchemy; a crawl's
    workers and their lock), as does ``query`` on SQLite while no engine is open.
    A write creates and migrates the database when needed; a read never creates one
    (a missing SQLite file is a StoreError).
    Raises UsageError naming ``db`` for a URL that cannot be one.
    """

    def __init__(self, db: str | None = None) -> None:
        self.url = database_url(db)
        self._engine: Engine | None = None
        self._migrated = False

    def __repr__(self) -> str:
        from scraper.config import hide_password

        return f"Archive({hide_password(self.url)!r})"

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine (its connections); the next call opens it again."""
        if self._engine is not None:
            from scraper.store.engine import close_engine

            engine, self._engine = self._engine, None
            close_engine(engine)

    @property
    def closed(self) -> bool:
        """True when no engine is open (before the first call, and after ``close()``)."""
        return self._engine is None

    def _open(self, *, create: bool = True, migrate: bool = True) -> Engine:
        """Return the engine, opening it first (creating the database only with
        *create*, migrating it to the newest schema with *migrate*)."""
        from scraper.store.engine import open_engine

        if self._engine is not None and migrate and not self._migrated:
            self.close()  # opened by `info` or `upgrade`: open it again, migrating
        if self._engine is None:
            self._engine = open_engine(self.url, migrate=migrate, create=create)
            self._migrated = migrate
        return self._engine

    def _reader(self) -> Engine | None:
        """The engine reads go through: the open one; on a database server, the one
        this archive opens (never creating the database) and keeps, so that calls
        share its pool; None for a SQLite file with no engine open, read through the
        stdlib driver without SQLAlchemy."""
        from scraper.store.lite import sqlite_file

        if self._engine is None and sqlite_file(self.url) is None:
            self._open(create=False)
        return self._engine

    # --- the database itself --------------------------------------------------

    def upgrade(self) -> SchemaState:
        """Create or migrate the database to the newest schema; return its state before.

        Raises StoreError naming the database when it is unreachable or not ours.
        """
        from scraper.store.migrate import upgrade

        return upgrade(self._open(migrate=False))

    def info(self) -> tuple[str, SchemaState, dict[str, int]]:
        """Return the database (password hidden), its schema state and row counts per table.

        Neither creates nor migrates. Raises StoreError naming the database when it is
        unreachable or (SQLite) does not exist.
        """
        from scraper.store.engine import describe_url
        from scraper.store.migrate import row_counts, schema_state

        engine = self._open(migrate=False, create=False)
        state = schema_state(engine)
        counts = row_counts(engine) if state.current else {}
        return describe_url(self.url), state, counts

    # --- pages in: import, archive, crawl, reparse ------------------------------

    def import_files(
        self,
        paths: Iterable[str | Path],
        *,
        url: str | None = None,
        fetched_at: datetime | str | None = None,
        fetched_at_from: str = "file",
        workers: int | None = 1,
    ) -> Generator[Imported, None, None]:
        """Store saved pages (files, or folders of ``*.html``); yield one Imported per file.

        *url* defaults to the URL the saving tool noted, else each page's canonical
        link; *fetched_at* (ISO 8601 text or an aware datetime) to what the file says,
        else its modification time (``scraper.store.files.TIME_RULES``;
        *fetched_at_from* is ``file``, ``name`` or ``mtime``). Raises UsageError for a
        missing path, a bad *url* or *fetched_at*, or a file name without a date under
        ``name``, before anything is stored; StoreError when the database fails (a
        page it refuses for its own values is yielded with that error). With
        *workers* > 1, that many processes work (``import_paths``); None: one per CPU
        for enough files (``config.default_workers``).
        """
        from scraper.inputs import check_page_url, expand_paths
        from scraper.store.workers import import_workers_ahead

        url = check_page_url(url) if url is not None else None
        files = expand_paths(paths)
        workers = default_workers(len(files)) if workers is None else workers
        # Before the store's modules are imported: the workers load meanwhile.
        with import_workers_ahead(self.url, workers > 1 and len(files) > 1):
            from scraper.store.files import import_paths, parse_fetched_at

            moment = parse_fetched_at(fetched_at) if isinstance(fetched_at, str) else fetched_at
            yield from import_paths(
                self._open(),
                files,
                url=url,
                fetched_at=moment,
                time_from=fetched_at_from,
                workers=workers,
            )

    def archive(
        self,
        urls: Iterable[str],
        *,
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
        ``archive``). It is a crawl that follows no link (``scraper.crawl.archive_pages``,
        which opens the database its own way, as a crawl does). Raises StoreError when
        the database is unusable, UsageError for a dishonest *user_agent* or a negative
        *delay*, SiteBlocked when the host keeps refusing or serves block pages in a row,
        JobAlreadyRunning when another process crawls the same SQLite file.
        """
        from scraper.crawl import archive_pages

        settings = _with_user_agent(settings or FetchSettings(), user_agent)
        pace = CrawlSettings().delay if delay is None else delay
        if pace < 0:
            raise UsageError(f"delay must be 0 or more seconds, not {pace:g}", parameter="delay")
        yield from archive_pages(self.url, urls, settings=settings, delay=pace)

    def crawl(
        self,
        seeds: Sequence[str] = (),
        *,
        settings: CrawlSettings | None = None,
        fetch_settings: FetchSettings | None = None,
        user_agent: str | None = None,
        job: str | None = None,
        progress: Callable[[CrawlProgress], None] | None = None,
        resume_last: bool = False,
        resumed: Callable[[Sequence[str]], None] | None = None,
    ) -> CrawlReport:
        """Crawl from *seeds* (following "More Reviews" chains); return a report.

        *settings* hold the pacing, the limits, the mode ("full" or "incremental"),
        ``refresh_after`` and ``resume`` (continue an unfinished crawl of the same
        seeds); see ``scraper.crawl.crawl``. With *resume_last* and no *seeds*, the
        newest unfinished crawl is continued with its own seeds and mode, and
        *resumed* is told its seeds first. *user_agent* (checked for
        honesty) replaces the one in *fetch_settings*. Raises UsageError (no seeds
        and nothing to resume, bad seeds or settings), JobAlreadyRunning (another
        crawler on the same SQLite file), SiteBlocked, StoreError.
        """
        from scraper.crawl import crawl, last_unfinished_crawl

        settings = settings or CrawlSettings()
        fetch_settings = _with_user_agent(fetch_settings or FetchSettings(), user_agent)
        seeds = list(seeds)
        if not seeds:
            last = last_unfinished_crawl(self.url) if resume_last else None
            if last is None:
                more = " (no unfinished crawl to resume)" if resume_last else ""
                raise UsageError(f"give URLs to crawl{more}", parameter="seeds")
            seeds, settings = list(last.seeds), settings._replace(mode=last.mode)
            if resumed is not None:
                resumed(seeds)
        return crawl(
            self.url,
            seeds,
            settings=settings,
            fetch_settings=fetch_settings,
            job=job,
            progress=progress,
        )

    def reparse(
        self,
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
        from scraper.store.reparse_any import reparse_archive

        return reparse_archive(
            self.url,
            self._open,
            engine_open=self._engine is not None,
            progress=progress,
            everything=everything,
            workers=workers,
        )

    def import_warc(self, paths: Sequence[Path]) -> WarcImport:
        """Ingest the review pages found in WARC files; return counts and named errors.

        Files that cannot be read are named in the report's errors and the others
        go on. Raises StoreError when the database fails.
        """
        from scraper.export.warcimport import import_warcs

        return import_warcs(self._open(), paths)

    # --- reading: query, export, stats, runs, sql ------------------------------

    @staticmethod
    def select(**filters: Any) -> ReviewQuery:
        """Return the checked query for *filters*: the strings a user typed, by the
        names of ``ReviewQuery.from_args`` (``entry``, ``tags``, ``min_score``,
        ``since``, ``search``, ``sort``, ``limit``...). Raises UsageError naming the
        bad parameter (``UsageError.parameter``)."""
        from scraper.store.read import ReviewQuery

        return ReviewQuery.from_args(**filters)

    def query(
        self, query: ReviewQuery | None = None, *, history: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Stream the contract records *query* selects (all reviews without one).

        With *history* each record gets ``observations`` (every capture, in time
        order). Raises UsageError for a bad search, StoreError when the database fails.
        """
        from scraper.store.read import read_records

        yield from read_records(self.url, query, history=history, engine=self._reader())

    def export(
        self,
        out: str | Path | IO[str],
        *,
        format: str = "jsonl",
        query: ReviewQuery | None = None,
        history: bool = False,
        bom: bool = False,
    ) -> int:
        """Write the selected reviews to *out* as ``jsonl``, ``csv`` or ``parquet``;
        return how many.

        *out* is a text stream (jsonl, csv) or a file path: a file is written as
        ``<name>.partial`` and renamed when complete, so an interrupted export never
        looks complete. With *history* each record gets its captures (not in CSV);
        with *bom* CSV starts with a byte-order mark (for Excel). Parquet reads the
        selection twice (its schema, then its rows), in constant memory. Raises
        UsageError for an unknown *format*, *history* with CSV, Parquet to a stream or
        without pyarrow, or a bad *out* path; OutputError when the disk fills;
        StoreError when the database fails.
        """
        if format not in ("jsonl", "csv", "parquet"):
            raise UsageError(f"format: {format!r} is not jsonl, csv or parquet", parameter="format")
        if history and format == "csv":
            raise UsageError(
                "history needs format jsonl or parquet (CSV has no place for it)",
                parameter="history",
                also=("format",),
            )

        def records() -> Iterator[dict[str, Any]]:
            return self.query(query, history=history)

        if not isinstance(out, str | Path):
            if format == "parquet":
                raise UsageError(
                    "format parquet needs out FILE (Parquet is binary)",
                    parameter="format",
                    also=("out",),
                )
            return _write_records(records(), out, format, bom)
        from scraper.export.partial import WrittenAside

        with _output(out), WrittenAside() as files:
            aside = files.aside(Path(out))
            if format == "parquet":
                from scraper.export.parquet import write_parquet

                return write_parquet(records, aside)
            with aside.open("w", encoding="utf-8", newline="") as stream:
                return _write_records(records(), stream, format, bom)

    def export_warc(
        self,
        out: str | Path,
        *,
        query: ReviewQuery | None = None,
        max_size: int | None = None,
        cdxj: bool = False,
    ) -> WarcExport:
        """Write stored raw pages as WARC files starting at *out*; return files and counts.

        With a *query* that filters, only the raw pages its reviews were seen on; a new
        file is begun past *max_size* bytes (``ExportSettings.warc_max_size``); with
        *cdxj*, a CDXJ index beside each file. Raises StoreError when the database
        fails, UsageError for a bad *out* path, OutputError when the disk fills.
        """
        from scraper.export.warc import DEFAULT_MAX_SIZE, export_warc
        from scraper.store.read import raw_pages_of

        engine = self._open(create=False)
        pages = None
        if query is not None and not query.is_empty():
            pages = raw_pages_of(query, engine.dialect.name)
        with _output(out):
            size = max_size or DEFAULT_MAX_SIZE
            return export_warc(engine, Path(out), max_size=size, pages=pages, cdxj=cdxj)

    def stats(self) -> dict[str, Any]:
        """Return the archive's counts (see ``scraper.store.stats.archive_stats``)."""
        from scraper.store.stats import archive_stats

        return archive_stats(self.url, engine=self._reader())  # never creates one

    def runs(self, job: str | None = None, *, limit: int | None = None) -> list[RunRow]:
        """Return this archive's past runs, newest first (of *job* only when named), at
        most *limit* (``JobSettings.runs_listed``). Raises StoreError for the database."""
        return list_runs(self.url, job, limit=limit)

    @contextmanager
    def sql(self, statement: str, *, timeout: float | None = None) -> Iterator[SqlResult]:
        """Run one read-only SQL *statement* for at most *timeout* seconds (default
        ``SQL_TIMEOUT``); yield its columns and streaming rows.

        Raises UsageError when the statement writes (refused), runs too long or fails;
        StoreError when the database is missing or unusable.
        """
        from scraper.config import SQL_TIMEOUT
        from scraper.store.sqlshell import read_only_sql

        engine = self._open(create=False)
        with read_only_sql(engine, statement, timeout=timeout or SQL_TIMEOUT) as result:
            yield result


def _with_user_agent(settings: FetchSettings, user_agent: str | None) -> FetchSettings:
    """Return *settings* identifying as *user_agent* (checked for honesty) when given."""
    if user_agent is None:
        return settings
    from scraper.fetch import honest_user_agent

    return settings._replace(user_agent=honest_user_agent(user_agent))


def _write_records(records: Iterable[dict[str, Any]], out: IO[str], format: str, bom: bool) -> int:
    from scraper.export.tabular import write_csv, write_jsonl

    return write_jsonl(records, out) if format == "jsonl" else write_csv(records, out, bom=bom)


#: OSError numbers that mean the output could not be finished (not a bad path).
_OUTPUT_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


@contextmanager
def _output(out: str | Path) -> Iterator[None]:
    """Turn an OSError of writing *out* into a ScraperError: a bad path is a
    UsageError naming ``out``, a full disk or an I/O error an OutputError."""
    try:
        yield
    except OSError as error:
        message = f"out {out}: {error.strerror or error}"
        if error.errno in _OUTPUT_FAILURES:
            failure: ScraperError = OutputError(
                message + " (nothing was left behind)", parameter="out"
            )
        else:
            failure = UsageError(message, parameter="out")
        raise failure from error


def capture_time_rules() -> tuple[tuple[str, ...], str]:
    """Return the choices of ``import_files``'s *fetched_at_from*, and the order in
    which a saved page's capture time is found, as ``reviews import --help`` says it."""
    from scraper.store.saved import TIME_FROM, TIME_RULES

    return TIME_FROM, TIME_RULES


def copied_folders(items: Iterable[Imported]) -> list[tuple[Path, int]]:
    """Return the folders whose files, dated by their modification time, all carry
    nearly the same one, as copies do (``ImportSettings.copy_mtime_spread``), each
    with how many such files it holds: their capture times are probably the copy's."""
    from scraper.store.files import looks_copied

    times: dict[Path, list[datetime]] = {}
    for item in items:
        if item.time_source == "mtime" and item.fetched_at is not None:
            times.setdefault(item.path.parent, []).append(item.fetched_at)
    return [(folder, len(found)) for folder, found in times.items() if looks_copied(found)]


def datasette_setup(db: str | None = None) -> DatasetteSetup:
    """Return the SQLite file *db* names, migrated to the newest schema, with the
    metadata ``reviews datasette`` gives Datasette (titles, facets, labels, search).

    Raises UsageError for a database that is not an SQLite file, StoreError when it
    does not exist or cannot be migrated.
    """
    from scraper.export.datasette import datasette_setup as setup

    return setup(db)


# --- jobs and schedules: a jobs file names its own databases ---------------------


def load_jobs(jobs_path: str | None = None) -> JobsFile:
    """Return the checked jobs file (default ./reviews.toml). Raises ConfigError."""
    from scraper.jobs.config import load_jobs as load

    return load(jobs_path)


def list_runs(
    db: str | None = None,
    job: str | None = None,
    *,
    limit: int | None = None,
    jobs_path: str | None = None,
) -> list[RunRow]:
    """Return past runs, newest first, at most *limit* (``JobSettings.runs_listed``):
    from *db* when given, else from the databases of the jobs file's jobs (of *job*
    only when named), else $REVIEWS_DB / ./reviews.db.

    Raises ConfigError for a broken jobs file or unknown job, StoreError for the database.
    """
    from scraper.jobs.history import runs_for

    count = JobSettings().runs_listed if limit is None else limit
    return runs_for(db, job, limit=count, jobs_path=jobs_path)


def logging_to(who: str, log_file: Path | None = None) -> AbstractContextManager[Logger]:
    """Send the package's log lines (INFO and up) to stderr and, when given, to
    *log_file* (a job's ``log_file``) while the block runs; yield the logger, whose
    lines start with *who*. Raises ConfigError naming a file that cannot be opened."""
    from scraper.jobs.logs import logging_to as to

    return to(who, log_file)


def run_job(job: Job) -> JobRun:
    """Run *job* (of a jobs file ``load_jobs`` returned) once, under its lock; return
    what its passes did.

    Raises JobAlreadyRunning when another run holds the lock, SiteBlocked when the
    site stops us, StoreError.
    """
    from scraper.jobs.runner import run_job as run

    return run(job)


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
