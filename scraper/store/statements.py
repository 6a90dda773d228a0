"""The upsert statements of the store, built once per dialect and cached.

Building a statement's ``excluded`` namespace costs more than running it, and
executemany with one fixed statement lets SQLAlchemy compile it once: together
that made ingest three times faster than multi-row VALUES built per page.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from scraper.schema.tables import (
    author_names,
    authors,
    items,
    review_observations,
    review_tags,
    reviews,
    tags,
)
from scraper.store.dialect import insert_for
from scraper.store.pgrows import unnest_insert

__all__ = [
    "AUTHOR_COLUMNS",
    "AUTHOR_NAME_COLUMNS",
    "OBSERVATION_COLUMNS",
    "REVIEWS_UPDATE",
    "REVIEW_LATEST",
    "REVIEW_TAG_COLUMNS",
    "author_names_upsert",
    "author_names_upsert_arrays",
    "authors_create_arrays",
    "authors_insert",
    "items_upsert",
    "observations_upsert",
    "observations_upsert_arrays",
    "review_tags_insert_arrays",
    "reviews_update_rows",
    "reviews_upsert",
    "reviews_upsert_arrays",
    "tags_insert",
]

#: Review columns an upsert leaves alone: the keys, the reviewer, the first sighting.
_KEEP_ON_UPDATE = {"id", "site", "key", "author_id", "first_seen_at"}


def _newer(table: sa.Table, excluded: Any, column: str) -> Any:
    """The stored value unless this capture is at least as new as the stored one."""
    return sa.case(
        (excluded.last_seen_at >= table.c.last_seen_at, excluded[column]),
        else_=table.c[column],
    )


def _extreme(table: sa.Table, excluded: Any, column: str, *, earliest: bool) -> Any:
    older = excluded[column] < table.c[column]
    keep_new = older if earliest else sa.not_(older)
    return sa.case((keep_new, excluded[column]), else_=table.c[column])


def _seen_span_upsert(dialect: str, table: sa.Table, key: list[str], latest: list[str]) -> Any:
    """Upsert on *key* that widens first/last_seen_at and takes *latest* from newer captures."""
    return _seen_span(insert_for(dialect, table), table, key, latest)


def _seen_span(statement: Any, table: sa.Table, key: list[str], latest: list[str]) -> Any:
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=key,
        set_={name: _newer(table, excluded, name) for name in latest}
        | {
            "first_seen_at": _extreme(table, excluded, "first_seen_at", earliest=True),
            "last_seen_at": _extreme(table, excluded, "last_seen_at", earliest=False),
        },
    )


@functools.cache
def items_upsert(dialect: str) -> Any:
    """Upsert items, returning (id, site, key) of each."""
    statement = _seen_span_upsert(dialect, items, ["site", "key"], ["type", "name", "url"])
    return statement.returning(items.c.id, items.c.site, items.c.key)


@functools.cache
def authors_insert(dialect: str) -> Any:
    """Insert keyed authors; one another writer inserted meanwhile is left as it is."""
    return insert_for(dialect, authors).on_conflict_do_nothing(index_elements=["site", "key"])


@functools.cache
def author_names_upsert(dialect: str) -> Any:
    return _seen_span_upsert(dialect, author_names, ["author_id", "name"], [])


#: The columns of an ``author_names`` row.
AUTHOR_NAME_COLUMNS = ("author_id", "name", "first_seen_at", "last_seen_at")


@functools.cache
def author_names_upsert_arrays() -> Any:
    """``author_names_upsert`` on PostgreSQL, its rows bound as arrays."""
    statement = unnest_insert(author_names, AUTHOR_NAME_COLUMNS)
    return _seen_span(statement, author_names, ["author_id", "name"], [])


#: The columns of a new author row (the database numbers it).
AUTHOR_COLUMNS = tuple(c.name for c in authors.columns if c.name != "id")


@functools.cache
def authors_create_arrays(*, keyed: bool) -> Any:
    """PostgreSQL's insert of new authors bound as arrays (of ``AUTHOR_COLUMNS``): keyed
    ones as ``authors_insert`` (one another writer inserted meanwhile is left as it is),
    the others returning their ids, which grow in the rows' order."""
    statement = unnest_insert(authors, AUTHOR_COLUMNS)
    if keyed:
        return statement.on_conflict_do_nothing(index_elements=["site", "key"])
    return statement.returning(authors.c.id)


