"""Full-text indexing of a batch's new reviews in one statement (SQLite).

FTS5 writes the terms it holds in memory out as a new index segment before every
statement of the transaction (each opens a statement savepoint, which FTS5 answers
by flushing), and merges those segments again and again as the archive grows. The
trigger ``reviews_fts_ai`` indexes each page's reviews in the page's INSERT: one
segment per page. For a batch of pages, ``DeferredIndex`` drops that trigger inside
the batch's transaction, indexes the batch's new reviews with one INSERT ... SELECT
before the commit (one segment for the batch, about half the indexing cost of a real
page), and creates the trigger again, word for word: the schema is what it was, and
a rolled-back batch takes the drop back with it. Other connections never see the
trigger missing (SQLite's DDL is transactional; writers wait on the write lock).

A review is indexed before a later page of the batch changes it (``before_page``):
the update trigger removes a row's old text from the index, which must hold it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from scraper.store.fts import FTS_INSERT_TRIGGER, FTS_TABLE

__all__ = ["DeferredIndex"]

#: SQLite's largest rowid. A new row is numbered one past the largest row id, at
#: random below it once that one is taken: the rows past a mark are the new ones only
#: while ids are far from it (always, but for an archive that set such ids itself).
_MAX_ROWID = 2**63 - 1

_TRIGGER_SQL = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?"
_INDEX_FROM = (
    f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT id, body FROM reviews WHERE id > ? ORDER BY id"
)


class DeferredIndex:
    """The full-text indexing of one transaction's new reviews, done in one statement."""

    def __init__(self, connection: Connection) -> None:
        """Drop the insert trigger in *connection*'s transaction (SQLite), if it is there."""
        self._connection = connection
        found = connection.exec_driver_sql(_TRIGGER_SQL, (FTS_INSERT_TRIGGER,)).first()
        self._trigger: str | None = str(found[0]) if found is not None else None
        self._indexed = int(
            connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM reviews").scalar_one()
        )
        self._keys: set[tuple[str, str]] = set()
        if self._indexed > _MAX_ROWID // 2:
            self._trigger = None
        if self._trigger is not None:
            connection.exec_driver_sql(f"DROP TRIGGER {FTS_INSERT_TRIGGER}")

    def before_page(self, keys: Iterable[tuple[str, str]]) -> None:
        """Index what is pending when a review of the next page (by (site, key)) was
        stored earlier in the batch: the page may change its text."""
        keys = set(keys)
        if self._trigger is not None and not self._keys.isdisjoint(keys):
            self._flush()
        self._keys |= keys

    def finish(self) -> None:
        """Index the batch's new reviews and put the trigger back (before the commit)."""
        if self._trigger is None:
            return
        self._flush()
        self._connection.exec_driver_sql(self._trigger)
        self._trigger = None

    def _flush(self) -> None:
        self._connection.exec_driver_sql(_INDEX_FROM, (self._indexed,))
        self._indexed = int(
            self._connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM reviews"
            ).scalar_one()
        )
        self._keys = set()
