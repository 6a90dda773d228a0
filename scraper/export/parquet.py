"""Records as a Parquet file (pyarrow, the optional ``parquet`` extra), typed for data tools.

Each record keeps its shape: nested objects become structs, lists (tags, a
history's observations) lists, integers stay integers when some are null
(pandas reads them as ``Int64`` / ``int64[pyarrow]`` rather than floats),
booleans booleans. The record's ``date`` and a history's ``observed_at`` /
``fetched_at`` become UTC timestamps (a date alone is its midnight UTC; a time
without an offset is read as UTC), and the page's own date text stays beside it
as ``date_text``.

No site's fields are named here. The schema is read from the records themselves,
so whatever keys a site's records carry come out typed: a first pass over the
records infers each batch's Arrow schema and unifies them (a field null in one
batch and an integer in another is an integer; integers and fractions are
fractions), a second pass writes the batches under that one schema. Both passes
hold one batch at a time, so memory stays flat whatever the archive's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scraper.config import ExportSettings
from scraper.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BATCH_RECORDS", "write_parquet"]

#: Records converted and written at a time.
BATCH_RECORDS = ExportSettings().parquet_batch_records
#: Keys holding a point in time, wherever they sit in a record.
_TIME_KEYS = frozenset({"date", "observed_at", "fetched_at"})


def _import_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as error:
        raise UsageError(
            "format parquet needs pyarrow: pip install 'review-archiver[parquet]'",
            parameter="format",
        ) from error
    return pyarrow


def write_parquet(
    records: Callable[[], Iterable[Mapping[str, Any]]],
    out: Path,
    *,
    batch: int = BATCH_RECORDS,
) -> int:
    """Write the records that *records()* yields to *out* as Parquet; return how many.

    *records* is called twice (a pass to learn the schema, a pass to write) and
    must yield the same records both times. Raises UsageError when pyarrow is
    missing or a field holds values of kinds no one column can hold.
    """
    pa = _import_pyarrow()
    schema = _schema(pa, records, batch)
    count = 0
    with pa.parquet.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in _batches(records(), batch):
            try:
                table = pa.Table.from_pylist(rows, schema=schema)
            except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
                raise UsageError(
                    f"format parquet: a record does not fit: {error}", parameter="format"
                ) from error
            writer.write_table(table)
            count += len(rows)
    return count


def _schema(pa: Any, records: Callable[[], Iterable[Mapping[str, Any]]], batch: int) -> Any:
    """The one schema every batch fits: each batch's inferred schema, unified."""
    schema = None
    for rows in _batches(records(), batch):
        found = pa.Table.from_pylist(rows).schema
        try:
            schema = found if schema is None else _unify(pa, schema, found)
        except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
            raise UsageError(
                f"format parquet: records disagree on a field's type: {error}",
                parameter="format",
            ) from error
    if schema is None:  # no records: still a table readers can open
        return pa.schema([("id", pa.string())])
    # A field no record filled keeps Arrow's null type: it unifies with any type
    # when exports are read together, where a guessed type would clash.
    return schema


def _unify(pa: Any, first: pa.Schema, second: pa.Schema) -> pa.Schema:
    return pa.unify_schemas([first, second], promote_options="permissive")


def _batches(records: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for record in records:
        rows.append(_row(record))
        if len(rows) >= size:
            yield rows
            rows = []
    if rows:
        yield rows


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record with its times as UTC datetimes (and the page's date text kept)."""
    row: dict[str, Any] = _with_times(record)
    if "date" in record:
        row["date_text"] = record["date"]
    return row


def _with_times(value: Any, key: str | None = None) -> Any:
    if isinstance(value, Mapping):
        return {name: _with_times(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_with_times(item, key) for item in value]
    if key in _TIME_KEYS and isinstance(value, str):
        return _utc(value)
    return value


def _utc(text: str) -> datetime | None:
    """*text* (ISO 8601) as an aware UTC datetime; a date alone is its midnight UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None  # not a time: the text is still there as date_text
        moment = datetime(day.year, day.month, day.day)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
