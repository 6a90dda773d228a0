"""Processes as Linux's ``/proc`` shows them, for the tests of worker processes: who
a process's children are, whether one still runs, waiting for some to end."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or
    None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):  # ended meanwhile
        return None


def children(parent: int, *, zombies: bool = True) -> list[int]:
    """The processes whose parent is *parent*, read from every process's ``stat`` (a
    thread's ``children`` list can miss a child that is being forked); without
    *zombies*, those that ended and wait to be reaped are left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is not None and int(fields[1]) == parent and (zombies or fields[0] != "Z"):
            found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> set[int]:
    """The processes under *pid*: its children, theirs, and so on."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        new = set(children(todo.pop())) - found
        todo.extend(new)
        found |= new
    return found


def running(pid: int) -> bool:
    """Whether *pid* runs (a zombie has ended: it waits for whoever adopted it)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def still_running(pids: Iterable[int], seconds: float) -> list[int]:
    """Wait up to *seconds* for *pids* to end; return those still running then."""
    deadline = time.monotonic() + seconds
    alive = [pid for pid in pids if running(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [pid for pid in alive if running(pid)]
    return alive
