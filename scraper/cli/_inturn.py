"""Work spread over forked processes that write their own output, in order.

``reviews parse`` with workers: each worker takes the next chunk of work, makes its
output, and writes it to the command's stdout and stderr itself when the chunk's
turn comes (chunk 0 first, then 1, ...), so the output is byte for byte what one
process writes. The parent only watches. Handing each page's records back to the
parent to write them cost the parent about 1 ms a page (pickling, the pipe, and
the copies on both sides, a seventh of the parse itself) on top of the workers'
own time, with both cores busy.

A worker keeps a few finished chunks (``CliSettings.parse_chunks_ahead``) while it
waits for its turn, so a slow chunk elsewhere does not idle it. A worker that dies
(a signal, the OOM killer) stops the others and is reported; a reader that goes
away (``reviews parse DIR | head``) ends them all quietly, as in one process.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from scraper.config import CliSettings
from scraper.errors import OutputError

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext
    from multiprocessing.process import BaseProcess

# (multiprocessing is imported where it is used: it costs `reviews parse` of one page
# 15 ms of start-up.)

__all__ = ["Chunk", "Frame", "can_write_in_turn", "write_in_turn"]

_SETTINGS = CliSettings()

#: A worker's exit code when its output's reader went away.
_READER_GONE = errno.EPIPE


class Chunk(NamedTuple):
    """One chunk's output: *out* records (framed by the caller's ``frame`` when it is
    written, which knows whether anything came before) and *err*, lines for stderr."""

    out: list[bytes]
    err: str = ""
    flags: int = 0


#: ``frame(records, first)``: the bytes that put *records* on the output; *first*
#: says nothing was written before them.
Frame = Callable[[Sequence[bytes], bool], bytes]


def can_write_in_turn() -> bool:
    """Whether workers can write this process's stdout and stderr themselves: both are
    real file descriptors and processes can be forked here."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return True


def write_in_turn(
    chunks: int, make: Callable[[int], Chunk], frame: Frame, workers: int
) -> tuple[int, bool]:
    """Run ``make(k)`` for every chunk k in *workers* forked processes, each chunk's
    output written in chunk order; return (its flags OR-ed together, whether anything
    was written on stdout).

    Raises BrokenPipeError when the output's reader went away, OutputError when a
    worker died before writing its chunks (the output stops at the last whole chunk),
    and lets KeyboardInterrupt through (the workers are stopped first).
    """
    import multiprocessing

    sys.stdout.flush()
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")
    shared = _Shared(context)
    out, err = sys.stdout.fileno(), sys.stderr.fileno()
    parent = os.getpid()
    processes = [
        context.Process(
            target=_work,
            args=(shared, chunks, make, frame, out, err, parent),
            name=f"reviews-parse-{number}",
            daemon=True,
        )
        for number in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        _watch(processes)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join()
    return shared.flags.value, bool(shared.wrote.value)


class _Shared:
    """What the workers share: the next chunk to take, the chunk whose turn it is to be
    written (and the condition that wakes those waiting for it), what was written."""

    def __init__(self, context: ForkContext) -> None:
        self.next = context.Value("q", 0)
        self.turn = context.Value("q", 0, lock=False)
        self.turned = context.Condition()
        self.wrote = context.Value("b", 0, lock=False)
        self.flags = context.Value("q", 0, lock=False)


def _watch(processes: Sequence[BaseProcess]) -> None:
    """Wait for every worker to end; raise for the first one that failed."""
    from multiprocessing.connection import wait

    running = {process.sentinel: process for process in processes}
    while running:
        for sentinel in wait(list(running)):
            process = running.pop(sentinel)  # type: ignore[arg-type]  # a sentinel is an int
            process.join()
            if process.exitcode == _READER_GONE:
                raise BrokenPipeError
            if process.exitcode != 0:
                raise OutputError(f"a parse worker {_ended(process.exitcode)}: {_STOPPED}")


_STOPPED = "the records stop after the last pages it wrote"


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended with exit code {code}"


def _work(
    shared: _Shared,
    chunks: int,
    make: Callable[[int], Chunk],
    frame: Frame,
    out: int,
    err: int,
    parent: int,
) -> None:
    """A worker: take chunks until none is left, writing each in its turn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    ahead: dict[int, Chunk] = {}
    try:
        while os.getppid() == parent:
            with shared.next.get_lock():
                number = shared.next.value
                shared.next.value += 1
            if number >= chunks:
                break
            ahead[number] = make(number)
            _write_ready(shared, ahead, frame, (out, err, parent), _SETTINGS.parse_chunks_ahead)
        _write_ready(shared, ahead, frame, (out, err, parent), 1)
    except BrokenPipeError:
        os._exit(_READER_GONE)
    except _ParentGone:
        os._exit(1)  # nobody is left to stop this worker, nor to read what it says


class _ParentGone(Exception):
    """The parent died while this worker waited for its turn: raised, so that the
    condition's lock is let go on the way out and the other workers can take it and
    see the same, where exiting in place would keep it held for good."""


def _write_ready(
    shared: _Shared,
    ahead: dict[int, Chunk],
    frame: Frame,
    where: tuple[int, int, int],
    wait_for: int,
) -> None:
    """Write the chunks of *ahead* whose turn has come to *where* (stdout, stderr; the
    parent's pid); wait for turns while *ahead* holds *wait_for* chunks or more.

    The turn is the lock on the output: its holder writes without holding the
    condition's lock, so that a worker waiting for its turn still wakes up to look
    whether its parent is there while a slow reader holds the writer up.
    """
    out, err, parent = where
    while ahead:
        with shared.turned:
            while shared.turn.value not in ahead:
                if len(ahead) < wait_for:
                    return
                woke = shared.turned.wait(_SETTINGS.parse_watch_interval)
                if not woke and os.getppid() != parent:
                    raise _ParentGone
            number = shared.turn.value
        _write_chunk(shared, ahead.pop(number), frame, out, err)
        with shared.turned:
            shared.turn.value = number + 1
            shared.turned.notify_all()


def _write_chunk(shared: _Shared, chunk: Chunk, frame: Frame, out: int, err: int) -> None:
    if chunk.err:
        # As this process's sys.stderr would write it (it is the parent's, inherited).
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        _write_all(err, chunk.err.encode(encoding, "backslashreplace"))
    if chunk.out:
        _write_all(out, frame(chunk.out, not shared.wrote.value))
        shared.wrote.value = 1
    shared.flags.value |= chunk.flags


def _write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd*, waiting for room where it does not block (a
    non-blocking pipe that a parent process set up)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            import select

            select.select([], [fd], [])
