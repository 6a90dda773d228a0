"""``reviews stats``: what the archive holds, counted by the database.

Totals (reviews, items, authors, observations, raw pages and bodies, bytes),
then reviews by site, item, tag, rating and month of the review date. The
counts are SQL text run on a ``scraper.store.lite.Source``: on a SQLite file
through the stdlib ``sqlite3`` module, so the command starts without SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scraper.config import ExportSettings
from scraper.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from scraper.store.lite import Source

__all__ = ["archive_stats"]

#: The tables ``totals`` counts, under the names it gives them.
_COUNTED = (
    ("reviews", "reviews"),
    ("items", "items"),
    ("authors", "authors"),
    ("observations", "review_observations"),
    ("raw_pages", "raw_pages"),
    ("raw_bodies", "raw_bodies"),
)

#: The archive's own tables' size (a PostgreSQL schema may share its database).
_PG_BYTES = (
    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
)


def _month(dialect_name: str) -> str:
    if dialect_name == "sqlite":
        # UTCDateTime keeps "YYYY-MM-DD HH:MM:SS" text on SQLite.
        return "substr(reviews.date, 1, 7)"
    return "to_char(reviews.date AT TIME ZONE 'UTC', 'YYYY-MM')"


def _database_bytes(source: Source) -> int | None:
    if source.dialect_name == "sqlite":
        ((pages,),) = source.rows("PRAGMA page_count")
        ((size,),) = source.rows("PRAGMA page_size")
        return int(pages) * int(size)
    ((total,),) = source.rows(_PG_BYTES)
    return int(total) if total is not None else None


def _counts(source: Source, key: str) -> list[list[Any]]:
    sql = f"SELECT {key} AS key, count(reviews.id) FROM reviews GROUP BY {key} ORDER BY {key}"
    return [[_whole(k), n] for k, n in source.rows(sql)]


def _whole(value: Any) -> Any:
    """A rating of 9.0 reads as 9, as records print it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _totals(source: Source) -> dict[str, int | None]:
    def count(table: str) -> int:
        ((number,),) = source.rows(f"SELECT count(*) FROM {table}")
        return int(number)

    ((raw, stored),) = source.rows(
        "SELECT coalesce(sum(raw_bodies.size), 0), coalesce(sum(length(raw_bodies.data)), 0)"
        " FROM raw_bodies"
    )
    totals: dict[str, int | None] = {name: count(table) for name, table in _COUNTED}
    totals.update(raw_bytes=int(raw), raw_bytes_stored=int(stored))
    totals.update(fetch_errors=count("fetch_errors"), database_bytes=_database_bytes(source))
    return totals


def _by_entry_and_tag(source: Source, top: int) -> tuple[list[list[Any]], list[list[Any]]]:
    by_entry = source.rows(
        'SELECT items.site, items."key", items.name, count(reviews.id) AS n FROM items'
        " JOIN reviews ON reviews.item_id = items.id"
        ' GROUP BY items.id, items.site, items."key", items.name'
        " ORDER BY n DESC, items.name LIMIT :top",
        {"top": top},
    )
    by_tag = source.rows(
        "SELECT tags.name, count(review_tags.review_id) AS n FROM tags"
        " JOIN review_tags ON review_tags.tag_id = tags.id"
        " GROUP BY tags.name ORDER BY n DESC, tags.name"
    )
    entries = [[f"{name} ({site} {key})", n] for site, key, name, n in by_entry]
    return entries, [[name, count] for name, count in by_tag]


def archive_stats(
    url: str, *, engine: Engine | None = None, top: int = ExportSettings().stats_top_entries
) -> dict[str, Any]:
    """Return counts of what the archive at *url* holds (JSON-ready; never creates one).

    ``totals`` maps a name to a count (``database_bytes`` is the file or schema
    size); ``by_entry`` (the *top* entries), ``by_tag``, ``by_score`` and
    ``by_month`` are ``[key, reviews]`` pairs. *engine*, when given, is an open
    engine on *url* to read through. Raises StoreError when the database cannot be
    read.
    """
    from scraper.store.source import open_source

    with open_source(url, engine) as source:
        try:
            by_entry, by_tag = _by_entry_and_tag(source, top)
            return {
                "totals": _totals(source),
                "by_site": _counts(source, "reviews.site"),
                "by_entry": by_entry,
                "by_tag": by_tag,
                "by_score": _counts(source, "reviews.rating_value"),
                "by_month": _counts(source, _month(source.dialect_name)),
            }
        except source.errors as error:
            raise StoreError(f"cannot read the archive's statistics: {error}") from error
