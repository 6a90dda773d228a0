"""Record writers: JSON Lines (the contract, as ``reviews parse`` prints it) and CSV.

Both take any iterable of contract records and write them as they come, so an
export of millions of reviews holds one record in memory at a time.

CSV is for spreadsheets: UTF-8 with a byte-order mark (so Excel detects the
encoding), one header row, the nested ``entry`` / ``user`` objects, reactions
and legacy sub-scores flattened into their own columns, tags joined with "; ".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

from scraper.records import REACTION_KINDS

__all__ = ["CSV_COLUMNS", "SCORE_KINDS", "TAG_SEPARATOR", "csv_row", "write_csv", "write_jsonl"]

#: Legacy sub-score kinds, anime and manga together (manga has art, anime animation/sound).
SCORE_KINDS: tuple[str, ...] = (
    "overall",
    "story",
    "animation",
    "sound",
    "art",
    "character",
    "enjoyment",
)
TAG_SEPARATOR = "; "

CSV_COLUMNS: tuple[str, ...] = (
    "mal_id",
    "url",
    "type",
    "entry_mal_id",
    "entry_type",
    "entry_title",
    "entry_url",
    "username",
    "user_url",
    "user_image_url",
    "date",
    "score",
    "tags",
    "is_spoiler",
    "is_preliminary",
    "episodes_watched",
    "chapters_read",
    *(f"reactions_{kind}" for kind in REACTION_KINDS),
    "helpful_count",
    *(f"scores_{kind}" for kind in SCORE_KINDS),
    "review",
    "layout",
)


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line (UTF-8 text, not ASCII-escaped); return the count."""
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def csv_row(record: Mapping[str, Any]) -> list[Any]:
    """Return *record* as a CSV row in ``CSV_COLUMNS`` order (empty cells for null)."""
    entry, user = record["entry"], record["user"]
    reactions = record.get("reactions") or {}
    scores = record.get("scores") or {}
    values: dict[str, Any] = {
        **{key: record.get(key) for key in CSV_COLUMNS if key in record},
        "entry_mal_id": entry["mal_id"],
        "entry_type": entry["type"],
        "entry_title": entry["title"],
        "entry_url": entry["url"],
        "username": user["username"],
        "user_url": user["url"],
        "user_image_url": user.get("image_url"),
        "tags": TAG_SEPARATOR.join(record.get("tags") or ()),
    }
    values.update({f"reactions_{kind}": reactions.get(kind) for kind in REACTION_KINDS})
    values.update({f"scores_{kind}": scores.get(kind) for kind in SCORE_KINDS})
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


def write_csv(records: Iterable[Mapping[str, Any]], out: IO[str], *, bom: bool = True) -> int:
    """Write a header row then one row per record; return the number of records.

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
