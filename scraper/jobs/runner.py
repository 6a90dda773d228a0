"""``reviews run JOB``: one run of one job, under its lock.

A run has up to two passes, each one crawl (one ``crawl_runs`` row, tagged with the
job's name):

1. the seeds, in the job's mode. In incremental mode the listings are read newest
   first and each chain stops at the first page bringing no new review; the seeds
   are always requested (conditionally, with the stored ETag / Last-Modified), since
   their first page is where new reviews appear. The pass keeps the same crawl key
   from run to run, so a run cut short by ``max_pages``/``max_time`` or a kill is
   continued by the next one.
2. incremental mode with ``refresh_after`` only: the stored pages of the seeds'
   listings last checked longer ago than that, re-requested conditionally so
   changed counts and edits are picked up (a 304 costs the site next to nothing).
   It runs only when pass 1 finished, within what is left of the limits.

In full mode ``refresh_after`` goes to the crawler as is: pages checked more
recently are not requested at all, the others conditionally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scraper.config import CrawlSettings
from scraper.crawl import CrawlProgress, CrawlReport, crawl, normalise
from scraper.jobs.config import Job
from scraper.jobs.locks import DEFAULT_LOCK_TTL, JobLock, LockHolder
from scraper.schema.tables import url_validators
from scraper.store.engine import describe_url, open_engine

__all__ = ["JobRun", "run_job", "stale_pages"]

log = logging.getLogger("scraper.jobs")

#: Crawl outcomes from best to worst; a run reports the worst of its passes.
_OUTCOME_RANK = ("success", "page_errors", "interrupted", "failed", "site_blocked")
#: Progress events worth a log line (the rest would drown a cron log).
_LOGGED_EVENTS = frozenset({"failed", "refused", "robots", "retry"})


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one run of a job did: its passes' crawl reports, and whose lock it took."""

    job: str
    reports: tuple[CrawlReport, ...]
    taken_over: LockHolder | None = None

    @property
    def outcome(self) -> str:
        """The worst outcome of the passes (``success`` when all went well)."""
        ranks = [
            _OUTCOME_RANK.index(r.outcome) if r.outcome in _OUTCOME_RANK else 3
            for r in self.reports
        ]
        return _OUTCOME_RANK[max(ranks, default=0)]

    def total(self, figure: str) -> int:
        """Return the sum of one figure (``pages``, ``reviews_new``, ...) over the passes."""
        return sum(int(getattr(report, figure)) for report in self.reports)


def run_job(job: Job, *, lock_ttl: float = DEFAULT_LOCK_TTL) -> JobRun:
    """Run *job* once under its lock and return what it did.

    Raises JobAlreadyRunning (naming the holder) when another run holds the lock,
    SiteBlocked when the site stops us, StoreError for the database, UsageError for
    settings the crawler refuses. The lock is released whatever happens.
    """
    engine = open_engine(job.db)
    try:
        with JobLock(engine, job.name, ttl=lock_ttl) as lock:
            if lock.taken_over is not None:
                log.warning(
                    "job %s: took over the lock of a run that stopped renewing it (%s)",
                    job.name,
                    lock.taken_over.describe(),
                )
            reports = _passes(engine, job)
            if lock.lost:
                log.error("job %s: the lock was lost during the run", job.name)
            return JobRun(job.name, tuple(reports), lock.taken_over)
    finally:
        engine.dispose()


def _passes(engine: Engine, job: Job) -> list[CrawlReport]:
    incremental = job.mode == "incremental"
    where = describe_url(job.db)  # never a password in a log file
    log.info("job %s: %s crawl of %d seed(s) into %s", job.name, job.mode, len(job.seeds), where)
    first = _crawl(job, job.seeds, job.crawl_settings(), None if incremental else job.refresh_after)
    reports = [first]
    if not incremental or job.refresh_after is None or first.open_urls:
        return reports
    settings = _left_over(job.crawl_settings(), first)
    if settings is None:
        log.info("job %s: limits reached, stale pages wait for the next run", job.name)
        return reports
    seeds = [normalise(seed, mode=job.mode) for seed in job.seeds]
    stale = stale_pages(engine, seeds, job.refresh_after, now=datetime.now(UTC))
    if stale:
        log.info("job %s: re-checking %d stale page(s) conditionally", job.name, len(stale))
        reports.append(_crawl(job, stale, settings, None))
    return reports


def _crawl(
    job: Job, seeds: tuple[str, ...] | list[str], settings: CrawlSettings, refresh: float | None
) -> CrawlReport:
    report = crawl(
        job.db,
        list(seeds),
        settings=settings,
        fetch_settings=job.fetch_settings(),
        mode=job.mode,
        refresh_after=refresh,
        job=job.name,
        resume=True,
        progress=_log_progress,
    )
    log.info(
        "job %s: crawl run %d %s in %.1f s: %d pages (%d not modified), reviews %d new, "
        "%d updated, %d unchanged; %d errors%s",
        job.name,
        report.run_id,
        report.outcome,
        report.elapsed,
        report.pages,
        report.not_modified,
        report.reviews_new,
        report.reviews_updated,
        report.reviews_unchanged,
        report.errors,
        f"; {report.open_urls} URLs left for the next run" if report.open_urls else "",
    )
    return report


def _log_progress(progress: CrawlProgress) -> None:
    if progress.event in _LOGGED_EVENTS:
        detail = f" ({progress.message})" if progress.message else ""
        log.warning("%s: %s%s", progress.url, progress.event, detail)


def _left_over(settings: CrawlSettings, spent: CrawlReport) -> CrawlSettings | None:
    """The limits left after *spent*, or None when one is used up."""
    pages = None if settings.max_pages is None else settings.max_pages - spent.pages
    time = None if settings.max_time is None else settings.max_time - spent.elapsed
    if (pages is not None and pages <= 0) or (time is not None and time <= 0):
        return None
    return replace(settings, max_pages=pages, max_time=time)


def stale_pages(
    engine: Engine, seeds: list[str], refresh_after: float, *, now: datetime
) -> list[str]:
    """Return the stored pages of the *seeds*' listings (same address, any query) last
    checked more than *refresh_after* seconds before *now*, oldest check first; the
    seeds themselves excluded (the first pass requests them anyway)."""
    cutoff = now - timedelta(seconds=refresh_after)
    bases = {_base(seed) for seed in seeds}
    v = url_validators.c
    matches = sa.or_(*(v.url.startswith(base, autoescape=True) for base in bases))
    query = (
        sa.select(v.url)
        .where(matches, v.last_checked_at < cutoff)
        .order_by(v.last_checked_at, v.url)
    )
    with engine.connect() as conn:
        urls = conn.execute(query).scalars().all()
    return [url for url in urls if _base(url) in bases and url not in seeds]


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
