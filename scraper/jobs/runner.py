"""``reviews run JOB``: one run of one job, under its lock.

A run is one crawl (one ``crawl_runs`` row, tagged with the job's name) of the
job's seeds in its mode, with its ``refresh_after``. The crawler does the rest:

- incremental: listings read newest first, each chain stopped at the first page
  holding a review already stored; the seeds are always requested (conditionally,
  with the stored ETag / Last-Modified), and the stored pages of their listings
  last checked longer ago than ``refresh_after`` are re-requested conditionally in
  the same crawl, so changed counts and edits are picked up (a 304 costs the site
  next to nothing);
- full: every chain walked; pages checked more recently than ``refresh_after``
  are not requested at all, the others conditionally.

The crawl keeps the same key from run to run, so a run cut short by
``max_pages``/``max_time`` or a kill is continued by the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from scraper.config import CrawlSettings, JobSettings
from scraper.crawl import CrawlProgress, CrawlReport, crawl
from scraper.jobs.config import Job
from scraper.jobs.locks import JobLock, LockHolder
from scraper.store.engine import close_engine, describe_url, open_engine

__all__ = ["JobRun", "run_job"]

log = logging.getLogger("scraper.jobs")

_SETTINGS = JobSettings()

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


def run_job(job: Job, *, lock_ttl: float = _SETTINGS.lock_ttl) -> JobRun:
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
            reports = _passes(job)
            if lock.lost:
                log.error("job %s: the lock was lost during the run", job.name)
            return JobRun(job.name, tuple(reports), lock.taken_over)
    finally:
        close_engine(engine)


def _passes(job: Job) -> list[CrawlReport]:
    where = describe_url(job.db)  # never a password in a log file
    log.info("job %s: %s crawl of %d seed(s) into %s", job.name, job.mode, len(job.seeds), where)
    report = _crawl(job, job.seeds, job.crawl_settings())
    if report.rechecks:
        log.info("job %s: re-checked %d stale page(s) conditionally", job.name, report.rechecks)
    return [report]


def _crawl(job: Job, seeds: tuple[str, ...] | list[str], settings: CrawlSettings) -> CrawlReport:
    report = crawl(
        job.db,
        list(seeds),
        settings=settings,
        fetch_settings=job.fetch_settings(),
        job=job.name,
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
