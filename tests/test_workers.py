"""``store.workers.parallel_map`` with real worker processes: results in job order, each
job computed once, and with ``share`` this process computing jobs instead of waiting
(the next job, or one a worker has not started, taken back)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from scraper.store.workers import parallel_map

Job = tuple[str, int, int]  # (log file, the parent's pid, number)


def _run(job: Job) -> tuple[int, int]:
    """Note *job* in its log (once per run), slowly in a worker; return (number, pid)."""
    log, parent, number = job
    if os.getpid() != parent:
        time.sleep(0.05)  # a worker slower than the parent: the parent must take part
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"{number}\n")
    return number, os.getpid()


def _jobs(tmp_path: Path, count: int) -> list[Job]:
    return [(str(tmp_path / "log"), os.getpid(), number) for number in range(count)]


def _runs(tmp_path: Path) -> list[int]:
    return sorted(int(line) for line in (tmp_path / "log").read_text().split())


@pytest.mark.slow  # starts a process pool
def test_a_sharing_parent_computes_jobs_while_the_worker_is_busy(tmp_path: Path) -> None:
    done = list(parallel_map(_run, _jobs(tmp_path, 40), 1, share=lambda: True))
    assert [number for number, _ in done] == list(range(40))
    assert _runs(tmp_path) == list(range(40))  # each job once, none run twice
    here = [number for number, pid in done if pid == os.getpid()]
    # The worker starts late and is slower: the parent does most, the last job too
    # (taken back from the worker's queue rather than waited for).
    assert len(here) > 20 and 39 in here, done
    assert len(here) < 40, done  # the worker took part


@pytest.mark.slow  # starts a process pool
@pytest.mark.parametrize("share", [None, lambda: False])
def test_a_parent_that_does_not_share_computes_nothing(tmp_path: Path, share: object) -> None:
    done = list(parallel_map(_run, _jobs(tmp_path, 10), 1, share=share))  # type: ignore[arg-type]
    assert [number for number, _ in done] == list(range(10))
    assert _runs(tmp_path) == list(range(10))
    assert all(pid != os.getpid() for _, pid in done), done


def _fail_here(job: Job) -> tuple[int, int]:
    """``_run``, but a job computed in the parent fails."""
    if os.getpid() == job[1]:
        raise ValueError(f"job {job[2]} failed here")
    return _run(job)


@pytest.mark.slow  # starts a process pool
def test_a_job_that_fails_here_raises_in_its_turn(tmp_path: Path) -> None:
    """The results before a failed job computed here still come, in order, as they
    do before a job that fails in a worker; then its error."""
    done: list[int] = []
    with pytest.raises(ValueError, match=r"job \d+ failed here") as raised:
        for number, _ in parallel_map(_fail_here, _jobs(tmp_path, 40), 1, share=lambda: True):
            done.append(number)
    failed = int(str(raised.value).split()[1])
    assert done == list(range(failed))


def _loaded(module: str) -> tuple[bool, int]:
    """Whether *module* was imported in this worker before its job, and its parent."""
    import sys

    return module in sys.modules, os.getppid()


@pytest.mark.slow  # starts a process pool
def test_workers_come_from_a_server_that_imported_their_modules() -> None:
    """The fork server imports what the pool asks for once; its workers have it before
    their first job, and are its children, not this process's."""
    wanted = "tabnanny"  # imported by nothing a worker runs, nor by unpickling a job
    done = list(parallel_map(_loaded, [wanted] * 4, 2, modules=(wanted,)))
    assert all(loaded for loaded, _ in done), done
    assert all(parent != os.getpid() for _, parent in done), done
    # Without the module asked for, a worker has not got it.
    assert not any(loaded for loaded, _ in parallel_map(_loaded, [wanted] * 2, 1))


def _slow(number: int) -> int:
    time.sleep(0.05)
    return number


@pytest.mark.slow  # starts two process pools
def test_a_pool_that_ends_leaves_the_fork_server_to_another_threads_pool() -> None:
    """Two pools at once in two threads: the one that ends first does not stop the
    fork server the other's workers came from (which would break that pool: a worker's
    end is read from the server)."""
    import threading

    results: list[int] = []
    failures: list[BaseException] = []
    working = threading.Event()

    def long_pool() -> None:
        try:
            for result in parallel_map(_slow, range(60), 2):
                results.append(result)
                working.set()  # its workers are at work
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)
        finally:
            working.set()

    other = threading.Thread(target=long_pool)
    other.start()
    assert working.wait(timeout=60)
    assert list(parallel_map(_slow, range(2), 1)) == [0, 1]
    assert len(results) < 60  # it ended while the other pool was still at work
    other.join(timeout=60)
    assert not failures, failures
    assert results == list(range(60))


def _die(number: int) -> int:
    """Kill this worker on job 3, as the OOM killer would."""
    import signal

    if number == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return number


@pytest.mark.slow  # starts a process pool
def test_a_killed_worker_is_a_worker_lost_error() -> None:
    from scraper.errors import WorkerLost

    with pytest.raises(WorkerLost, match="ended abruptly"):
        list(parallel_map(_die, range(8), 2))
