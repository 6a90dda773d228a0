"""Worker processes for import and reparse.

Parsing is pure and the slowest step. ``parallel_map`` runs a function over jobs in
worker processes (the parse of a reparse, the parse and the write of an import:
``scraper.store.files``) and yields the results in job order, with a few jobs per
worker in flight, so memory stays flat however many jobs there are.

Workers are forked from a fork server (``multiprocessing``'s ``forkserver``): a
clean process started for the pool, which imports what the workers need once
(``WORKER_MODULES``) and forks each of them from there. A worker then never
inherits this process's threads or open database connections (which a plain fork
would hand it), and does not import the parsers, the store and SQLAlchemy again
for itself (0.4 s of CPU a worker, as ``spawn`` costs). ``import_workers_ahead``
starts the server while this process is still loading its own modules, so the workers are
ready by the time the pool needs them (``reviews import`` of 600 real-sized pages,
twelve runs alternated with the spawned workers before: 6.42 s on average against
6.06, CPU 10.7 s against 10.2). Where there is no fork server, workers are spawned.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from scraper.config import StoreSettings
from scraper.errors import WorkerLost

__all__ = [
    "WORKER_MODULES",
    "finishing",
    "import_modules",
    "import_workers_ahead",
    "parallel_map",
    "worker_context",
]

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")

#: Jobs in flight per worker: enough to keep it busy while the writer catches up.
_IN_FLIGHT = StoreSettings().jobs_in_flight

#: The parsers' modules, imported once the first page is parsed.
_PARSER_MODULES = ("scraper.sites._pages", "scraper.sites.schemaorg")

#: What the workers of each kind import before their first job, which the fork
#: server imports once for all of them: the module of their function and what it
#: imports only when it runs (the parsers, the database's driver and dialect).
WORKER_MODULES: dict[str, tuple[str, ...]] = {
    "import": (
        "scraper.store.files",
        "scraper.store.engine",
        *_PARSER_MODULES,
        "sqlalchemy.dialects.sqlite",
    ),
    "import-postgresql": (
        "scraper.store.files",
        "scraper.store.engine",
        *_PARSER_MODULES,
        "sqlalchemy.dialects.postgresql.psycopg",
    ),
}


def import_modules(url: str) -> tuple[str, ...]:
    """``WORKER_MODULES`` of an import into the database at *url*."""
    return WORKER_MODULES["import-postgresql" if url.startswith("postgresql") else "import"]


def parallel_map(
    function: Callable[[_Job], _Result],
    jobs: Iterable[_Job],
    workers: int,
    *,
    share: Callable[[], bool] | None = None,
    setup: tuple[Callable[..., None], tuple[Any, ...]] | None = None,
    stopping: Callable[[], None] | None = None,
    modules: Sequence[str] = (),
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
    *function* and the jobs must pickle (a module-level function); *modules* are
    what the fork server imports for its workers before their first job
    (``WORKER_MODULES``): worth it when there are several workers.
    Workers end when this process dies, even by ``kill -9``; every process started
    is reaped when the iterator is exhausted or closed. Raises WorkerLost when a
    worker was killed (the others are stopped), and what *function* raised in a
    worker, in its job's turn.
    """
    creator = threading.get_ident()
    pool = ProcessPoolExecutor(
        max(1, workers),
        mp_context=worker_context(modules),
        initializer=_start_worker,
        initargs=(os.getpid(), setup),
    )
    _running.add(id(pool))
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
            try:
                result = pending.popleft().result()
            except BrokenProcessPool as error:
                raise WorkerLost(_LOST) from error
            yield result
    finally:
        if threading.get_ident() == creator:
            if stopping is not None:
                stopping()
            pool.shutdown(wait=True, cancel_futures=True)
            _running.discard(id(pool))  # its workers are joined: it needs no helper
            # A lock among *setup*'s arguments is a semaphore the tracker would report
            # leaked: gone before it stops.
            del pool, pending, setup, stopping
            if not _running:  # else another thread's pool still needs them
                _stop_helpers()
        else:
            _running.discard(id(pool))
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

