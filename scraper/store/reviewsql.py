"""The SQL text of the read side: one builder for both databases, no SQLAlchemy.

Each function returns SQL text with named ``:param`` parameters and their
values. The stdlib ``sqlite3`` module runs that text as it is (``reviews query``
/ ``export`` on SQLite start without loading SQLAlchemy, a measured goal), and
SQLAlchemy's ``text()`` runs it on PostgreSQL or wraps it into the Core
statements of the web front end (``read.select_reviews``). What the two
databases spell differently is decided here only: full text (FTS5 ``MATCH``
against a ``tsvector``), case-folded ``LIKE`` (``ILIKE``) and how an instant
is bound (SQLite keeps naive UTC text).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from scraper.errors import UsageError
from scraper.store.fts import FTS_TABLE, PG_FTS_COLUMN, PG_TS_CONFIG, SearchTerms, parse_search

__all__ = [
    "ORDER_COLUMNS",
    "RECORD_COLUMNS",
    "Sql",
    "bind_instant",
    "conditions",
    "entry_shares",
    "escape_like",
    "observations_sql",
    "order_by",
    "review_sql",
    "search_sql",
    "tags_sql",
]

#: SQL text and its named parameters.
Sql = tuple[str, dict[str, Any]]


class ReviewQuery(Protocol):
    """The filters read here: ``scraper.store.read.ReviewQuery`` (which builds on this
    module, so it is named by its shape)."""

    @property
    def entry(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def type(self) -> str | None: ...
    @property
    def min_score(self) -> int | None: ...
    @property
    def max_score(self) -> int | None: ...
    @property
    def since(self) -> datetime | None: ...
    @property
    def until(self) -> datetime | None: ...
    @property
    def search(self) -> str | None: ...
    @property
    def sort(self) -> str: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def site(self) -> str | None: ...


#: The columns a record is built from, as (table, column), in the order
#: ``read._record`` unpacks them. JSON columns are read as text and decoded there
#: (SQLAlchemy's JSON reading was a quarter of an export).
RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reviews", "id"),
    ("reviews", "site"),
    ("reviews", "key"),
    ("reviews", "url"),
    ("items", "key"),
    ("items", "name"),
    ("items", "type"),
    ("items", "url"),
    ("authors", "name"),
    ("authors", "url"),
    ("authors", "image_url"),
    ("reviews", "date_text"),
    ("reviews", "title"),
    ("reviews", "rating_value"),
    ("reviews", "rating_best"),
    ("reviews", "rating_worst"),
    ("reviews", "body"),
    ("reviews", "reactions"),
    ("reviews", "source"),
    ("reviews", "extra"),
)

#: ``--sort`` keys and the columns they order by. No id tie-break on the indexed
#: keys: it would stop SQLite from reading the date / rating index in order and
#: stopping at --limit (ties: index order).
ORDER_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "id": (("reviews", "id"),),
    "date": (("reviews", "date"),),
    "score": (("reviews", "rating_value"),),
    "entry": (("items", "name"), ("reviews", "id")),
    "user": (("authors", "name"), ("reviews", "id")),
}

_FROM = (
    "FROM reviews JOIN items ON items.id = reviews.item_id "
    "JOIN authors ON authors.id = reviews.author_id"
)


def _quoted(table: str, column: str) -> str:
    # "key" is a keyword in SQLite's grammar (it parses unquoted, but quoted is safe).
    return f'{table}."{column}"' if column == "key" else f"{table}.{column}"


def bind_instant(moment: datetime, dialect_name: str) -> Any:
    """Return *moment* as the database compares it: naive UTC text on SQLite (as the
    store writes it), the aware datetime elsewhere."""
    if dialect_name == "sqlite":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment


def _ilike(column: str, parameter: str, dialect_name: str) -> str:
    if dialect_name == "postgresql":
        return f"{column} ILIKE :{parameter} ESCAPE '\\'"
    return f"lower({column}) LIKE lower(:{parameter}) ESCAPE '\\'"


def escape_like(text: str) -> str:
    """Return *text* with LIKE's wildcards (and the escape character) escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_sql(dialect_name: str, terms: SearchTerms, column: str = "reviews.id") -> Sql:
    """Return the condition that keeps the reviews whose body matches *terms*.

    Raises UsageError on a database other than SQLite or PostgreSQL (the only
    two the full-text index is built for).
    """
    if dialect_name == "sqlite":
        found = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query"
        return f"{column} IN ({found})", {"fts_query": terms.sqlite_match()}
    if dialect_name == "postgresql":
        query = f"to_tsquery('{PG_TS_CONFIG}'::regconfig, :ts_query)"
        return f"(reviews.{PG_FTS_COLUMN} @@ {query})", {"ts_query": terms.postgres_tsquery()}
    raise UsageError(f"--search: full-text search is not available on {dialect_name}")


