"""Naming crawling processes, and telling whether one on this machine is still alive
(a ``kill -9`` leaves its leases and its ``running`` run behind)."""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["owner_is_dead", "pid_alive", "worker_owner"]


def worker_owner() -> str:
    """Return a lease owner name for this process: ``hostname:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    """Return False only when no process *pid* exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def owner_is_dead(owner: str | None) -> bool:
    """Return True when *owner* (``hostname:pid:...``) is a process of this machine
    that has ended. Owners on other machines are never declared dead here."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))
