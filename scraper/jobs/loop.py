"""``reviews schedule run``: a foreground loop that runs due jobs, for hosts without cron.

A job is due when its schedule has fired since its last start. After downtime (the
loop stopped, the machine off) that rule runs a job ONCE, however many fire times
were missed: a daily job down for a week catches up one run, not seven. The last
start comes from the job's ``crawl_runs`` rows, so a restarted loop remembers.

Each run is a child process (``reviews run NAME``), so a crash or a leak in one run
never takes the loop down, and the job's lock, log file and exit code work exactly
as under cron. The jobs file is read again when it changes (a broken edit is
logged, the jobs in use stay). The clock is injectable, so the catch-up rule is
tested without waiting for real time to pass.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType

from scraper.config import JobSettings
from scraper.errors import ConfigError, ScraperError
from scraper.jobs.config import Job, JobsFile
from scraper.jobs.schedule import reviews_command

__all__ = ["ChildRunner", "Scheduler", "last_start_in_db", "local_now", "serve"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Runner = Callable[[Job], int]
LastStart = Callable[[Job], "datetime | None"]

#: The loop re-checks at least this often (seconds), so a changed clock is noticed.
MAX_SLEEP = JobSettings().loop_max_sleep


def local_now() -> datetime:
    """Return the current time, aware, in the machine's zone (as cron reads schedules)."""
    return datetime.now().astimezone()


def last_start_in_db(job: Job) -> datetime | None:
    """Return when *job* last started according to its database, or None.

    Raises StoreError when the database cannot be read.
    """
    from scraper.jobs.history import last_started

    return last_started(job.db, job.name)


class Scheduler:
    """Decides which jobs are due and runs them, one at a time, in file order."""

    def __init__(
        self,
        jobs: JobsFile,
        *,
        runner: Runner,
        clock: Clock = local_now,
        last_start: LastStart = last_start_in_db,
    ) -> None:
        self.runner = runner
        self.clock = clock
        self.last_start = last_start
        #: When each job last started; a job never run counts from when the loop
        #: first saw it, so it waits for its first fire time as under cron.
        self.last: dict[str, datetime] = {}
        self.jobs: list[Job] = []
        self.path = jobs.path
        self._stamp = _stamp(jobs.path)
        self._take(jobs)

    def _take(self, jobs: JobsFile) -> None:
        self.jobs = [job for job in jobs.jobs if job.schedule is not None]
        start = self.clock()
        for job in self.jobs:
            if job.name in self.last:
                continue
            try:
                self.last[job.name] = self.last_start(job) or start
            except ScraperError as error:
                log.warning(
                    "job %s: cannot read its past runs (%s); counting from now", job.name, error
                )
                self.last[job.name] = start

    def reload_if_changed(self) -> bool:
        """Read the jobs file again when it changed on disk; return True if it was taken.

        Jobs kept keep their last start. A broken file is logged and the jobs in use
        stay (a typo must not stop a loop that runs for months).
        """
        from scraper.jobs.config import load_jobs

        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            jobs = load_jobs(self.path)
        except ConfigError as error:
            log.error("the jobs file changed but is broken, keeping the jobs in use: %s", error)
            return False
        self._take(jobs)
        log.info("jobs file reloaded: %s", ", ".join(job.name for job in self.jobs) or "no jobs")
        return True

    def next_time(self, job: Job) -> datetime:
        """Return the first fire time of *job* after its last start."""
        from croniter import croniter

        assert job.schedule is not None
        last = self.last[job.name]
        fire: datetime = croniter(job.schedule, last).get_next(datetime)
        return fire

    def due(self, now: datetime) -> list[Job]:
        """Return the jobs whose schedule fired since their last start, at *now*."""
        return [job for job in self.jobs if self.next_time(job) <= now]

    def tick(self) -> list[tuple[str, int]]:
        """Run every due job once; return (job name, exit code) for each run."""
        ran = []
        for job in self.due(self.clock()):
            started = self.clock()
            log.info("job %s: due since %s, starting", job.name, f"{self.next_time(job):%F %R}")
            self.last[job.name] = started
            code = self.runner(job)
            log.info("job %s: finished with exit code %d", job.name, code)
            ran.append((job.name, code))
        return ran

    def seconds_to_next(self) -> float:
        """Return how long to sleep before the next fire time (at most MAX_SLEEP)."""
        if not self.jobs:
            return MAX_SLEEP
        now = self.clock()
        soonest = min(self.next_time(job) for job in self.jobs)
        return max(0.0, min(MAX_SLEEP, (soonest - now).total_seconds()))

    def run_forever(self, stop: threading.Event) -> None:
        """Run due jobs until *stop* is set (by SIGTERM/SIGINT through ``serve``)."""
        while not stop.is_set():
            self.reload_if_changed()
            self.tick()
            if stop.is_set():
                break
            stop.wait(self.seconds_to_next())


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


class ChildRunner:
    """Runs ``reviews run NAME --jobs FILE`` as a child process; interruptible."""

    def __init__(self, jobs: JobsFile) -> None:
        self.jobs = jobs
        self.child: subprocess.Popen[bytes] | None = None

    def __call__(self, job: Job) -> int:
        command = [*reviews_command(), "run", job.name, "--jobs", str(self.jobs.path)]
        # A session of its own: a terminal's Ctrl-C reaches the loop only, which then
        # interrupts the child exactly once (see ``interrupt``).
        self.child = subprocess.Popen(command, cwd=self.jobs.folder, start_new_session=True)
        try:
            return self.child.wait()
        finally:
            self.child = None

    def interrupt(self) -> None:
        """Ask a running child to stop as after Ctrl-C (it releases its lock)."""
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT)


def serve(jobs: JobsFile, *, clock: Clock = local_now) -> None:
    """Run the loop in the foreground until SIGTERM or SIGINT; a running job is
    interrupted cleanly (its lock released). Raises StoreError only from start-up."""
    stop = threading.Event()
    runner = ChildRunner(jobs)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()
        runner.interrupt()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler = Scheduler(jobs, runner=runner, clock=clock)
        for job in scheduler.jobs:
            next_time = scheduler.next_time(job)
            log.info("job %s (%s): next run at %s", job.name, job.schedule, next_time)
        scheduler.run_forever(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
