"""Record writers: JSON Lines (the contract, as ``reviews parse`` prints it) and CSV.

Both take any iterable of contract records and write them as they come, so an
export of millions of reviews holds one record in memory at a time.

CSV is for spreadsheets and data tools: UTF-8 (a byte-order mark only when asked
for, as Excel wants it: Python's csv module and pandas would read it into the first
column's name), one header row, nested objects flattened into their own columns,
tags as a JSON array, the same text as ``reviews_view.tags``. The first columns are
the registered sites' own (``Site.csv_columns``: a site's own record keys), empty
for other sites' records;
then the v2 keys every record has (``V2_COLUMNS``), a name already given once
(``url``, ``date``, ``tags``) not repeated.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

from scraper.jsontext import record_text
from scraper.sites import RULES, site_for_record

__all__ = ["CSV_COLUMNS", "V2_COLUMNS", "csv_row", "tags_cell", "write_csv", "write_jsonl"]

#: The v2 keys, flattened: every record has them, whatever its site.
V2_COLUMNS: tuple[str, ...] = (
    "site",
    "id",
    "url",
    "item_name",
    "item_type",
    "item_url",
    "author_name",
    "author_url",
    "author_image_url",
    "date",
    "title",
    "rating_value",
    "rating_best",
    "rating_worst",
    "tags",
    "reactions",
    "body",
    "source",
)

CSV_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([*(column for site in RULES for column in site.csv_columns), *V2_COLUMNS])
)


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line (UTF-8 text, not ASCII-escaped); return the count."""
    count = 0
    for record in records:
        out.write(record_text(record))
        out.write("\n")
        count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _v2_cells(record: Mapping[str, Any]) -> dict[str, Any]:
    item, author = record.get("item") or {}, record.get("author") or {}
    rating = record.get("rating") or {}
    reactions = record.get("reactions")
    return {
        "site": record.get("site"),
        "id": record.get("id"),
        "url": record.get("url"),
        "item_name": item.get("name"),
        "item_type": item.get("type"),
        "item_url": item.get("url"),
        "author_name": author.get("name"),
        "author_url": author.get("url"),
        "author_image_url": author.get("image_url"),
        "date": record.get("date"),
        "title": record.get("title"),
        "rating_value": rating.get("value"),
        "rating_best": rating.get("best"),
        "rating_worst": rating.get("worst"),
        "tags": tags_cell(record.get("tags")),
        "reactions": json.dumps(reactions, ensure_ascii=False) if reactions else None,
        "body": record.get("body"),
        "source": record.get("source"),
    }


def tags_cell(tags: Iterable[str] | None) -> str:
    """Return tags as one cell: a JSON array, as the view (``reviews_view.tags``) has them."""
    return json.dumps(list(tags or ()), ensure_ascii=False)


def csv_row(record: Mapping[str, Any]) -> list[Any]:
    """Return *record* as a CSV row in ``CSV_COLUMNS`` order (empty cells for null)."""
    values = site_for_record(str(record.get("site"))).csv_cells(record)
    values.update(_v2_cells(record))
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


def write_csv(records: Iterable[Mapping[str, Any]], out: IO[str], *, bom: bool = False) -> int:
    """Write a header row then one row per record; return the number of records.

    With *bom*, the text starts with a byte-order mark (Excel's cue for UTF-8).
    *out* must be opened with ``newline=""`` (the csv module writes CRLF line ends
    and keeps line breaks inside quoted review text).
    """
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record))
        count += 1
    return count
