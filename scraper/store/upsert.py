"""Writing one page's review records into the normalized tables, inside the caller's transaction.

Rules kept here, for import, archive and reparse alike:

- Nothing is duplicated: items, tags, reviews and author names are upserted on
  their natural keys (ON CONFLICT), so the same page twice only adds observations.
  Items and reviews are keyed within their site, as the site decides
  (``scraper.sites``); what a site keeps of its own keys goes to ``extra``.
- A review row holds the values of the newest capture by ``fetched_at``: it is
  only overwritten when ``last_seen_at <= observed_at``, so captures imported out of
  order still leave the newest values (and tags follow the same rule).
- Known reviews are read (and locked) first, and refreshed with a plain UPDATE
  that leaves the body out when it did not change; only new ones are upserted.
  PostgreSQL computes the generated full-text vector of every row an INSERT
  proposes, even one ON CONFLICT turns into an update: that was most of the
  time of a recaptured page. Tags are rewritten only when they changed.
- Authors: see ``scraper.store.authors``.
- Concurrent writers on PostgreSQL take advisory locks per author (sorted) before
  touching authors, and touch rows in key order, so they neither duplicate authors
  nor deadlock on each other's rows.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scraper.records import Record
from scraper.schema.tables import authors, review_observations, review_tags, reviews, tags
from scraper.sites import SiteRules, site_for_record
from scraper.store.authors import lock_authors, resolve_authors
from scraper.store.driverexec import assigns_rowids, inserted_ids
from scraper.store.pglookup import rows_by_key
from scraper.store.pgrows import columns_of, execute_arrays
from scraper.store.statements import (
    OBSERVATION_COLUMNS,
    REVIEW_COLUMNS,
    REVIEW_LATEST,
    REVIEW_TAG_COLUMNS,
    REVIEWS_UPDATE,
    items_upsert,
    observations_upsert,
    observations_upsert_arrays,
    review_tags_insert_arrays,
    reviews_update_rows,
    reviews_upsert,
    reviews_upsert_arrays,
    tags_insert,
)

__all__ = ["RecordCounts", "ReviewKey", "instant", "store_records", "text_sha256"]

#: A review's identity: (site, key).
ReviewKey = tuple[str, str]

#: The review fields whose change makes a newer capture an "update". Reaction
#: counts (and the site's own counts in ``extra``) grow on every capture: they are
#: kept, but are not edits.
_CONTENT_FIELDS = (
    "item_id",
    "date_text",
    "title",
    "rating_value",
    "rating_best",
    "rating_worst",
    "body_sha256",
    "source",
)


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """How the reviews of one page compared with what was stored.

    ``review_ids`` are the row ids of every review of the page; ``changed_ids``
    those that are new or whose latest values changed.
    """

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: frozenset[int] = frozenset()
    review_ids: frozenset[int] = frozenset()


def text_sha256(text: str) -> str:
    """Return the hex sha256 of a review body (UTF-8): the observation's fingerprint."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def instant(date: str | None) -> datetime | None:
    """Return the UTC instant of an ISO 8601 *date* (a date alone: its midnight; no
    offset: read as UTC), or None when there is none or it is not ISO 8601."""
    if not date:
        return None
    try:
        moment = datetime.fromisoformat(date.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(record: Record) -> ReviewKey:
    return (record.site, record.id)


def store_records(
    connection: Connection, *, raw_page_id: int, observed_at: datetime, records: Sequence[Record]
) -> RecordCounts:
    """Upsert *records* seen on raw page *raw_page_id* at *observed_at*; return the counts.

    Runs inside the caller's transaction; database errors propagate as SQLAlchemy errors.
    """
    unique = sorted({_key(record): record for record in reversed(records)}.values(), key=_key)
    if not unique:
        return RecordCounts()
    sites = {record.site: site_for_record(record.site) for record in unique}
    lock_authors(connection, unique, sites)
    before = _existing(connection, unique)
    item_ids = _upsert_items(connection, unique, sites, observed_at)
    author_ids = resolve_authors(connection, unique, sites, before, observed_at, raw_page_id)
    rows = [
        _review_row(record, sites[record.site], item_ids, author_ids, observed_at, raw_page_id)
        for record in unique
    ]
    ids, won = _upsert_reviews(connection, rows, before, observed_at)
    _store_tags(
        connection,
        [(ids[_key(r)], r) for r in unique if _key(r) in won and _tags_changed(r, before)],
        before,
    )
    _store_observations(connection, rows, unique, ids, sites)
    return _classify(rows, unique, before, ids, sites)


def _existing(connection: Connection, records: Sequence[Record]) -> dict[ReviewKey, dict[str, Any]]:
    """Return the stored rows of *records*' reviews (locked on PostgreSQL), with their tags."""
    by_site: dict[str, list[str]] = {}
    for record in records:
        by_site.setdefault(record.site, []).append(record.id)
    query = _existing_query(connection.dialect.name)
    found: dict[ReviewKey, dict[str, Any]] = {}
    for site, keys in sorted(by_site.items()):
        for row in connection.execute(query, {"site": site, "keys": keys}):
            found[(row.site, row.key)] = row._asdict() | {"tags": []}
    if found:
        by_id = {row["id"]: row for row in found.values()}
        for review_id, name in connection.execute(_TAGS_QUERY, {"ids": list(by_id)}):
            by_id[review_id]["tags"].append(name)
    return found


@functools.cache
def _existing_query(dialect: str) -> sa.Select[Any]:
    """The stored rows of one site's reviews (bound ``site``, ``keys``), built once:
    building costs as much as running."""
    columns = [
        reviews.c.id,
        reviews.c.site,
        reviews.c.key,
        reviews.c.author_id,
        reviews.c.first_seen_at,
        reviews.c.last_seen_at,
        reviews.c.last_raw_page_id,
        reviews.c.extra,
        authors.c.name.label("author_name"),
    ]
    # Every latest value but the body (its sha256 stands for it), so a capture that
    # changes nothing (a reparse, say) writes nothing.
    compared = dict.fromkeys((*_CONTENT_FIELDS, *_COMPARED))
    named = {column.name for column in columns}
    columns += [reviews.c[name] for name in compared if name not in named]
    if dialect == "postgresql":
        return _existing_query_pg(columns)
    query = sa.select(*columns).join(authors, authors.c.id == reviews.c.author_id)
    query = query.where(
        reviews.c.site == sa.bindparam("site"),
        reviews.c.key.in_(sa.bindparam("keys", expanding=True)),
    )
    return query


def _existing_query_pg(columns: list[Any]) -> sa.Select[Any]:
    """``_existing_query`` on PostgreSQL: each key one index probe (``pglookup``), even
    before the tables have statistics. Locks the reviews only, in key order (the keys
    come sorted): their authors are serialized by lock_authors."""
    own = [column for column in columns if isinstance(column, sa.Column)]
    query = rows_by_key(
        reviews, own, reviews.c.key, "keys", [reviews.c.site == sa.bindparam("site")], lock=True
    )
    found = query.selected_columns
    query = query.join(authors, authors.c.id == found.author_id)
    query = query.add_columns(authors.c.name.label("author_name"))
    return query.order_by(found.key)


_TAGS_QUERY = (
    sa.select(review_tags.c.review_id, tags.c.name)
    .join(tags, tags.c.id == review_tags.c.tag_id)
    .where(review_tags.c.review_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(review_tags.c.review_id, review_tags.c.position)
)


def _upsert_items(
    connection: Connection,
    records: Sequence[Record],
    sites: Mapping[str, SiteRules],
    observed_at: datetime,
) -> dict[tuple[str, str], int]:
    unique = {(r.site, sites[r.site].item_key(r)): r.item for r in records}
    rows = [
        {
            "site": site,
            "key": key,
            "type": item.type,
            "name": item.name,
            "url": item.url,
            "first_seen_at": observed_at,
            "last_seen_at": observed_at,
        }
        for (site, key), item in sorted(unique.items())
    ]
    # executemany with one statement shape, which RETURNING gives each row's id.
    found = connection.execute(items_upsert(connection.dialect.name), rows)
    return {(row.site, row.key): row.id for row in found}


def _review_row(
    record: Record,
    site: SiteRules,
    item_ids: dict[tuple[str, str], int],
    author_ids: dict[ReviewKey, int],
    observed_at: datetime,
    raw_page_id: int,
) -> dict[str, Any]:
    rating = record.rating
    return {
        "site": record.site,
        "key": record.id,
        "url": record.url,
        "item_id": item_ids[(record.site, site.item_key(record))],
        "author_id": author_ids[_key(record)],
        "item_type": record.item.type,
        "date_text": record.date,
        "date": instant(record.date),
        "title": record.title,
        "rating_value": rating.value if rating is not None else None,
        "rating_best": rating.best if rating is not None else None,
        "rating_worst": rating.worst if rating is not None else None,
        "body": record.body,
        "body_sha256": text_sha256(record.body) if record.body is not None else None,
        "reactions": dict(record.reactions) if record.reactions is not None else None,
        "source": record.source,
        "extra": site.stored_extra(record),
        "first_seen_at": observed_at,
        "last_seen_at": observed_at,
        "last_raw_page_id": raw_page_id,
    }


#: The latest values a refresh compares with the stored ones before writing them.
_COMPARED = tuple(name for name in REVIEW_LATEST if name != "body")


def _same_values(old: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether review *row* would leave stored row *old* as it is."""
    return all(old[name] == row[name] for name in _COMPARED)


def _upsert_reviews(
    connection: Connection,
    rows: list[dict[str, Any]],
    before: dict[ReviewKey, dict[str, Any]],
    observed_at: datetime,
) -> tuple[dict[ReviewKey, int], set[ReviewKey]]:
    """Insert or refresh review rows; return every row's id, and the reviews whose
    latest values are this capture's.

    Known reviews are locked (see ``_existing``), so which of them this capture
    refreshes is decided here; only new ones go through the upsert, which settles
    a race with a writer inserting the same review meanwhile.
    """
    ids = {key: old["id"] for key, old in before.items()}
    fresh = [row for row in rows if _row_key(row) not in before]
    newer = [
        row | {"id": ids[_row_key(row)]}
        for row in rows
        if _row_key(row) in before and _is_newest(before[_row_key(row)], row)
    ]
    won = {_row_key(row) for row in newer}
    newer = [row for row in newer if not _same_values(before[_row_key(row)], row)]
    settled: set[ReviewKey] = set()  # written rows first seen no later than this capture
    if fresh:
        written = _insert_reviews(connection, [_new_row(row) for row in fresh])
        for review_id, site, key, *first_seen in written:
            ids[(site, key)] = review_id
            won.add((site, key))
            if first_seen and first_seen[0] <= observed_at:
                settled.add((site, key))
        lost = [_row_key(row) for row in fresh if _row_key(row) not in ids]
        if lost:  # another writer's newer capture of the same review came first
            ids.update(_ids_of(connection, lost))
    same = [row for row in newer if row["body_sha256"] == before[_row_key(row)]["body_sha256"]]
    edited = [row for row in newer if row["body_sha256"] != before[_row_key(row)]["body_sha256"]]
    for batch, same_body in ((same, True), (edited, False)):
        if batch:
            connection.execute(REVIEWS_UPDATE, reviews_update_rows(batch, same_body=same_body))
    # An older capture imported late moves first_seen_at back; a new row may have
    # met one inserted meanwhile by another writer (PostgreSQL's upsert returns the
    # first sighting it keeps: a row inserted by this capture has its own).
    # (SQLite writers are serialized and read ``before`` in their transaction: a row
    # they insert is theirs, so only PostgreSQL needs the check for new rows.)
    shared = connection.dialect.name != "sqlite"
    earlier = [
        ids[_row_key(row)]
        for row in rows
        if (shared and _row_key(row) not in before and _row_key(row) not in settled)
        or (_row_key(row) in before and before[_row_key(row)]["first_seen_at"] > observed_at)
    ]
    if earlier:
        connection.execute(
            sa.update(reviews)
            .where(reviews.c.id.in_(earlier), reviews.c.first_seen_at > observed_at)
            .values(first_seen_at=observed_at)
        )
    return ids, won


_REVIEW_ARRAYS = columns_of(reviews, REVIEW_COLUMNS)
_OBSERVATION_ARRAYS = columns_of(review_observations, OBSERVATION_COLUMNS)


def _insert_reviews(connection: Connection, rows: list[dict[str, Any]]) -> Any:
    """Insert new review *rows*; return their (id, site, key) rows."""
    if connection.dialect.name == "postgresql":  # one statement, one array per column
        return execute_arrays(connection, reviews_upsert_arrays(), _REVIEW_ARRAYS, rows)
    if assigns_rowids(connection):
        # A batch's writer on SQLite holds the write lock and read the stored reviews
        # in its own transaction, so none of its new rows can meet one (an insert that
        # did would fail, its page refused): the rowids give the ids, without SQLite's
        # RETURNING.
        ids = inserted_ids(connection, _INSERT_REVIEWS, rows)
        return [(new, row["site"], row["key"]) for new, row in zip(ids, rows, strict=True)]
    # Through SQLAlchemy (a crawl's page): one multi-row statement, whose RETURNING
    # names each row, so its order does not matter.
    return connection.execute(reviews_upsert(connection.dialect.name), rows)


_INSERT_REVIEWS = sa.insert(reviews)


def _row_key(row: Mapping[str, Any]) -> ReviewKey:
    return (row["site"], row["key"])


def _new_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in REVIEW_COLUMNS}


def _ids_of(connection: Connection, keys: Sequence[ReviewKey]) -> dict[ReviewKey, int]:
    found: dict[ReviewKey, int] = {}
    for site, key in keys:
        review_id = connection.execute(
            sa.select(reviews.c.id).where(reviews.c.site == site, reviews.c.key == key)
        ).scalar_one()
        found[(site, key)] = int(review_id)
    return found


def _tags_changed(record: Record, before: dict[ReviewKey, dict[str, Any]]) -> bool:
    old = before.get(_key(record))
    return old is None or tuple(old["tags"]) != tuple(record.tags)


_UNTAG = sa.delete(review_tags).where(
    review_tags.c.review_id.in_(sa.bindparam("ids", expanding=True))
)
_TAG_IDS = sa.select(tags.c.name, tags.c.id).where(
    tags.c.name.in_(sa.bindparam("names", expanding=True))
)


def _store_tags(
    connection: Connection,
    records: Sequence[tuple[int, Record]],
    before: Mapping[ReviewKey, Any],
) -> None:
    """Replace the tags of reviews (row id, record) whose latest values are this capture's."""
    if not records:
        return
    # A review new to a serialized (SQLite) writer has no tags yet.
    untag = [
        review_id
        for review_id, record in records
        if _key(record) in before or connection.dialect.name != "sqlite"
    ]
    if untag:
        connection.execute(_UNTAG, {"ids": untag})
    names = sorted({name for _, record in records for name in record.tags})
    if not names:
        return
    # Tags are few and seen again and again: read first, insert only the missing.
    tag_ids = dict(connection.execute(_TAG_IDS, {"names": names}).all())
    missing = [name for name in names if name not in tag_ids]
    if missing:
        connection.execute(
            tags_insert(connection.dialect.name), [{"name": name} for name in missing]
        )
        tag_ids.update(connection.execute(_TAG_IDS, {"names": missing}).all())
    links = {
        (review_id, tag_ids[name]): position
        for review_id, record in records
        for position, name in reversed(list(enumerate(record.tags)))
    }
    rows = [{"review_id": r, "tag_id": t, "position": p} for (r, t), p in sorted(links.items())]
    if connection.dialect.name == "postgresql":  # one statement, one array per column
        execute_arrays(connection, review_tags_insert_arrays(), _REVIEW_TAG_ARRAYS, rows)
    else:
        connection.execute(_INSERT_REVIEW_TAGS, rows)


_INSERT_REVIEW_TAGS = sa.insert(review_tags)
_REVIEW_TAG_ARRAYS = columns_of(review_tags, REVIEW_TAG_COLUMNS)


def _store_observations(
    connection: Connection,
    rows: list[dict[str, Any]],
    records: Sequence[Record],
    ids: dict[ReviewKey, int],
    sites: Mapping[str, SiteRules],
) -> None:
    """Store one observation per review row (what *records* showed on the row's raw page)."""
    observations = [
        {
            "review_id": ids[_key(record)],
            "raw_page_id": row["last_raw_page_id"],
            "observed_at": row["last_seen_at"],
            "author_name": record.author.name,
            "rating_value": row["rating_value"],
            "reactions": row["reactions"],
            "tags": list(record.tags),
            "body_sha256": row["body_sha256"],
            "extra": sites[record.site].observation_extra(record),
        }
        for row, record in zip(rows, records, strict=True)
    ]
    # A reparse of the same raw page refreshes what the current parser reads.
    if connection.dialect.name == "postgresql":  # one statement, one array per column
        statement = observations_upsert_arrays()
        execute_arrays(connection, statement, _OBSERVATION_ARRAYS, observations)
    else:
        connection.execute(observations_upsert(connection.dialect.name), observations)


def _is_newest(old: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether *row* (this capture) is at least as new as the stored values *old*."""
    if old["last_seen_at"] != row["last_seen_at"]:
        return bool(old["last_seen_at"] < row["last_seen_at"])
    return bool((old["last_raw_page_id"] or 0) <= row["last_raw_page_id"])


def _content_extra(extra: Mapping[str, Any] | None, site: SiteRules) -> dict[str, Any]:
    """The site's own keys that are content (its counts left out)."""
    return {k: v for k, v in (extra or {}).items() if k not in site.counting_extras}


def _classify(
    rows: list[dict[str, Any]],
    records: Sequence[Record],
    before: dict[ReviewKey, dict[str, Any]],
    ids: dict[ReviewKey, int],
    sites: Mapping[str, SiteRules],
) -> RecordCounts:
    new = updated = unchanged = 0
    changed: set[int] = set()
    for row, record in zip(rows, records, strict=True):
        key = _key(record)
        old = before.get(key)
        site = sites[record.site]
        if old is None:
            new += 1
            changed.add(ids[key])
        elif _is_newest(old, row) and (
            any(old[name] != row[name] for name in _CONTENT_FIELDS)
            or _content_extra(old["extra"], site) != _content_extra(row["extra"], site)
            or tuple(old["tags"]) != tuple(record.tags)
        ):
            updated += 1
            changed.add(ids[key])
        else:
            unchanged += 1
    return RecordCounts(new, updated, unchanged, frozenset(changed), frozenset(ids.values()))