def conditions(
    query: ReviewQuery,
    dialect_name: str,
    *,
    claimed: Sequence[tuple[str, str]] = (),
    wide_entry: bool = False,
) -> tuple[list[str], dict[str, Any]]:
    """Return the WHERE conditions (ANDed) on ``reviews`` that *query* sets, and their
    parameters (named ``rq_*``, apart from any a caller adds).

    *claimed*: the (site, item key) pairs ``--entry`` names in a site's own syntax;
    without any, ``--entry`` is part of an item's name (or its whole key).

    Items and authors are matched in their own small tables first (uncorrelated
    subqueries, evaluated once), so the reviews are then reached by their indexes.
    With *wide_entry*, the item filter is kept off the item index (see ``entry_shares``).
    """
    where: list[str] = []
    params: dict[str, Any] = {}
    if query.site:
        where.append("reviews.site = :rq_site")
        params["rq_site"] = query.site
    if query.entry:
        if claimed:
            pairs = []
            for number, (site, key) in enumerate(claimed):
                pairs.append(f'(items.site = :rq_is{number} AND items."key" = :rq_ik{number})')
                params[f"rq_is{number}"], params[f"rq_ik{number}"] = site, key
            matching = " OR ".join(pairs)
        else:
            like = _ilike("items.name", "rq_entry_like", dialect_name)
            matching = f'{like} OR items."key" = :rq_entry'
            params["rq_entry_like"] = f"%{escape_like(query.entry)}%"
            params["rq_entry"] = query.entry
        # "+ 0" keeps SQLite off the item index when many items match (see entry_shares).
        column = "reviews.item_id + 0" if wide_entry else "reviews.item_id"
        where.append(f"{column} IN (SELECT items.id FROM items WHERE {matching})")
    if query.user:
        where.append(
            "reviews.author_id IN (SELECT authors.id FROM authors"
            " WHERE lower(authors.name) = :rq_user UNION SELECT author_names.author_id"
            " FROM author_names WHERE lower(author_names.name) = :rq_user)"
        )
        params["rq_user"] = query.user.lower()
    for number, label in enumerate(query.tags):
        # Case is ignored: a site without a folder of its own has labels as its pages spell them.
        where.append(
            "EXISTS (SELECT review_tags.review_id FROM review_tags"
            " WHERE review_tags.review_id = reviews.id AND review_tags.tag_id IN"
            f" (SELECT tags.id FROM tags WHERE lower(tags.name) = :rq_tag{number}))"
        )
        params[f"rq_tag{number}"] = label.lower()
    for value, condition, name in (
        (query.type, "reviews.item_type =", "rq_type"),
        (query.min_score, "reviews.rating_value >=", "rq_min_score"),
        (query.max_score, "reviews.rating_value <=", "rq_max_score"),
    ):
        if value is not None:
            where.append(f"{condition} :{name}")
            params[name] = value
    if query.since is not None:
        where.append("reviews.date >= :rq_since")
        params["rq_since"] = bind_instant(query.since, dialect_name)
    if query.until is not None:
        where.append("reviews.date < :rq_until")
        params["rq_until"] = bind_instant(query.until, dialect_name)
    if query.search is not None:
        condition, terms = search_sql(dialect_name, parse_search(query.search))
        where.append(condition)
        params.update(terms)
    return where, params


def order_by(query: ReviewQuery) -> list[tuple[str, str]]:
    """Return *query*'s ORDER BY columns as (table, column)."""
    return list(ORDER_COLUMNS[query.sort.lstrip("-")])


def review_sql(
    query: ReviewQuery,
    dialect_name: str,
    *,
    claimed: Sequence[tuple[str, str]] = (),
    wide_entry: bool = False,
) -> Sql:
    """Return the SELECT of the record columns (reviews joined with item and author)
    that *query* describes, in its order and up to its limit (*claimed*: see
    ``conditions``)."""
    where, params = conditions(query, dialect_name, claimed=claimed, wide_entry=wide_entry)
    direction = " DESC" if query.sort.startswith("-") else ""
    order = ", ".join(_quoted(*column) + direction for column in order_by(query))
    columns = ", ".join(_quoted(*column) for column in RECORD_COLUMNS)
    sql = f"SELECT {columns} {_FROM}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    if query.limit:
        sql += " LIMIT :rq_limit"
        params["rq_limit"] = query.limit
    return sql, params


def _id_list(ids: Sequence[int]) -> str:
    # Row ids straight from the database: integers, written inline (int() makes sure).
    return ", ".join(str(int(review_id)) for review_id in ids)


def tags_sql(ids: Sequence[int]) -> str:
    """Return the SELECT of (review id, tag name) of the reviews *ids*, in tag order."""
    return (
        "SELECT review_tags.review_id, tags.name FROM review_tags"
        " JOIN tags ON tags.id = review_tags.tag_id"
        f" WHERE review_tags.review_id IN ({_id_list(ids)})"
        " ORDER BY review_tags.review_id, review_tags.position"
    )


def observations_sql(ids: Sequence[int]) -> str:
    """Return the SELECT of the observations of the reviews *ids* (the fields of
    ``read.Observation``, in order) with the raw page each was read from (its URL
    and capture time), in review and time order."""
    o = "review_observations"
    return (
        f"SELECT {o}.review_id, {o}.raw_page_id, {o}.observed_at, {o}.author_name,"
        f" {o}.rating_value, {o}.reactions, {o}.tags, {o}.body_sha256, {o}.extra,"
        f" raw_pages.final_url, raw_pages.fetched_at FROM {o}"
        f" JOIN raw_pages ON raw_pages.id = {o}.raw_page_id"
        f" WHERE {o}.review_id IN ({_id_list(ids)})"
        f" ORDER BY {o}.review_id, {o}.observed_at, {o}.id"
    )


def entry_shares(query: ReviewQuery, dialect_name: str) -> Sql:
    """Return the SELECT of (items whose name matches --entry, all items, the largest
    review row id): what ``read`` weighs to keep SQLite off the item index."""
    like = _ilike("items.name", "rq_entry_like", dialect_name)
    sql = (
        f"SELECT (SELECT count(*) FROM items WHERE {like}),"
        " (SELECT count(*) FROM items), (SELECT max(rowid) FROM reviews)"
    )
    return sql, {"rq_entry_like": f"%{escape_like(query.entry or '')}%"}
