"""Files given as input (saved pages, WARC files, the jobs file): checked before they
are opened, so a FIFO, a device such as ``/dev/zero`` or a huge file is refused with
one line instead of blocking for ever or filling the memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scraper.config import MAX_INPUT_FILE_BYTES
from scraper.errors import UsageError

__all__ = ["NO_SUCH_FILE", "check_input_file", "input_file_problem"]

#: What ``input_file_problem`` says of a path that is not there.
NO_SUCH_FILE = "no such file or folder"


def input_file_problem(path: str | os.PathLike[str], max_bytes: int | None) -> str | None:
    """Return why *path* cannot be read as an input file, or None when it can.

    Looks without opening it (opening a FIFO blocks until a writer comes): it must
    exist, be a regular file and, with *max_bytes*, be at most that large.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return NO_SUCH_FILE
    except OSError as error:
        return error.strerror or str(error)
    except ValueError:  # a NUL in the name
        return "not a file name (it holds a NUL character)"
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or socket"
        return f"not a regular file ({kind})"
    if max_bytes is not None and info.st_size > max_bytes:
        return f"larger than {max_bytes:,} bytes ({info.st_size:,}; MAX_INPUT_FILE_BYTES)"
    return None


def check_input_file(
    path: str | os.PathLike[str], *, max_bytes: int | None = MAX_INPUT_FILE_BYTES
) -> Path:
    """Return *path* as a Path when it is a readable input file (see
    ``input_file_problem``); raise UsageError naming it otherwise."""
    problem = input_file_problem(path, max_bytes)
    if problem is not None:
        raise UsageError(f"{os.fspath(path)}: {problem}")
    return Path(path)
