"""Which way a reparse runs: a plain SQLite file through ``reparse_run.reparse_file``
(``sqlite3``; SQLAlchemy imported only once a page must be written), anything else
through ``reparse.reparse`` on an engine. Apart from both so that neither imports the
other, and so that this choice is the store's, not its callers'.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from scraper.store.lite import sqlite_file
from scraper.store.reparse_run import Progress, ReparseReport, Writer, reparse_file

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["reparse_archive"]


def reparse_archive(
    url: str,
    open_engine: Callable[[], Engine],
    *,
    engine_open: bool = False,
    progress: Progress | None = None,
    everything: bool = False,
    workers: int = 1,
) -> ReparseReport:
    """Reparse the archive at *url* (``reparse.reparse``'s rules): an existing plain
    SQLite file at the newest schema through ``reparse_file`` (SQLAlchemy imported only
    once a page must be written), anything else through the engine ``open_engine()``
    gives, which migrates it first. With *engine_open* (its engine is open already),
    always through the engine. Raises StoreError naming the database.
    """
    path = None if engine_open else sqlite_file(url)
    if path is not None and os.path.isfile(path):

        def writer() -> Writer:
            from scraper.store.reparse import EngineWriter

            return EngineWriter(open_engine())

        found = reparse_file(
            path, writer, progress=progress, everything=everything, workers=workers
        )
        if found is not None:
            return found
    from scraper.store.reparse import reparse

    return reparse(open_engine(), progress=progress, everything=everything, workers=workers)
