"""Worker processes for import and reparse.

Parsing is pure and the slowest step. ``parallel_map`` runs a function over jobs in
``spawn`` worker processes (the parse of a reparse, the parse and the write of an
import: ``scraper.store.files``) and yields the results in job order, with a few jobs
per worker in flight, so memory stays flat however many jobs there are.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from scraper.config import StoreSettings

__all__ = ["finishing", "parallel_map"]

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
    setup: tuple[Callable[..., None], tuple[Any, ...]] | None = None,
    stopping: Callable[[], None] | None = None,
) -> Iterator[_Result]:
    """Yield ``function(job)`` for each job, in order, computed in *workers* processes.

    With *share*, this process computes jobs itself whenever it would otherwise wait
    for a worker's result and ``share()`` is true (the caller has little else to do,
    as a reparse whose pages mostly did not change): the next job not yet sent, or
    at the end one sent but not yet started by a worker (taken back). So N processes
    in all keep N cores busy, from the workers' start to the last job.
    *setup* is (function, arguments) each worker calls once before its first job
    (``multiprocessing`` locks may be among the arguments); *stopping* is called here
    before the workers are stopped, however the iterator ends (to release workers that
    wait on each other).
    *function* and the jobs must pickle (a module-level function). Workers end when
    this process dies, even by ``kill -9``; every process started is reaped when the
    iterator is exhausted or closed.
    """
    creator = threading.get_ident()
    # spawn: workers never inherit this process's open database connections.
    pool = ProcessPoolExecutor(
        max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), setup),
    )
    sent = _IN_FLIGHT * max(1, workers)  # jobs in the workers' hands at most
    pending: deque[_Slot[_Job, _Result]] = deque()
    todo = iter(jobs)
    try:
        while True:
            while sum(slot.future is not None for slot in pending) < sent:
                job = next(todo, _END)
                if job is _END:
                    break
                pending.append(_Slot(job, pool.submit(function, job)))
            if not pending:
                return
            if share is not None and not pending[0].ready() and share():
                if len(pending) < sent + _IN_FLIGHT and _compute_next(function, todo, pending):
                    continue
                if _take_back(function, pending):
                    continue
            yield pending.popleft().result()
    finally:
        if threading.get_ident() == creator:
            if stopping is not None:
                stopping()
            pool.shutdown(wait=True, cancel_futures=True)
            # A lock among *setup*'s arguments is a semaphore the tracker would report
            # leaked: gone before it stops.
            del pool, pending, setup, stopping
            _stop_resource_tracker()
        # Else the garbage collector is closing it in another thread, the pool's own
        # among them, which may hold the pool's locks: shutting down from there
        # deadlocked (1 Ctrl-C in about 25). Its workers end with this process;
        # ``finishing`` closes it where it ran, so that this is the exception.


@contextmanager
def finishing(results: Iterable[_Result]) -> Iterator[Iterable[_Result]]:
    """Yield *results*; close them after, however the block ends.

    A ``parallel_map`` left unfinished (a stop signal, an error in its consumer) then
    stops its workers and reaps them in this thread, not whenever and wherever the
    garbage collector reaches it (see the end of ``parallel_map``).
    """
    try:
        yield results
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


#: No job left.
_END: Any = object()


class _Slot(Generic[_Job, _Result]):
    """A job and where its result is: a worker's future, or computed here."""

    __slots__ = ("error", "future", "job", "value")

    def __init__(self, job: _Job, future: Future[_Result] | None = None) -> None:
        self.job = job
        self.future = future
        self.value: _Result | None = None
        self.error: Exception | None = None

    def ready(self) -> bool:
        return self.future is None or self.future.done()

    def compute(self, function: Callable[[_Job], _Result]) -> None:
        """Compute the job here; an error is raised in its turn, as a worker's is."""
        self.future = None
        try:
            self.value = function(self.job)
        except Exception as error:  # raised again by ``result``
            self.error = error

    def result(self) -> _Result:
        if self.future is not None:
            return self.future.result()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # computed (a result may be None)


def _compute_next(
    function: Callable[[_Job], _Result],
    todo: Iterator[_Job],
    pending: deque[_Slot[_Job, _Result]],
) -> bool:
    """Compute the next job here, if there is one; say whether there was."""
    job = next(todo, _END)
    if job is _END:
        return False
    slot = _Slot[_Job, _Result](job)
    slot.compute(function)
    pending.append(slot)
    return True


def _take_back(function: Callable[[_Job], _Result], pending: deque[_Slot[_Job, _Result]]) -> bool:
    """Compute here the last job sent that no worker has started (cancelled there, so
    it runs once); say whether there was one."""
    for slot in reversed(pending):
        if slot.future is not None and slot.future.cancel():
            slot.compute(function)
            return True
    return False


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


def _start_worker(parent: int, setup: tuple[Callable[..., None], tuple[Any, ...]] | None) -> None:
    _exit_with_parent(parent)
    if setup is not None:
        function, arguments = setup
        function(*arguments)


def _exit_with_parent(parent: int) -> None:
    """Make a worker end when the importing process dies (even by ``kill -9``), and
    leave Ctrl-C to it.

    Workers block on a queue whose write end they hold themselves, so they would
    otherwise wait forever once their parent is gone. A terminal's Ctrl-C reaches the
    whole process group: the parent stops the pool (its workers end after the job in
    hand); a worker that took it too would print a KeyboardInterrupt traceback.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(StoreSettings().parent_watch_interval)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
