"""Exports for data tools: Parquet read back by pandas with the right dtypes, CSV that
Python's csv module reads as it is, and a history that says what each capture held."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HISTORY
from test_query_pages import build_archive

from scraper.cli import ExitCode, main
from scraper.schema.tables import raw_pages
from scraper.store.engine import open_engine


def arrow() -> tuple[Any, Any, Any]:
    """pyarrow, pandas and pyarrow.parquet, imported by the tests that read with them
    (not at collection: pandas alone costs most of a second)."""
    return (
        pytest.importorskip("pyarrow"),
        pytest.importorskip("pandas"),
        pytest.importorskip("pyarrow.parquet"),
    )


def _archive(db_url: str) -> None:
    """Three dated captures of one page (legacy and current) and three more entries."""
    assert main(["import", str(HISTORY), "--db", db_url, "--fetched-at-from", "name"]) == 0
    build_archive(db_url).dispose()


def _jsonl(db_url: str, *extra: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "export", "--db", db_url, *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _as_exported(value: Any, key: str | None = None) -> Any:
    """A Parquet value turned back into the JSON it came from: times as ISO text; a
    struct has every key any record had, so keys this record lacked are dropped
    when null (a JSON null of the record's own stays where the record has it)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_as_exported(item) for item in value]
    if isinstance(value, dict):
        return {k: _as_exported(v, k) for k, v in value.items()}
    return value


def _matches(row: Any, record: Any) -> bool:
    if isinstance(record, dict):
        return (
            isinstance(row, dict)
            and all(_matches(row.get(k), v) for k, v in record.items())
            and all(row[k] is None for k in row.keys() - record.keys())
        )
    if isinstance(record, list):
        return (
            isinstance(row, list)
            and len(row) == len(record)
            and all(_matches(a, b) for a, b in zip(row, record, strict=True))
        )
    return bool(row == record)


@pytest.mark.slow
def test_parquet_holds_the_records_typed_and_reads_back_in_pandas(
    db_url: str, tmp_path: Path
) -> None:
    pa, pd, pq = arrow()
    _archive(db_url)
    out = tmp_path / "reviews.parquet"
    argv = ["export", "--db", db_url, "--format", "parquet", "--history", "--out", str(out)]
    assert main(argv) == 0
    assert not out.with_name("reviews.parquet.partial").exists()
    records = _jsonl(db_url, "--history")
    table = pq.read_table(out)
    assert len(records) == table.num_rows == 10
    for row, record in zip(table.to_pylist(), records, strict=True):
        assert row["date"] == _utc(record["date"]) and row.pop("date_text") == record["date"]
        row["date"] = record["date"]
        assert _matches(_as_exported(row), record), (row, record)
    schema = table.schema
    assert schema.field("date").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tags").type == pa.list_(pa.string())
    assert pa.types.is_struct(schema.field("entry").type)
    history = schema.field("observations").type.value_type
    assert history.field("observed_at").type == pa.timestamp("us", tz="UTC")
    assert history.field("helpful_count").type == pa.int64()
    assert history.field("raw_page").type.field("fetched_at").type == pa.timestamp("us", tz="UTC")
    for backend in ("numpy_nullable", "pyarrow"):
        frame = pd.read_parquet(out, dtype_backend=backend)
        dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
        integer, boolean = (
            ("Int64", "boolean")
            if backend == "numpy_nullable"
            else (
                "int64[pyarrow]",
                "bool[pyarrow]",
            )
        )
        # Nullable integers stay integers (CSV gives pandas floats for these).
        assert frame["episodes_watched"].isna().any() and frame["episodes_watched"].notna().any()
        assert dtypes["episodes_watched"] == dtypes["mal_id"] == dtypes["score"] == integer
        assert dtypes["is_spoiler"] == dtypes["is_preliminary"] == boolean
        assert dtypes["date"] in ("datetime64[us, UTC]", "timestamp[us, tz=UTC][pyarrow]")
        by_id = frame.set_index("mal_id")
        assert int(by_id.loc[900003, "episodes_watched"]) == 3
        assert list(by_id.loc[900001, "tags"]) == ["Recommended"]
        assert by_id.loc[900001, "entry"]["title"] == "Paper Lanterns of Kestrel Bay"


@pytest.mark.slow  # a fresh interpreter exporting many records
def test_parquet_export_streams_in_batches_with_flat_memory(tmp_path: Path) -> None:
    arrow()  # skips without pyarrow, as the export itself needs it
    # In a fresh process: Arrow's pool reports its own high-water mark.
    script = """
import sys, tracemalloc
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from scraper.export.parquet import write_parquet

def records(count):
    for n in range(count):
        yield {"site": "example.org", "id": str(n), "rating": {"value": n % 5 + 1, "best": 5},
               "body": ("word%d " % n) * 400, "tags": ["a"] if n % 2 else [],
               "votes": None if n % 3 else n, "date": "2024-01-02"}

write_parquet(lambda: records(1500), Path(sys.argv[1]) / "warm.parquet")  # first-use costs
peaks = []
for count in (4000, 40000):
    out = Path(sys.argv[1]) / f"{count}.parquet"
    tracemalloc.start()
    written = write_parquet(lambda: records(count), out)
    peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    assert written == count == pq.read_metadata(out).num_rows
    assert pq.read_metadata(out).num_row_groups == count // 1000
print(peaks[0], peaks[1], pa.default_memory_pool().max_memory())
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    small, large, arrow_peak = (int(value) for value in done.stdout.split())
    # Ten times the records (about 110 MB of text) within the same memory.
    assert large < small * 1.5, (small, large)
    assert large < 40_000_000 and arrow_peak < 60_000_000, (large, arrow_peak)


@pytest.mark.slow
def test_csv_has_no_byte_order_mark_unless_asked_and_tags_as_a_json_array(
    sqlite_url: str, tmp_path: Path
) -> None:
    _archive(sqlite_url)
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    assert main(["export", "--db", sqlite_url, "--format", "csv", "--out", str(plain)]) == 0
    argv = ["export", "--db", sqlite_url, "--format", "csv", "--bom", "--out", str(excel)]
    assert main(argv) == 0
    assert excel.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    with plain.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert next(iter(rows[0])) == "mal_id"  # no '\ufeffmal_id'
    tags = {int(row["mal_id"]): json.loads(row["tags"]) for row in rows}
    assert tags == {record["mal_id"]: record["tags"] for record in _jsonl(sqlite_url)}
    assert tags[5001] == ["Recommended", "Well-written"]


@pytest.mark.slow
def test_history_says_what_each_capture_held_and_where_it_was_read(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(HISTORY), "--db", db_url, "--fetched-at-from", "name"]) == 0
    capsys.readouterr()
    history = {r["mal_id"]: r["observations"] for r in _jsonl(db_url, "--history")}[900001]
    assert [o["tags"] for o in history] == [[], [], ["Recommended"]]
    # Sub-scores are the site's own fields of a capture (legacy pages only).
    scores = [(o["extra"] or {}).get("scores") for o in history]
    assert [score["story"] if score else None for score in scores] == [6, 7, None]
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            pages = conn.execute(
                sa.select(raw_pages.c.id, raw_pages.c.final_url, raw_pages.c.fetched_at).order_by(
                    raw_pages.c.fetched_at
                )
            ).all()
    finally:
        engine.dispose()
    assert [o["raw_page"] for o in history] == [
        {"id": page.id, "url": page.final_url, "fetched_at": page.fetched_at.isoformat()}
        for page in pages
    ]
    assert [o["raw_page"]["fetched_at"] for o in history] == [
        "2021-03-01T00:00:00+00:00",
        "2022-05-01T00:00:00+00:00",
        "2026-02-01T00:00:00+00:00",
    ]


def test_parquet_needs_an_output_file(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", sqlite_url, "--format", "parquet"]) == ExitCode.USAGE
    assert "--format parquet needs --out FILE" in capsys.readouterr().err
