"""Writing one page's review records into the normalized tables, inside the caller's transaction.

Rules kept here, for import, archive and reparse alike:

- Nothing is duplicated: entries, tags, reviews and user names are upserted on
  their natural keys (ON CONFLICT), so the same page twice only adds observations.
- A review row holds the values of the newest capture by ``fetched_at``: it is
  only overwritten when ``last_seen_at <= observed_at``, so captures imported out of
  order still leave the newest values (and tags follow the same rule).
- Known reviews are read (and locked) first, and refreshed with a plain UPDATE
  that leaves the body out when it did not change; only new ones are upserted.
  PostgreSQL computes the generated full-text vector of every row an INSERT
  proposes, even one ON CONFLICT turns into an update: that was most of the
  time of a recaptured page. Tags are rewritten only when they changed.
- Users: see ``scraper.store.users``.
- Concurrent writers on PostgreSQL take advisory locks per username (sorted) before
  touching users, and touch rows in key order, so they neither duplicate users nor
  deadlock on each other's rows.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scraper.records import Review
from scraper.schema.tables import (
    REACTION_COLUMNS,
    review_tags,
    reviews,
    tags,
    users,
)
from scraper.store.statements import (
    REVIEWS_UPDATE,
    entries_upsert,
    observations_upsert,
    reviews_update_rows,
    reviews_upsert,
    tags_insert,
)
from scraper.store.users import lock_usernames, resolve_users

__all__ = ["RecordCounts", "store_records", "text_sha256"]

#: The review fields whose change makes a newer capture an "update". Reaction and
#: helpful counts grow on every capture: they are kept, but are not edits.
_CONTENT_FIELDS = (
    "entry_id",
    "date",
    "score",
    "is_spoiler",
    "is_preliminary",
    "episodes_watched",
    "chapters_read",
    "scores",
    "body_sha256",
    "layout",
)


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """How the reviews of one page compared with what was stored."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: frozenset[int] = frozenset()


def text_sha256(text: str) -> str:
    """Return the hex sha256 of a review body (UTF-8): the observation's fingerprint."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_records(
    connection: Connection, *, raw_page_id: int, observed_at: datetime, records: Sequence[Review]
) -> RecordCounts:
    """Upsert *records* seen on raw page *raw_page_id* at *observed_at*; return the counts.

    Runs inside the caller's transaction; database errors propagate as SQLAlchemy errors.
    """
    unique = sorted({record.mal_id: record for record in reversed(records)}.values(), key=_id)
    if not unique:
        return RecordCounts()
    lock_usernames(connection, {record.user.username for record in unique})
    before = _existing(connection, [record.mal_id for record in unique])
    entry_ids = _upsert_entries(connection, unique, observed_at)
    user_ids = resolve_users(connection, unique, before, observed_at, raw_page_id)
    rows = [_review_row(record, entry_ids, user_ids, observed_at, raw_page_id) for record in unique]
    won = _upsert_reviews(connection, rows, before, observed_at)
    _store_tags(connection, [r for r in unique if r.mal_id in won and _tags_changed(r, before)])
    _store_observations(connection, rows, unique)
    return _classify(rows, unique, before)


def _id(record: Review) -> int:
    return record.mal_id


def _existing(connection: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Return the stored rows of reviews *ids* (locked on PostgreSQL), with their tags."""
    dialect = connection.dialect.name
    result = connection.execute(_existing_query(dialect), {"ids": ids})
    found = {row.id: row._asdict() for row in result}
    if found:
        for row in found.values():
            row["tags"] = []
        for review_id, name in connection.execute(_TAGS_QUERY, {"ids": list(found)}):
            found[review_id]["tags"].append(name)
    return found


@functools.cache
def _existing_query(dialect: str) -> sa.Select[Any]:
    """The stored rows of reviews (bound ``ids``), built once: building costs as much as running."""
    columns = [
        reviews.c.id,
        reviews.c.user_id,
        reviews.c.first_seen_at,
        reviews.c.last_seen_at,
        reviews.c.last_raw_page_id,
        users.c.username,
    ]
    query = sa.select(*columns, *(reviews.c[name] for name in _CONTENT_FIELDS))
    query = query.join(users, users.c.id == reviews.c.user_id)
    query = query.where(reviews.c.id.in_(sa.bindparam("ids", expanding=True)))
    if dialect == "postgresql":
        # Locks the reviews only (in key order): their users are serialized by lock_usernames.
        query = query.order_by(reviews.c.id).with_for_update(of=reviews)
    return query


