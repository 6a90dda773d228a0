"""A stop asked by a signal waits for the database transaction in hand.

Python runs a signal handler in the main thread between two bytecodes, wherever that
thread is. A stop raised there from inside the database layer (SQLAlchemy running a
statement, the driver returning its rows) makes SQLAlchemy invalidate the connection
while the traceback still holds the driver's cursor: SQLite cannot close a
connection whose statement is alive, so that connection keeps its write lock until
the traceback goes, and every write made while stopping (the URL given back to the
frontier, the run closed as interrupted, the job lock released) waits the whole busy
timeout for it, then fails. So a transaction is a shielded section: a stop that
arrives inside one is raised as the section ends, after the commit or the rollback.

Only the main thread's sections count (signals are handled nowhere else). A
transaction lasts milliseconds; the longest wait this adds is one page's store, or a
statement waiting on another process's lock.
"""

from __future__ import annotations

import threading
from types import TracebackType

__all__ = ["Shielded", "Unshielded", "raise_or_defer"]

_MAIN = threading.main_thread().ident


class _Pending:
    """The main thread's shield depth and the stop that arrived inside it."""

    depth = 0
    stop: BaseException | None = None


class Shielded:
    """Context manager: a stop raised by ``raise_or_defer`` in the block is raised at
    its end instead (at the end of the outermost block, when they nest)."""

    __slots__ = ("_counted",)

    def __init__(self) -> None:
        self._counted = False

    def __enter__(self) -> None:
        if threading.get_ident() == _MAIN:
            _Pending.depth += 1
            self._counted = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._counted:
            return
        self._counted = False
        _Pending.depth -= 1
        stop = _Pending.stop
        if _Pending.depth == 0 and stop is not None:
            _Pending.stop = None
            raise stop


class Unshielded:
    """Context manager, inside a shielded section: the block is no database work (it
    waits for a worker process, say), so a stop is raised in it at once, one that
    arrived before it included; the section is shielded again after it."""

    __slots__ = ("_depth",)

    def __init__(self) -> None:
        self._depth: int | None = None

    def __enter__(self) -> None:
        if threading.get_ident() != _MAIN:
            return
        self._depth, _Pending.depth = _Pending.depth, 0
        stop = _Pending.stop
        if stop is not None:
            _Pending.stop = None
            self.__exit__(None, None, None)
            raise stop

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._depth is not None:
            _Pending.depth, self._depth = self._depth, None


def raise_or_defer(stop: BaseException) -> None:
    """From a signal handler: raise *stop* now, or at the end of the shielded section
    the main thread is in (the first stop is kept when several arrive)."""
    if _Pending.depth == 0:
        raise stop
    if _Pending.stop is None:
        _Pending.stop = stop
