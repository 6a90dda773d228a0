"""Inputs given by a user, checked before they are used: files (saved pages, WARC files,
the jobs file), checked before they are opened, so a FIFO, a device such as
``/dev/zero`` or a huge file is refused with one line instead of blocking for ever or
filling the memory; and the URL a saved page was served from.

Light to import (no settings, no dataclasses): ``reviews parse`` uses it at start-up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from scraper.errors import UsageError

__all__ = ["NO_SUCH_FILE", "check_input_file", "check_page_url", "input_file_problem"]

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


def check_input_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Path:
    """Return *path* as a Path when it is a readable input file of at most *max_bytes*
    (default ``MAX_INPUT_FILE_BYTES``; see ``input_file_problem``); raise UsageError
    naming it otherwise."""
    if max_bytes is None:
        from scraper.config import MAX_INPUT_FILE_BYTES

        max_bytes = MAX_INPUT_FILE_BYTES
    problem = input_file_problem(path, max_bytes)
    if problem is not None:
        raise UsageError(f"{os.fspath(path)}: {problem}")
    return Path(path)


def check_page_url(url: str) -> str:
    """Return *url* when it is an absolute http(s) URL; raise UsageError naming ``url``
    otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError as error:
        raise UsageError(f"url: {url!r} is not a URL ({error})", parameter="url") from None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise UsageError(f"url: {url!r} is not an absolute http(s) URL", parameter="url")
    return url
