"""Worker processes for the parse step of import and reparse: one writer, N parsers.

Parsing is pure and the slowest step; writing is serialized (one transaction per
page). ``parallel_map`` runs a function over jobs in ``spawn`` worker processes
and yields the results in job order, with a few jobs per worker in flight, so
memory stays flat however many jobs there are.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from scraper.config import StoreSettings

__all__ = ["parallel_map"]

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")

#: Jobs in flight per worker: enough to keep it busy while the writer catches up.
_IN_FLIGHT = StoreSettings().jobs_in_flight


def parallel_map(
    function: Callable[[_Job], _Result],
    jobs: Iterable[_Job],
    workers: int,
    *,
    share: Callable[[], bool] | None = None,
) -> Iterator[_Result]:
    """Yield ``function(job)`` for each job, in order, computed in *workers* processes.

    With *share*, this process computes one job in ``workers + 1`` itself (when its
    turn comes and ``share()`` is true: the caller has little else to do, as a
    reparse whose pages mostly did not change), while the workers compute the next
    ones, so that N processes in all keep N cores busy.
    *function* and the jobs must pickle (a module-level function). Workers end when
    this process dies, even by ``kill -9``; every process started is reaped when the
    iterator is exhausted or closed.
    """
    # spawn: workers never inherit this process's open database connections.
    pool = ProcessPoolExecutor(
        max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    pending: deque[Future[_Result] | _Job] = deque()
    every = max(1, workers) + 1
    try:
        for number, job in enumerate(jobs):
            here = share is not None and number % every == every - 1 and share()
            pending.append(job if here else pool.submit(function, job))
            if len(pending) >= _IN_FLIGHT * max(1, workers):
                yield _result(function, pending.popleft())
        while pending:
            yield _result(function, pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        del pool, pending
        _stop_resource_tracker()


def _result(function: Callable[[_Job], _Result], item: Future[_Result] | _Job) -> _Result:
    """The result of a job sent to a worker, or of one kept here (computed now)."""
    if isinstance(item, Future):
        return item.result()
    return function(item)


def _stop_resource_tracker() -> None:
    """End the helper process that ``spawn`` workers need, and reap it.

    Python starts it with the first pool and leaves it running until this
    process exits, without waiting for it: a parent that reaps orphans (an init
    system, a supervisor, a test runner) would find it a zombie. It is started
    again if another pool needs it.
    """
    import gc
    from multiprocessing import resource_tracker

    gc.collect()  # the pool's semaphores unregister themselves from the tracker first
    tracker = resource_tracker._resource_tracker
    stop = getattr(tracker, "_stop", None)
    # No pid: it never started (a pool that failed before its first worker).
    if stop is not None and getattr(tracker, "_pid", None) is not None:
        stop()


def _exit_with_parent(parent: int) -> None:
    """Make a worker end when the importing process dies (even by ``kill -9``).

    Workers block on a queue whose write end they hold themselves, so they would
    otherwise wait forever once their parent is gone.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(StoreSettings().parent_watch_interval)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
