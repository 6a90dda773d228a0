"""The query/export part of ``scraper.api`` (re-exported there; see its docstring).

Each function opens the database named by *db* (a path, a URL, or None for
``$REVIEWS_DB`` / ``./reviews.db``), does one job and closes it. Nothing heavy is
imported at module level, so ``scraper.api`` stays fast to import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scraper.config import database_url
from scraper.errors import UsageError

if TYPE_CHECKING:
    from scraper.export.sqlshell import SqlResult
    from scraper.export.warc import WarcExport
    from scraper.export.warcimport import WarcImport
    from scraper.store.read import ReviewQuery

__all__ = [
    "archive_stats",
    "export_parquet",
    "export_records",
    "export_warc",
    "import_warc",
    "query_reviews",
    "run_sql",
]


def query_reviews(
    db: str | None, query: ReviewQuery | None = None, *, history: bool = False
) -> Iterator[dict[str, Any]]:
    """Stream the contract records *query* selects (all reviews without one).

    With *history* each record gets ``observations`` (every capture, in time
    order). Raises UsageError for a bad search, StoreError when the database fails.
    """
    from scraper.store.read import read_records

    yield from read_records(database_url(db), query, history=history)  # never creates one


def export_records(
    db: str | None,
    out: IO[str],
    *,
    format: str = "jsonl",
    query: ReviewQuery | None = None,
    history: bool = False,
    bom: bool = False,
) -> int:
    """Write the selected reviews to *out* as ``jsonl`` or ``csv``; return how many.

    With *bom*, CSV starts with a byte-order mark (for Excel).
    Raises UsageError for an unknown format, or *history* with CSV.
    """
    from scraper.export.tabular import write_csv, write_jsonl

    if format not in ("jsonl", "csv"):
        raise UsageError(f"--format: {format!r} is not jsonl or csv")
    if history and format == "csv":
        raise UsageError("--history needs --format jsonl or parquet (CSV has no place for it)")
    records = query_reviews(db, query, history=history)
    return write_jsonl(records, out) if format == "jsonl" else write_csv(records, out, bom=bom)


def export_parquet(
    db: str | None, out: Path, *, query: ReviewQuery | None = None, history: bool = False
) -> int:
    """Write the selected reviews to the Parquet file *out*; return how many.

    Reads the selection twice (its schema, then its rows), in constant memory.
    Raises UsageError when pyarrow is missing, StoreError when the database fails.
    """
    from scraper.export.parquet import write_parquet

    return write_parquet(lambda: query_reviews(db, query, history=history), out)


def export_warc(
    db: str | None,
    out: Path,
    *,
    query: ReviewQuery | None = None,
    max_size: int | None = None,
    cdxj: bool = False,
) -> WarcExport:
    """Write stored raw pages as WARC files starting at *out*; return files and counts.

    With a *query* that filters, only the raw pages its reviews were seen on; with
    *cdxj*, a CDXJ index beside each file.
    Raises StoreError when the database fails, OSError when a file cannot be written.
    """
    from scraper.export.warc import DEFAULT_MAX_SIZE
    from scraper.export.warc import export_warc as write_warc
    from scraper.store.engine import open_engine
    from scraper.store.read import raw_pages_of

    engine = open_engine(database_url(db), create=False)
    try:
        pages = None
        if query is not None and not query.is_empty():
            pages = raw_pages_of(query, engine.dialect.name)
        size = max_size or DEFAULT_MAX_SIZE
        return write_warc(engine, out, max_size=size, pages=pages, cdxj=cdxj)
    finally:
        engine.dispose()


def import_warc(db: str | None, paths: Sequence[Path]) -> WarcImport:
    """Ingest the review pages found in WARC files; return counts and named errors.

    Files that cannot be read are named in the report's errors and the others
    go on. Raises StoreError when the database fails.
    """
    from scraper.export.warcimport import import_warcs
    from scraper.store.engine import open_engine

    engine = open_engine(database_url(db))
    try:
        return import_warcs(engine, paths)
    finally:
        engine.dispose()


def archive_stats(db: str | None) -> dict[str, Any]:
    """Return the archive's counts (see ``scraper.export.stats.archive_stats``)."""
    from scraper.export.stats import archive_stats as count

    return count(database_url(db))


@contextmanager
def run_sql(db: str | None, sql: str, *, timeout: float | None = None) -> Iterator[SqlResult]:
    """Run one read-only SQL statement for at most *timeout* seconds (default
    ``SQL_TIMEOUT``); yield its columns and streaming rows.

    Raises UsageError when the statement writes (refused), runs too long or fails;
    StoreError when the database is missing or unusable.
    """
    from scraper.config import SQL_TIMEOUT
    from scraper.export.sqlshell import read_only_sql
    from scraper.store.engine import open_engine

    engine = open_engine(database_url(db), create=False)
    try:
        with read_only_sql(engine, sql, timeout=timeout or SQL_TIMEOUT) as result:
            yield result
    finally:
        engine.dispose()
