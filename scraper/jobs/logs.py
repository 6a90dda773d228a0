"""Log lines of scheduled work: on stderr, and in the job's log file when it has one.

Only the package's own loggers (``scraper.*``) are shown: the libraries' chatter
(Alembic, httpx) stays out of a cron log.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scraper.errors import ConfigError

__all__ = ["logging_to"]

FORMAT = "%(asctime)s %(levelname)s {who}: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def _same_file(stream: object, path: Path) -> bool:
    """True when *stream* already writes to *path* (cron's ``>> log 2>&1``)."""
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        return os.path.samestat(os.fstat(fileno), os.stat(path))
    except (AttributeError, OSError, ValueError):
        return False


def _check_log_target(path: Path) -> None:
    """Refuse a log file that is a FIFO, socket or folder: opening a FIFO with no
    reader blocks the run for ever (a device such as /dev/null is fine)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing: created on open (and an unreadable one fails there)
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISDIR(mode):
        raise ConfigError(f"log file {path}: not a regular file (a FIFO, socket or folder)")


@contextmanager
def logging_to(who: str, log_file: Path | None = None) -> Iterator[logging.Logger]:
    """Send ``scraper.*`` log lines (INFO and up) to stderr and *log_file* while the
    block runs; yield the package logger.

    The file is skipped when stderr already goes to it, so cron's redirection and the
    job's own log file never write each line twice. Raises ConfigError naming the
    file when it cannot be opened.
    """
    logger = logging.getLogger("scraper")
    formatter = logging.Formatter(FORMAT.format(who=who), DATE_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None and not _same_file(sys.stderr, log_file):
        _check_log_target(log_file)
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"log file {log_file}: cannot open it: {error}") from None
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    try:
        yield logger
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
