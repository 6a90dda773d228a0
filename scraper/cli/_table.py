"""The ``reviews query --format table`` layout: one line per review that fits the
terminal, right border included.

The id, date, rating and the start of the review always show; the item, the
author and the tags are added, in that order and at their narrowest, while the
review keeps at least ``REVIEW_MIN`` characters; then they widen to their longest
value (up to a cap) while the review keeps ``REVIEW_ROOM``. Each cell is one
line, cut with an ellipsis. At 80 columns: id, date, item, rating and the review.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from scraper.cli._common import terminal_columns
from scraper.config import CliSettings

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = ["REVIEW_MIN", "REVIEW_ROOM", "print_reviews"]

#: The fewest characters of review text a row shows.
REVIEW_MIN = CliSettings().table_review_min
#: Optional columns widen only while the review keeps this many characters.
REVIEW_ROOM = CliSettings().table_review_room
#: Optional columns in the order they are given room: (heading, narrowest, widest).
_OPTIONAL: tuple[tuple[str, int, int], ...] = (
    ("item", 18, 28),
    ("author", 12, 16),
    ("tags", 16, 26),
)
#: A column costs its text plus one space each side and one border.
_COLUMN_COST = 3


def _cells(record: dict[str, Any]) -> dict[str, str]:
    rating = record.get("rating")
    return {
        "id": str(record["id"]),
        "date": (record.get("date") or "")[:10],
        "rating": f"{rating['value']}/{rating['best']}" if rating else "",
        "author": record["author"]["name"] or "",
        "item": record["item"]["name"] or "",
        "tags": ", ".join(record["tags"]),
        "review": " ".join((record.get("body") or "").split()),
    }


def _layout(rows: list[dict[str, str]], width: int) -> dict[str, int]:
    """Return the columns to show and their widths for a line of *width* characters."""

    def longest(name: str) -> int:
        return max([len(name), *(len(row[name]) for row in rows)])

    widths = {name: longest(name) for name in ("id", "date", "rating")}
    left = width - 1 - _COLUMN_COST * (len(widths) + 1) - sum(widths.values())
    wanted: dict[str, int] = {}
    for name, narrowest, widest in _OPTIONAL:
        wanted[name] = min(widest, longest(name))
        size = min(narrowest, wanted[name])
        if left - size - _COLUMN_COST >= REVIEW_MIN:
            widths[name] = size
            left -= size + _COLUMN_COST
    for name, _, _ in _OPTIONAL:
        if name in widths:
            grow = max(0, min(wanted[name] - widths[name], left - REVIEW_ROOM))
            widths[name] += grow
            left -= grow
    widths["review"] = max(left, 8)
    order = ("id", "date", "item", "author", "rating", "tags", "review")
    return {name: widths[name] for name in order if name in widths}


def print_reviews(
    records: Iterable[dict[str, Any]],
    out: IO[str],
    note: Callable[[int], str] | None = None,
) -> int:
    """Print *records* as a table as wide as the terminal; return how many rows.

    ``note(count)`` (when given) is printed after the table, dimmed.
    """
    from rich.console import Console
    from rich.table import Table

    rows = [_cells(record) for record in records]
    width = terminal_columns()
    layout = _layout(rows, width)
    table = Table(expand=False)
    for name, size in layout.items():
        justify: JustifyMethod = "right" if name in ("id", "rating") else "left"
        table.add_column(name, width=size, no_wrap=True, overflow="ellipsis", justify=justify)
    for row in rows:
        table.add_row(*(row[name] for name in layout))
    console = Console(file=out, width=width)
    console.print(table)
    if note is not None:
        console.print(note(len(rows)), style="dim")
    return len(rows)
