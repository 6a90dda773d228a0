"""A reparse's loop, apart from how pages are written: batches parsed (here or in
worker processes) go through a ``Writer``, and what changed is counted.

``reparse.reparse`` runs it on a SQLAlchemy engine. On a plain SQLite file at the
newest schema, ``reparse_file`` runs it without SQLAlchemy: the pages are counted
and batched through ``sqlite3``, read and parsed by ``reparse_lite.read_batch``,
and the engine (SQLAlchemy's import alone is about a sixth of an unchanged
archive's reparse of 600 pages) is opened only when a page must be written: an
unchanged archive is read, parsed and compared by a process that never imports it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from scraper.config import StoreSettings
from scraper.store import reparse_lite
from scraper.store.lite import connect_current, file_error
from scraper.store.parsing import PARSER_VERSION, Reparsed
from scraper.store.workers import parallel_map

__all__ = [
    "Progress",
    "ReparseReport",
    "Writer",
    "parse_batches",
    "reparse_file",
    "tally",
]

_BATCH = StoreSettings().reparse_batch_pages
_BUSY_WRITER = StoreSettings().reparse_busy_writer

#: Called with (pages done, pages in total) after each page.
Progress = Callable[[int, int], None]

_Job = TypeVar("_Job")


@dataclass(frozen=True, slots=True)
class ReparseReport:
    """What a reparse changed.

    ``pages_changed`` counts pages whose kind, review count or error changed, or
    whose reviews changed; ``reviews_changed`` reviews that are new or whose latest
    values changed; ``new_errors`` / ``fixed_errors`` pages that now fail / now parse;
    ``skipped`` pages left alone because the current parser version read them;
    ``written`` pages whose records went through the store again (the others read
    what they stored already); ``failed`` one line per page that could not be reparsed
    (a damaged body, rows the database refused), each left as it was.
    """

    pages: int = 0
    pages_changed: int = 0
    reviews_changed: int = 0
    new_errors: int = 0
    fixed_errors: int = 0
    skipped: int = 0
    written: int = 0
    failed: tuple[str, ...] = ()


class Writer(Protocol):
    """Where a reparse writes (``reparse.EngineWriter``)."""

    def versions(self, ids: list[int]) -> None:
        """Note that the current parser read pages *ids*, whose records did not change."""

    def page(self, done: Reparsed) -> tuple[dict[str, int], str | None]:
        """Store *done*'s new records; return what changed, and why the database
        refused this page's rows (then nothing of it is written), or None."""


def parse_batches(
    read: Callable[[_Job], list[Reparsed]],
    jobs: Iterable[_Job],
    *,
    workers: int,
    total: int,
    totals: Counter[str],
) -> Iterator[list[Reparsed]]:
    """Yield ``read(job)`` for each job in order: here, or with *workers* > 1 in that
    many processes, this one among them while *totals* say it has little to write."""
    if workers <= 1 or total <= _BATCH:
        return map(read, jobs)

    def idle() -> bool:
        return totals["written"] * _BUSY_WRITER <= totals["pages"]

    return parallel_map(read, jobs, workers - 1, share=idle)


def tally(
    parsed: Iterable[list[Reparsed]],
    writer: Callable[[], Writer],
    totals: Counter[str],
    *,
    total: int,
    progress: Progress | None,
) -> list[str]:
    """Write what each parsed batch changed through ``writer()`` (asked for only when
    something must be written), count it in *totals*; return the pages that failed."""
    failed: list[str] = []
    for batch in parsed:
        unchanged = [
            done.page.id
            for done in batch
            if done.outcome is None and done.outdated and done.failure is None
        ]
        if unchanged:
            writer().versions(unchanged)
        for done in batch:
            if done.failure is not None:
                failed.append(f"raw page {done.page.id}: {done.failure}")
            elif done.outcome is not None:
                counts, refused = writer().page(done)
                if refused is not None:
                    failed.append(f"raw page {done.page.id}: refused: {refused}")
                else:
                    totals.update(counts)
                    totals["written"] += 1
            totals["pages"] += 1
            if progress is not None:
                progress(totals["pages"], total)
    return failed


_OUTDATED = "parser_version IS NULL OR parser_version != ?"
_COUNT_SQL = "SELECT count(*) FROM raw_pages"
_IDS_SQL = "SELECT id FROM raw_pages WHERE ({todo}) AND id > ? ORDER BY id LIMIT ?"


def reparse_file(
    path: str,
    open_writer: Callable[[], Writer],
    *,
    progress: Progress | None = None,
    everything: bool = False,
    workers: int = 1,
) -> ReparseReport | None:
    """Reparse the SQLite archive file *path* as ``reparse.reparse`` does, reading it
    through ``sqlite3``; ``open_writer()`` gives what writes go through
    (``reparse.EngineWriter``), asked for once, when a page must first be written.
    Return None, having done nothing, when the file's schema is not the newest
    (``reparse.reparse`` migrates it first).

    Raises StoreError naming the file when it cannot be read or written.
    """
    connection = connect_current(path)
    if connection is None:
        return None
    opened: list[Writer] = []

    def writer() -> Writer:
        if not opened:
            opened.append(open_writer())
        return opened[0]

    totals: Counter[str] = Counter()
    try:
        todo, params = ("1", ()) if everything else (_OUTDATED, (PARSER_VERSION,))
        total = connection.execute(f"{_COUNT_SQL} WHERE {todo}", params).fetchone()[0]
        skipped = connection.execute(_COUNT_SQL).fetchone()[0] - total
        jobs = ((path, ids) for ids in _batches(connection, todo, params))
        parsed = parse_batches(
            reparse_lite.read_batch, jobs, workers=workers, total=total, totals=totals
        )
        failed = tally(parsed, writer, totals, total=total, progress=progress)
    except sqlite3.Error as error:
        raise file_error(path, error) from error
    finally:
        connection.close()
        reparse_lite.close_connections()
    return ReparseReport(**totals, skipped=skipped, failed=tuple(failed))


def _batches(
    connection: sqlite3.Connection, todo: str, params: tuple[str, ...]
) -> Iterator[list[int]]:
    """Yield the ids of the pages to reparse, in id order, a batch per query."""
    sql = _IDS_SQL.format(todo=todo)
    last_id = 0
    while ids := [row[0] for row in connection.execute(sql, (*params, last_id, _BATCH))]:
        yield ids
        last_id = ids[-1]
