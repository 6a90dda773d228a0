"""Riding out a lost database: telling a database that went away (a restart, a
failover, a dropped connection, a locked or full SQLite file) from a refusal tied to
one page's data, and waiting a bounded time for it to come back.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from scraper.config import CrawlTuning
from scraper.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["database_lost", "wait_for_database"]

#: Waits between attempts to reach a lost database: from the first, doubling to the last.
_TUNING = CrawlTuning()


def database_lost(error: BaseException) -> bool:
    """True when *error* says the database itself is unreachable or unusable for now
    (a restart, a dropped connection, a locked or full SQLite file), as opposed to a
    refusal tied to one page's data."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, OperationalError | InterfaceError):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def wait_for_database(
    engine: Engine, error: Exception, *, budget: float, stop: threading.Event
) -> None:
    """Return once *engine* answers again, trying for *budget* seconds at most.

    Raises StoreError naming the last failure when it does not (the crawl then ends
    with exit code 1), or the failure itself when it is not a lost database.
    """
    import sqlalchemy as sa

    deadline = time.monotonic() + budget
    pause = _TUNING.database_retry_first
    last: BaseException = error
    while not stop.is_set():
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return
        except Exception as failure:
            if not database_lost(failure):
                raise
            last = failure
        left = deadline - time.monotonic()
        if left <= 0:
            break
        stop.wait(min(pause, left))
        pause = min(pause * 2, _TUNING.database_retry_longest)
    detail = str(getattr(last, "orig", None) or last).strip().splitlines()
    raise StoreError(
        f"lost the database and could not reach it again within {budget:g} s: "
        f"{detail[0] if detail else type(last).__name__}"
    ) from error
