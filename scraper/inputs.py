"""Inputs given by a user, checked before they are used: files (saved pages, WARC files,
the jobs file), checked before they are opened, so a FIFO, a device such as
``/dev/zero`` or a huge file is refused with one line instead of blocking for ever or
filling the memory; and the URL a saved page was served from.

Light to import (stdlib and the settings module only): ``reviews parse`` uses it at
start-up.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from scraper.config import MAX_INPUT_FILE_BYTES
from scraper.errors import UsageError

__all__ = [
    "NO_SUCH_FILE",
    "check_input_file",
    "check_page_url",
    "expand_paths",
    "input_file_problem",
]

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
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def check_input_file(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Path:
    """Return *path* as a Path when it is a readable input file of at most *max_bytes*
    (default ``MAX_INPUT_FILE_BYTES``; see ``input_file_problem``); raise UsageError
    naming it otherwise."""
    problem = input_file_problem(path, MAX_INPUT_FILE_BYTES if max_bytes is None else max_bytes)
    if problem is not None:
        raise UsageError(f"{os.fspath(path)}: {problem}")
    return Path(path)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Return the saved pages *paths* name: each file as given, each folder's ``*.html``
    files sorted by name.

    Raises UsageError naming the first path that does not exist, is not a readable
    regular file (a FIFO would block for ever), is larger than
    ``MAX_INPUT_FILE_BYTES``, or is a folder holding no ``*.html`` page.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if os.path.isdir(path):  # False, not an error, for a name too long to look up
            pages = sorted(page for page in path.glob("*.html") if page.is_file())
            if not pages:
                raise UsageError(f"{os.fspath(item)}: folder holds no *.html page")
            found.extend(pages)
        else:
            found.append(check_input_file(item))
    return found


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