#: The columns of a ``review_tags`` row.
REVIEW_TAG_COLUMNS = ("review_id", "tag_id", "position")


@functools.cache
def review_tags_insert_arrays() -> Any:
    """PostgreSQL's insert of ``review_tags`` rows bound as arrays."""
    return unnest_insert(review_tags, REVIEW_TAG_COLUMNS)


#: Review columns an upsert overwrites (the latest values and where they came from).
REVIEW_LATEST = tuple(c.name for c in reviews.columns if c.name not in _KEEP_ON_UPDATE)
#: The columns of a new review row (the database numbers it).
REVIEW_COLUMNS = tuple(c.name for c in reviews.columns if c.name != "id")


@functools.cache
def reviews_upsert(dialect: str) -> Any:
    """Insert new reviews; a row another writer inserted meanwhile is overwritten only
    from a capture at least as new as its own. Returns (id, site, key) of the rows written."""
    return _reviews_on_conflict(insert_for(dialect, reviews))


@functools.cache
def reviews_upsert_arrays() -> Any:
    """``reviews_upsert`` on PostgreSQL, its rows bound as arrays (``pgrows.execute_arrays``
    of ``REVIEW_COLUMNS``). Returns (id, site, key, first_seen_at) of the rows written:
    a row whose first sighting is not after this capture's needs no correction."""
    statement = _reviews_on_conflict(unnest_insert(reviews, REVIEW_COLUMNS))
    return statement.returning(reviews.c.first_seen_at)


def _reviews_on_conflict(statement: Any) -> Any:
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["site", "key"],
        set_={name: excluded[name] for name in REVIEW_LATEST},
        where=sa.or_(
            reviews.c.last_seen_at < excluded.last_seen_at,
            # Same capture time: the later raw page wins, so a reparse is stable.
            sa.and_(
                reviews.c.last_seen_at == excluded.last_seen_at,
                sa.func.coalesce(reviews.c.last_raw_page_id, 0) <= excluded.last_raw_page_id,
            ),
        ),
    ).returning(reviews.c.id, reviews.c.site, reviews.c.key)


#: The parameter naming the row a ``reviews_update`` changes ("id" is the column's own).
REVIEW_KEY = "review_key"


def reviews_update_rows(rows: list[dict[str, Any]], *, same_body: bool) -> list[dict[str, Any]]:
    """Return the parameters of ``REVIEWS_UPDATE`` for review *rows* (upsert rows).

    With *same_body* (the stored body is already this text) the body is left out
    of the SET clause, which is made of the parameters' column names.
    """
    skip = {"body", "body_sha256"} if same_body else set()
    return [
        {REVIEW_KEY: row["id"]} | {name: row[name] for name in REVIEW_LATEST if name not in skip}
        for row in rows
    ]


#: UPDATE of known reviews' latest values (the SET clause comes from the parameters).
#: A plain UPDATE, not an upsert: PostgreSQL computes the generated full-text vector
#: of an INSERT's proposed row even when ON CONFLICT turns it into an update (half a
#: millisecond per review), while an UPDATE that leaves the body alone does not.
REVIEWS_UPDATE = sa.update(reviews).where(reviews.c.id == sa.bindparam(REVIEW_KEY))


@functools.cache
def tags_insert(dialect: str) -> Any:
    return insert_for(dialect, tags).on_conflict_do_nothing(index_elements=["name"])


_OBSERVATION_VALUES = tuple(
    c.name for c in review_observations.columns if c.name not in {"id", "review_id", "raw_page_id"}
)


#: The columns of a new observation row (the database numbers it).
OBSERVATION_COLUMNS = tuple(c.name for c in review_observations.columns if c.name != "id")


@functools.cache
def observations_upsert(dialect: str) -> Any:
    return _observations_on_conflict(insert_for(dialect, review_observations))


@functools.cache
def observations_upsert_arrays() -> Any:
    """``observations_upsert`` on PostgreSQL, its rows bound as arrays (of
    ``OBSERVATION_COLUMNS``)."""
    return _observations_on_conflict(unnest_insert(review_observations, OBSERVATION_COLUMNS))


def _observations_on_conflict(statement: Any) -> Any:
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["review_id", "raw_page_id"],
        set_={name: excluded[name] for name in _OBSERVATION_VALUES},
    )
