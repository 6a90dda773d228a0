"""``crawl()``: check the arguments, open the database, join or start the crawl of the
seeds, and run it. Also: one crawling process per SQLite file, and finding the
crawl a bare ``--resume`` means.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl._frontier import Frontier
from scraper.crawl._loop import CrawlLoop, CrawlReport, ProgressCallback
from scraper.crawl._process import worker_owner
from scraper.crawl._seeds import check_mode, crawl_key, normalise_seeds
from scraper.crawl._stored import stale_pages
from scraper.errors import BadURL, JobAlreadyRunning, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["LastCrawl", "crawl", "crawling", "last_unfinished_crawl"]


def crawl(
    db_url: str,
    seeds: Sequence[str],
    *,
    settings: CrawlSettings,
    fetch_settings: FetchSettings,
    job: str | None = None,
    progress: ProgressCallback | None = None,
) -> CrawlReport:
    """Crawl from *seeds* into the database at *db_url*; return what was done.

    Seeds are normalised (entry review listings show every review; ``settings.mode=
    "incremental"`` reads them newest first and stops a chain at the first page
    holding a review already stored, or bringing none new). The same seeds and
    mode name the same crawl: with ``settings.resume`` an unfinished one is continued
    (by this process alone, or together with others on PostgreSQL), a finished one
    starts over. ``settings.refresh_after`` (seconds): a full crawl leaves pages
    checked more recently than that alone; an incremental one always asks for its
    seeds (conditionally) and also re-checks, conditionally, the stored pages of the
    seeds' listings checked longer ago than that (``CrawlReport.rechecks``).

    Raises UsageError for bad seeds or settings, JobAlreadyRunning when another
    process crawls the same SQLite file, SiteBlocked when the site keeps refusing
    us, StoreError when the database fails.
    """
    _check_settings(settings)
    mode, refresh_after = check_mode(settings.mode), settings.refresh_after
    settings = settings._replace(mode=mode)
    try:
        normalised = normalise_seeds(seeds, mode=mode)
    except BadURL as error:
        raise UsageError(f"bad URL to crawl: {error}") from None
    from scraper.fetch.urls import host_key

    key = crawl_key(normalised, mode=mode)
    with crawling(db_url, key, settings=settings, fetch_settings=fetch_settings) as frontier:
        engine = frontier.engine
        frontier.prepare([(url, host_key(url)) for url in normalised], resume=settings.resume)
        rechecks = 0
        if mode == "incremental" and refresh_after is not None:
            # Pages beyond the newest ones are not reached by the chain (it stops at
            # the first known review): the stale ones are asked for conditionally.
            stale = stale_pages(engine, normalised, refresh_after, now=datetime.now(UTC))
            rechecks = frontier.add([(url, host_key(url)) for url in stale], depth=1)
        runner = CrawlLoop(
            engine,
            frontier,
            settings=settings,
            fetch_settings=fetch_settings,
            progress=progress,
        )
        options = _options(settings, fetch_settings)
        report = runner.run(crawl_key=key, seeds=normalised, options=options, job=job)
        return replace(report, rechecks=rechecks)


def _options(settings: CrawlSettings, fetch_settings: FetchSettings) -> dict[str, object]:
    """The options recorded with the run (``crawl_runs.options``)."""
    return {
        "mode": settings.mode,
        "delay": settings.delay,
        "concurrency": settings.concurrency,
        "max_pages": settings.max_pages,
        "max_time": settings.max_time,
        "refresh_after": settings.refresh_after,
        "user_agent": fetch_settings.user_agent,
    }


def _check_settings(settings: CrawlSettings) -> None:
    def positive(value: float | None, name: str, *, zero: bool = False) -> None:
        if value is None:
            return
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            allowed = "zero or more" if zero else "more than zero"
            raise UsageError(f"{name} must be {allowed}, not {value:g}", parameter=name)

    positive(settings.delay, "delay", zero=True)
    positive(settings.concurrency, "concurrency")
    positive(settings.max_pages, "max_pages")
    positive(settings.max_time, "max_time")
    positive(settings.refresh_after, "refresh_after", zero=True)


@contextmanager
def crawling(
    db_url: str, key: str, *, settings: CrawlSettings, fetch_settings: FetchSettings
) -> Iterator[Frontier]:
    """Open the database at *db_url* (one crawling process per SQLite file) and yield
    the frontier of the crawl named *key*; close the database afterwards."""
    from scraper.store.engine import open_engine

    engine = open_engine(db_url)
    with _disposing(engine), _one_sqlite_crawler(engine):
        yield Frontier(
            engine,
            key,
            owner=worker_owner(),
            lease_seconds=settings.lease_seconds,
            max_wait=fetch_settings.max_retry_after,
        )


@contextmanager
def _disposing(engine: Engine) -> Iterator[Engine]:
    """Yield *engine* and close its connection pool afterwards."""
    from scraper.store.engine import close_engine

    try:
        yield engine
    finally:
        close_engine(engine)


@contextmanager
def _one_sqlite_crawler(engine: Engine) -> Iterator[None]:
    """Hold an OS lock on ``<db>.crawl-lock`` while crawling a SQLite file.

    SQLite has one writer at a time and no row locks to share a frontier with, so a
    second crawling process is refused with a clear message (exit code 5) instead of
    queueing behind the first. The OS drops the lock when the process dies, even by
    ``kill -9``, so a resumed crawl never finds a stale lock.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one crawler per file is then on the user
        yield
        return
    path = Path(engine.url.database).resolve()
    lock_path = path.with_name(path.name + ".crawl-lock")
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobAlreadyRunning(
                f"another process is crawling {path}: a SQLite archive takes one crawling "
                "process at a time (use PostgreSQL to run several)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class LastCrawl:
    """The newest crawl with URLs left to fetch: its seeds and mode."""

    seeds: tuple[str, ...]
    mode: str


def last_unfinished_crawl(db_url: str) -> LastCrawl | None:
    """Return the newest crawl (``reviews crawl``) whose frontier still has open URLs.

    Returns None when there is none. Raises StoreError when the database fails.
    """
    import sqlalchemy as sa

    from scraper.schema.tables import crawl_runs, frontier
    from scraper.store.engine import open_engine

    still_open = (
        sa.select(frontier.c.id)
        .where(
            frontier.c.crawl_key == crawl_runs.c.crawl_key,
            frontier.c.state.in_(("queued", "leased")),
        )
        .exists()
    )
    with _disposing(open_engine(db_url)) as engine, engine.connect() as conn:
        row = conn.execute(
            sa.select(crawl_runs.c.seeds, crawl_runs.c.options)
            .where(crawl_runs.c.command == "crawl", still_open)
            .order_by(crawl_runs.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    options = row.options or {}
    return LastCrawl(seeds=tuple(row.seeds), mode=str(options.get("mode", "full")))
