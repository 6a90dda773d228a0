"""Files written aside and renamed into place only once complete.

An export killed half-way must never leave a file that looks complete: each
output is written as ``<name>.partial``, renamed to its name when the whole
export succeeded, and removed when it failed (or was interrupted). A target that
is a device or a FIFO (``/dev/null``, a pipe to another program) is written to as it
is: renaming a finished file over it would replace the device itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import TracebackType

__all__ = ["PARTIAL_SUFFIX", "WrittenAside"]

PARTIAL_SUFFIX = ".partial"


class WrittenAside:
    """The outputs of one export: ``aside(path)`` names where to write *path* for now.

    Used as a context manager: on a clean exit every file is renamed to its final
    name (in the order they were begun); on an exception each ``.partial`` is
    removed and nothing is renamed. Renames raise OSError.
    """

    def __init__(self) -> None:
        self._targets: list[Path] = []

    def aside(self, target: Path) -> Path:
        """Register *target*; return the ``.partial`` path to write it to (or *target*
        itself when it is a device or FIFO, which is never renamed over)."""
        if _is_special(target):
            return target
        self._targets.append(target)
        return _partial(target)

    def __enter__(self) -> WrittenAside:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                for target in self._targets:
                    os.replace(_partial(target), target)
        finally:
            for target in self._targets:
                _partial(target).unlink(missing_ok=True)


def _partial(target: Path) -> Path:
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _is_special(target: Path) -> bool:
    """Return True when *target* exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
