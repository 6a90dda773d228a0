"""Files written aside and renamed into place only once complete.

An export killed half-way must never leave a file that looks complete: each
output is written as ``<name>.partial``, renamed to its name when the whole
export succeeded, and removed when it failed (or was interrupted).
"""

from __future__ import annotations

import os
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
        """Register *target*; return the ``.partial`` path to write it to."""
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