#: What a pool whose worker was killed says (``WorkerLost``).
_LOST = (
    "a worker process ended abruptly (killed by a signal, or out of memory): stopped "
    "there; the pages reported are stored, and a second run skips them"
)

#: The pools of this process that have not ended (by ``id``): the fork server and the
#: resource tracker are stopped once none has, as another thread's pool may use them.
_running: set[int] = set()


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


def worker_context(modules: Sequence[str]) -> multiprocessing.context.BaseContext:
    """The ``multiprocessing`` context workers start in: the fork server's, which
    imports *modules* when it starts, else ``spawn``'s. Locks and shared values the
    workers are given must come from it."""
    if _start_server(modules):
        return multiprocessing.get_context(_FORKSERVER)
    return multiprocessing.get_context("spawn")


@contextmanager
def import_workers_ahead(url: str, needed: bool) -> Iterator[None]:
    """With *needed* (an import into *url* will start workers), start their fork
    server now, so that it loads in a process of its own while this one goes on
    (its own modules, the database, the files) and the workers are ready when the
    pool asks for them; stop it after if no pool used it (a pool stops the one it
    used), without waiting for its imports: it has no child then."""
    if not needed:
        yield
        return
    _start_server(import_modules(url))
    try:
        yield
    finally:
        if not _running and _helper_pid("forkserver") is not None:
            _stop_helpers()


_FORKSERVER = "forkserver"


def _start_server(modules: Sequence[str]) -> bool:
    """Start the fork server, importing *modules*, unless it runs; return whether it
    does. False: this system has none, or its socket cannot be made (a temporary
    folder whose path is too long for one, or not writable): workers are spawned."""
    if _FORKSERVER not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(modules))
    try:
        forkserver.ensure_running()
    except OSError:
        return False
    return True


def _stop_helpers() -> None:
    """End the helper processes workers need (the fork server, the resource tracker),
    and reap them.

    Python starts them with the first pool and leaves them running until this
    process exits, without waiting for them: a parent that reaps orphans (an init
    system, a supervisor, a test runner) would find them zombies. They are started
    again if another pool needs them. The fork server is ended by a signal: once the
    pool's workers are joined it has reaped them, so it has no child and nothing to
    lose, and its own exit (the teardown of everything it imported) took 0.18 s.
    """
    import gc

    server = _helper_pid("forkserver")
    if server is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server, signal.SIGTERM)
        _helper("forkserver")._stop()
    gc.collect()  # the pool's semaphores unregister themselves from the tracker first
    # No pid: it never started (a pool that failed before its first worker).
    if _helper_pid("resource_tracker") is not None:
        _helper("resource_tracker")._stop()


def _helper(name: str) -> Any:
    """``multiprocessing``'s one fork server or resource tracker of this process."""
    from multiprocessing import forkserver, resource_tracker

    if name == "forkserver":
        return forkserver._forkserver  # private, as the tracker: there since 3.4
    return resource_tracker._resource_tracker


def _helper_pid(name: str) -> int | None:
    """The process id of helper *name* while it runs; None when it does not, or when
    this Python's helper cannot be stopped (no ``_stop``: left to end with us)."""
    helper = _helper(name)
    if getattr(helper, "_stop", None) is None:
        return None
    pid = getattr(helper, "_forkserver_pid" if name == "forkserver" else "_pid", None)
    return pid if isinstance(pid, int) else None


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

    The worker watches *parent*, the process of the pool, not its own parent: that
    is the fork server, which ends only once every process holding its pipe has, the
    workers among them. A pidfd tells the moment *parent* ends (Linux); elsewhere it
    is looked at every ``parent_watch_interval``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        try:
            ended = os.pidfd_open(parent)
        except ProcessLookupError:  # gone already
            os._exit(1)
        except (AttributeError, OSError):  # no pidfds here
            with contextlib.suppress(ProcessLookupError):
                while True:
                    os.kill(parent, 0)
                    time.sleep(StoreSettings().parent_watch_interval)
        else:
            select.select([ended], [], [])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
