"""Who wrote a review: users across renames.

A review page names its reviewer, and MAL users rename themselves, so users have
no stable key on the page. The rules:

- a review already stored keeps its user; a capture newer than the one that gave
  the user's current name renames the user, and every name seen is kept in
  ``user_names`` (with when it was first and last seen);
- a new review finds its user by a name seen before (on the same page first: a
  known review there may show its user's new name), else creates one;
- when a rename gives a user the current name of another user with the same MAL
  avatar id (``/userimages/{id}.jpg``, the only stable id on the page), the two are
  one person seen out of order: the newer row is merged into the older one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scraper.records import Review
from scraper.schema.tables import reviews, user_names, users
from scraper.store.statements import user_names_upsert

__all__ = ["lock_usernames", "resolve_users"]

#: The account id inside a MAL avatar URL.
_AVATAR_ID = re.compile(r"/userimages/(\d+)\.")


# Statements built once: building one costs about as much as running it.
_LOCK = sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")
#: A user's current name, from a capture newer than the one that gave the stored name.
_RENAME = (
    sa.update(users)
    .where(users.c.id == sa.bindparam("uid"), users.c.name_seen_at < sa.bindparam("name_seen_at"))
    .values(
        username=sa.bindparam("username"),
        url=sa.bindparam("url"),
        image_url=sa.bindparam("image_url"),
        name_seen_at=sa.bindparam("name_seen_at"),
    )
)


#: The same at an equal capture time: the later raw page wins, as it does for reviews.
_RENAME_AT_TIE = (
    sa.update(users)
    .where(users.c.id == sa.bindparam("uid"), users.c.name_seen_at <= sa.bindparam("name_seen_at"))
    .values(
        username=sa.bindparam("username"),
        url=sa.bindparam("url"),
        image_url=sa.bindparam("image_url"),
        name_seen_at=sa.bindparam("name_seen_at"),
    )
)


def lock_usernames(connection: Connection, names: Iterable[str]) -> None:
    """Take a transaction-long PostgreSQL advisory lock per username, in key order."""
    if connection.dialect.name != "postgresql":
        return  # SQLite writers are serialized by BEGIN IMMEDIATE already
    keys = sorted({_lock_key(name) for name in names})
    connection.execute(_LOCK, {"keys": keys})


def _lock_key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def resolve_users(
    connection: Connection,
    records: Sequence[Review],
    before: dict[int, dict[str, Any]],
    observed_at: datetime,
    raw_page_id: int,
) -> dict[int, int]:
    """Return review id → user id, creating users for names never seen before.

    *before* holds the stored reviews' rows, with their user's current ``username``.
    Also renames users seen under a newer name and records every name seen.
    """
    chosen = {r.mal_id: before[r.mal_id]["user_id"] for r in records if r.mal_id in before}
    # A known review names its user's current name: a new review on the same page
    # under that name is by the same user, even before the rename is stored.
    by_name = {r.user.username: chosen[r.mal_id] for r in records if r.mal_id in chosen}
    unknown = {
        r.user.username: r.user
        for r in records
        if r.mal_id not in before and r.user.username not in by_name
    }
    if unknown:
        for name, user_id in connection.execute(
            sa.select(user_names.c.username, sa.func.min(user_names.c.user_id))
            .where(user_names.c.username.in_(list(unknown)))
            .group_by(user_names.c.username)
        ):
            by_name.setdefault(name, user_id)
        missing = [unknown[name] for name in sorted(unknown) if name not in by_name]
        if missing:
            created = connection.execute(
                sa.insert(users).returning(users.c.id, sort_by_parameter_order=True),
                [_user_row(user, observed_at) for user in missing],
            )
            by_name.update(zip((u.username for u in missing), created.scalars(), strict=True))
    for record in records:
        if record.mal_id not in chosen:
            chosen[record.mal_id] = by_name[record.user.username]
    # Captures with the same time (files saved together, say) are ordered like the
    # review rows: the later raw page wins, so a review and its user's name agree.
    ties = {
        chosen[r.mal_id]
        for r in records
        if r.mal_id in before
        and before[r.mal_id]["last_seen_at"] == observed_at
        and (before[r.mal_id]["last_raw_page_id"] or 0) <= raw_page_id
    }
    _refresh_users(connection, records, chosen, observed_at, ties)
    if not unknown and not _renamed(records, before):
        return chosen  # no user got a new current name: nobody new to merge with
    merged = _merge_same_people(connection, chosen.values())
    return {review_id: merged.get(user_id, user_id) for review_id, user_id in chosen.items()}


def _renamed(records: Sequence[Review], before: dict[int, dict[str, Any]]) -> bool:
    """Whether a known review shows its user under a name other than the current one."""
    return any(
        record.mal_id in before and before[record.mal_id]["username"] != record.user.username
        for record in records
    )


def _user_row(user: Any, observed_at: datetime) -> dict[str, Any]:
    return {
        "username": user.username,
        "url": user.url,
        "image_url": user.image_url,
        "name_seen_at": observed_at,
    }


def _refresh_users(
    connection: Connection,
    records: Sequence[Review],
    chosen: dict[int, int],
    observed_at: datetime,
    ties: set[int],
) -> None:
    """Rename users seen under a new name in a newer capture; remember every name."""
    seen = {chosen[r.mal_id]: r.user for r in records}
    updates = [
        {"uid": user_id, **_user_row(user, observed_at)} for user_id, user in sorted(seen.items())
    ]
    for statement, rows in (
        (_RENAME, [row for row in updates if row["uid"] not in ties]),
        (_RENAME_AT_TIE, [row for row in updates if row["uid"] in ties]),
    ):
        if rows:
            connection.execute(statement, rows)
    names = sorted({(user_id, user.username) for user_id, user in seen.items()})
    connection.execute(
        user_names_upsert(connection.dialect.name),
        [
            {"user_id": uid, "username": name, "first_seen_at": observed_at}
            | {"last_seen_at": observed_at}
            for uid, name in names
        ],
    )


def _merge_same_people(connection: Connection, user_ids: Iterable[int]) -> dict[int, int]:
    """Merge users that now share a current name and a MAL avatar id into the oldest.

    Return merged user id → the id it was merged into.
    """
    other = users.alias("other")
    pairs = connection.execute(
        sa.select(users.c.id, users.c.image_url, other.c.id, other.c.image_url)
        .join(other, sa.and_(other.c.username == users.c.username, other.c.id != users.c.id))
        .where(users.c.id.in_(sorted(set(user_ids))))
    ).all()
    merged: dict[int, int] = {}
    for first, first_image, second, second_image in pairs:
        avatar = _avatar_id(first_image)
        keep, drop = min(first, second), max(first, second)
        if avatar is not None and avatar == _avatar_id(second_image) and drop not in merged:
            _merge(connection, keep, drop)
            merged[drop] = keep
    return merged


def _avatar_id(image_url: str | None) -> str | None:
    match = _AVATAR_ID.search(image_url or "")
    return match.group(1) if match else None


def _merge(connection: Connection, keep: int, drop: int) -> None:
    connection.execute(sa.update(reviews).where(reviews.c.user_id == drop).values(user_id=keep))
    names = connection.execute(
        sa.select(
            user_names.c.username, user_names.c.first_seen_at, user_names.c.last_seen_at
        ).where(user_names.c.user_id == drop)
    ).all()
    if names:
        connection.execute(
            user_names_upsert(connection.dialect.name),
            [
                {"user_id": keep, "username": n, "first_seen_at": first, "last_seen_at": last}
                for n, first, last in names
            ],
        )
    connection.execute(sa.delete(user_names).where(user_names.c.user_id == drop))
    # The survivor takes the newest name, whichever row it came from.
    newest = connection.execute(
        sa.select(users.c.username, users.c.url, users.c.image_url, users.c.name_seen_at)
        .where(users.c.id.in_([keep, drop]))
        .order_by(users.c.name_seen_at.desc())
        .limit(1)
    ).one()
    connection.execute(sa.delete(users).where(users.c.id == drop))
    connection.execute(sa.update(users).where(users.c.id == keep).values(**newest._mapping))