_TAGS_QUERY = (
    sa.select(review_tags.c.review_id, tags.c.name)
    .join(tags, tags.c.id == review_tags.c.tag_id)
    .where(review_tags.c.review_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(review_tags.c.review_id, review_tags.c.position)
)


def _upsert_entries(
    connection: Connection, records: Sequence[Review], observed_at: datetime
) -> dict[tuple[str, int], int]:
    unique = {(r.entry.type, r.entry.mal_id): r.entry for r in records}
    rows = [
        {
            "type": entry.type,
            "mal_id": entry.mal_id,
            "title": entry.title,
            "url": entry.url,
            "first_seen_at": observed_at,
            "last_seen_at": observed_at,
        }
        for _, entry in sorted(unique.items())
    ]
    # executemany with one statement shape, which RETURNING gives each row's id.
    found = connection.execute(entries_upsert(connection.dialect.name), rows)
    return {(row.type, row.mal_id): row.id for row in found}


def _reactions(record: Review) -> dict[str, int | None]:
    values = record.reactions or {}
    return {f"reactions_{kind}": values.get(kind) for kind in REACTION_COLUMNS}


def _review_row(
    record: Review,
    entry_ids: dict[tuple[str, int], int],
    user_ids: dict[int, int],
    observed_at: datetime,
    raw_page_id: int,
) -> dict[str, Any]:
    return {
        "id": record.mal_id,
        "entry_id": entry_ids[(record.entry.type, record.entry.mal_id)],
        "user_id": user_ids[record.mal_id],
        "type": record.type,
        "date": record.date,
        "score": record.score,
        "is_spoiler": record.is_spoiler,
        "is_preliminary": record.is_preliminary,
        "episodes_watched": record.episodes_watched,
        "chapters_read": record.chapters_read,
        **_reactions(record),
        "helpful_count": record.helpful_count,
        "scores": dict(record.scores) if record.scores is not None else None,
        "body": record.review,
        "body_sha256": text_sha256(record.review),
        "layout": record.layout,
        "first_seen_at": observed_at,
        "last_seen_at": observed_at,
        "last_raw_page_id": raw_page_id,
    }


def _upsert_reviews(
    connection: Connection,
    rows: list[dict[str, Any]],
    before: dict[int, dict[str, Any]],
    observed_at: datetime,
) -> set[int]:
    """Insert or refresh review rows; return the ids whose latest values are this capture's.

    Known reviews are locked (see ``_existing``), so which of them this capture
    refreshes is decided here; only new ones go through the upsert, which settles
    a race with a writer inserting the same review meanwhile.
    """
    fresh = [row for row in rows if row["id"] not in before]
    newer = [row for row in rows if row["id"] in before and _is_newest(before[row["id"]], row)]
    won = {row["id"] for row in newer}
    if fresh:
        won.update(connection.execute(reviews_upsert(connection.dialect.name), fresh).scalars())
    same = [row for row in newer if row["body_sha256"] == before[row["id"]]["body_sha256"]]
    edited = [row for row in newer if row["body_sha256"] != before[row["id"]]["body_sha256"]]
    for batch, same_body in ((same, True), (edited, False)):
        if batch:
            connection.execute(REVIEWS_UPDATE, reviews_update_rows(batch, same_body=same_body))
    # An older capture imported late moves first_seen_at back; a new row may have
    # met one inserted meanwhile by another writer.
    earlier = [
        row["id"]
        for row in rows
        if row["id"] not in before or before[row["id"]]["first_seen_at"] > observed_at
    ]
    if earlier:
        connection.execute(
            sa.update(reviews)
            .where(reviews.c.id.in_(earlier), reviews.c.first_seen_at > observed_at)
            .values(first_seen_at=observed_at)
        )
    return won


def _tags_changed(record: Review, before: dict[int, dict[str, Any]]) -> bool:
    old = before.get(record.mal_id)
    return old is None or tuple(old["tags"]) != tuple(record.tags)


_UNTAG = sa.delete(review_tags).where(
    review_tags.c.review_id.in_(sa.bindparam("ids", expanding=True))
)
_TAG_IDS = sa.select(tags.c.name, tags.c.id).where(
    tags.c.name.in_(sa.bindparam("names", expanding=True))
)


def _store_tags(connection: Connection, records: Sequence[Review]) -> None:
    """Replace the tags of reviews whose latest values come from this capture."""
    if not records:
        return
    ids = [record.mal_id for record in records]
    connection.execute(_UNTAG, {"ids": ids})
    names = sorted({name for record in records for name in record.tags})
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
        (record.mal_id, tag_ids[name]): position
        for record in records
        for position, name in reversed(list(enumerate(record.tags)))
    }
    connection.execute(
        sa.insert(review_tags),
        [{"review_id": r, "tag_id": t, "position": p} for (r, t), p in sorted(links.items())],
    )


def _store_observations(
    connection: Connection, rows: list[dict[str, Any]], records: Sequence[Review]
) -> None:
    """Store one observation per review row (what *records* showed on the row's raw page)."""
    observations = [
        {
            "review_id": record.mal_id,
            "raw_page_id": row["last_raw_page_id"],
            "observed_at": row["last_seen_at"],
            "username": record.user.username,
            "score": record.score,
            **_reactions(record),
            "helpful_count": record.helpful_count,
            "scores": row["scores"],
            "tags": list(record.tags),
            "review_sha256": row["body_sha256"],
        }
        for row, record in zip(rows, records, strict=True)
    ]
    # A reparse of the same raw page refreshes what the current parser reads.
    connection.execute(observations_upsert(connection.dialect.name), observations)


def _is_newest(old: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether *row* (this capture) is at least as new as the stored values *old*."""
    if old["last_seen_at"] != row["last_seen_at"]:
        return bool(old["last_seen_at"] < row["last_seen_at"])
    return bool((old["last_raw_page_id"] or 0) <= row["last_raw_page_id"])


def _classify(
    rows: list[dict[str, Any]],
    records: Sequence[Review],
    before: dict[int, dict[str, Any]],
) -> RecordCounts:
    new = updated = unchanged = 0
    changed: set[int] = set()
    for row, record in zip(rows, records, strict=True):
        old = before.get(row["id"])
        if old is None:
            new += 1
            changed.add(row["id"])
        elif _is_newest(old, row) and (
            any(old[name] != row[name] for name in _CONTENT_FIELDS)
            or tuple(old["tags"]) != tuple(record.tags)
        ):
            updated += 1
            changed.add(row["id"])
        else:
            unchanged += 1
    return RecordCounts(new, updated, unchanged, frozenset(changed))
