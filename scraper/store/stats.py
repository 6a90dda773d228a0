"""``reviews stats``: what the archive holds, counted by the database.

Totals (reviews, items, authors, observations, raw pages and bodies, bytes),
then reviews by site, item, tag, rating and month of the review date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scraper.config import ExportSettings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["archive_stats"]


def _month(conn: Connection) -> Any:
    import sqlalchemy as sa

    from scraper.schema.tables import reviews

    if conn.dialect.name == "sqlite":
        # UTCDateTime keeps "YYYY-MM-DD HH:MM:SS" text on SQLite.
        return sa.func.substr(reviews.c.date, 1, 7)
    return sa.func.to_char(reviews.c.date.op("AT TIME ZONE")(sa.literal("UTC")), "YYYY-MM")


def _database_bytes(conn: Connection) -> int | None:
    import sqlalchemy as sa

    if conn.dialect.name == "sqlite":
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int(pages) * int(size)
    # The archive's own tables (a schema may share its database with others).
    total = conn.execute(
        sa.text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        )
    ).scalar()
    return int(total) if total is not None else None


def _counts(conn: Connection, key: Any) -> list[list[Any]]:
    import sqlalchemy as sa

    from scraper.schema.tables import reviews

    statement = sa.select(key.label("key"), sa.func.count(reviews.c.id)).group_by(key)
    return [[_whole(k), n] for k, n in conn.execute(statement.order_by(key))]


def _whole(value: Any) -> Any:
    """A rating of 9.0 reads as 9, as records print it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _totals(conn: Connection) -> dict[str, int | None]:
    import sqlalchemy as sa

    from scraper.schema import tables as t

    def count(table: Any) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    raw, stored = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(t.raw_bodies.c.size), 0),
            sa.func.coalesce(sa.func.sum(sa.func.length(t.raw_bodies.c.data)), 0),
        )
    ).one()
    return {
        "reviews": count(t.reviews),
        "items": count(t.items),
        "authors": count(t.authors),
        "observations": count(t.review_observations),
        "raw_pages": count(t.raw_pages),
        "raw_bodies": count(t.raw_bodies),
        "raw_bytes": int(raw),
        "raw_bytes_stored": int(stored),
        "fetch_errors": count(t.fetch_errors),
        "database_bytes": _database_bytes(conn),
    }


def _by_entry_and_tag(conn: Connection, top: int) -> tuple[list[list[Any]], list[list[Any]]]:
    import sqlalchemy as sa

    from scraper.schema import tables as t

    n = sa.func.count(t.reviews.c.id).label("n")
    items = t.items.c
    by_entry = conn.execute(
        sa.select(items.site, items.key, items.name, n)
        .join(t.reviews, t.reviews.c.item_id == items.id)
        .group_by(items.id, items.site, items.key, items.name)
        .order_by(n.desc(), items.name)
        .limit(top)
    )
    tagged = sa.func.count(t.review_tags.c.review_id).label("n")
    by_tag = conn.execute(
        sa.select(t.tags.c.name, tagged)
        .join(t.review_tags, t.review_tags.c.tag_id == t.tags.c.id)
        .group_by(t.tags.c.name)
        .order_by(tagged.desc(), t.tags.c.name)
    )
    entries = [[f"{row.name} ({row.site} {row.key})", row.n] for row in by_entry]
    return entries, [[name, count] for name, count in by_tag]


def archive_stats(
    engine: Engine, *, top: int = ExportSettings().stats_top_entries
) -> dict[str, Any]:
    """Return counts of what the archive holds (JSON-ready).

    ``totals`` maps a name to a count (``database_bytes`` is the file or schema
    size); ``by_entry`` (the *top* entries), ``by_tag``, ``by_score`` and
    ``by_month`` are ``[key, reviews]`` pairs. Raises StoreError when the
    database cannot be read.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from scraper.errors import StoreError
    from scraper.schema.tables import reviews

    try:
        with engine.connect() as conn:
            by_entry, by_tag = _by_entry_and_tag(conn, top)
            return {
                "totals": _totals(conn),
                "by_site": _counts(conn, reviews.c.site),
                "by_entry": by_entry,
                "by_tag": by_tag,
                "by_score": _counts(conn, reviews.c.rating_value),
                "by_month": _counts(conn, _month(conn)),
            }
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read the archive's statistics: {error}") from error
