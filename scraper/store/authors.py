"""Who wrote a review: authors, per site, across renames.

Each site says how its authors are keyed (``Site.author_key``). Where it gives a
key (a profile URL, a name that never changes), the author is that key's row.
Where it gives none (its users rename themselves, so the page holds no stable
key), authors are found by every name they were seen under. The rules:

- a review already stored keeps its author; a capture newer than the one that gave
  the author's current name renames the author, and every name seen is kept in
  ``author_names`` (with when it was first and last seen);
- a new review finds its author by its key, or (without keys) by a name seen
  before on that site (on the same page first: a known review there may show its
  author's new name), else creates one;
- when a rename gives an author the current name of another author of the same
  site whom the site calls the same person (``Site.same_author``: an avatar
  id, say), the two are one person seen out of order: the newer row is merged
  into the older one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from scraper.records import Author, Record
from scraper.schema.tables import author_names, authors, reviews
from scraper.sites import SiteRules
from scraper.store.driverexec import inserted_ids
from scraper.store.pglookup import bound_values, rows_by_key
from scraper.store.pgrows import columns_of, execute_arrays
from scraper.store.statements import (
    AUTHOR_COLUMNS,
    AUTHOR_NAME_COLUMNS,
    author_names_upsert,
    author_names_upsert_arrays,
    authors_create_arrays,
    authors_insert,
)

__all__ = ["lock_authors", "resolve_authors"]

ReviewKey = tuple[str, str]

# Statements built once: building one costs about as much as running it.
_LOCK = sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")
_NAME_VALUES: dict[str, Any] = {
    "name": sa.bindparam("name"),
    "url": sa.bindparam("url"),
    "image_url": sa.bindparam("image_url"),
    "name_seen_at": sa.bindparam("name_seen_at"),
}
#: An author's current name, from a capture newer than the one that gave the stored name.
_RENAME = (
    sa.update(authors)
    .where(
        authors.c.id == sa.bindparam("uid"), authors.c.name_seen_at < sa.bindparam("name_seen_at")
    )
    .values(**_NAME_VALUES)
)
#: The same at an equal capture time: the later raw page wins, as it does for reviews.
_RENAME_AT_TIE = (
    sa.update(authors)
    .where(
        authors.c.id == sa.bindparam("uid"), authors.c.name_seen_at <= sa.bindparam("name_seen_at")
    )
    .values(**_NAME_VALUES)
)
#: The authors of a site seen under some names. Found from the names (an index),
#: each checked for its site: a join let SQLite walk every author of the site.
_BY_NAME = (
    sa.select(author_names.c.name, sa.func.min(author_names.c.author_id))
    .where(
        author_names.c.name.in_(sa.bindparam("names", expanding=True)),
        sa.exists().where(
            authors.c.id == author_names.c.author_id, authors.c.site == sa.bindparam("site")
        ),
    )
    .group_by(author_names.c.name)
)
_BY_KEY = sa.select(authors.c.key, authors.c.id).where(
    authors.c.site == sa.bindparam("site"), authors.c.key.in_(sa.bindparam("keys", expanding=True))
)


@functools.cache
def _pg_lookups() -> tuple[Any, Any]:
    """``(_BY_NAME, _BY_KEY)`` on PostgreSQL: each name one probe of its index and the
    site of each author found one probe of the primary key; each key one probe of
    ``(site, key)`` (``scraper.store.pglookup``). The plain forms read every author of
    the site while the tables have no statistics yet.

    Built on first use: their arrays need SQLAlchemy's PostgreSQL dialect, which a
    writer to SQLite never loads (it costs a write command about 50 ms of start-up).
    """
    names = bound_values("names", author_names.c.name.type)
    site_of = (
        sa.select(authors.c.site).where(authors.c.id == author_names.c.author_id)
    ).scalar_subquery()
    first_named = (
        sa.select(sa.func.min(author_names.c.author_id).label("id"))
        .where(author_names.c.name == names.c.value, sa.bindparam("site") == site_of)
        .lateral("named")
    )
    by_name = (
        sa.select(names.c.value, first_named.c.id)
        .select_from(names)
        .join(first_named, sa.true())
        .where(first_named.c.id.is_not(None))
    )
    by_key = rows_by_key(
        authors,
        [authors.c.key, authors.c.id],
        authors.c.key,
        "keys",
        [authors.c.site == sa.bindparam("site")],
    )
    return by_name, by_key


_CREATE = sa.insert(authors)
_OTHER = authors.alias("other")
#: Pairs of one site's authors sharing a current name, among some (bound ``ids``).
_SAME_NAME = (
    sa.select(authors.c.id, authors.c.image_url, _OTHER.c.id, _OTHER.c.image_url)
    .join(
        _OTHER,
        sa.and_(
            _OTHER.c.site == authors.c.site,
            _OTHER.c.name == authors.c.name,
            _OTHER.c.id != authors.c.id,
        ),
    )
    .where(authors.c.id.in_(sa.bindparam("ids", expanding=True)))
)


def _identity(site: SiteRules, record: Record) -> tuple[bool, str]:
    """Return (keyed, the author's identity): its key, else its name."""
    key = site.author_key(record)
    return (True, key) if key is not None else (False, record.author.name or "")


def lock_authors(
    connection: Connection, records: Iterable[Record], sites: Mapping[str, SiteRules]
) -> None:
    """Take a transaction-long PostgreSQL advisory lock per author, in key order."""
    if connection.dialect.name != "postgresql":
        return  # SQLite writers are serialized by BEGIN IMMEDIATE already
    names = {f"{r.site}\x00{_identity(sites[r.site], r)[1]}" for r in records}
    keys = sorted({_lock_key(name) for name in names})
    connection.execute(_LOCK, {"keys": keys})


def _lock_key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def resolve_authors(
    connection: Connection,
    records: Sequence[Record],
    sites: Mapping[str, SiteRules],
    before: dict[ReviewKey, dict[str, Any]],
    observed_at: datetime,
    raw_page_id: int,
) -> dict[ReviewKey, int]:
    """Return (site, review key) → author id, creating authors never seen before.

    *before* holds the stored reviews' rows, with their author's current ``author_name``.
    Also renames authors seen under a newer name and records every name seen.
    """
    chosen: dict[ReviewKey, int] = {}
    by_site: dict[str, list[Record]] = {}
    for record in records:
        by_site.setdefault(record.site, []).append(record)
    for name, group in sorted(by_site.items()):
        chosen.update(
            _resolve_site(connection, name, sites[name], group, before, observed_at, raw_page_id)
        )
    return chosen


def _resolve_site(
    connection: Connection,
    site_name: str,
    site: SiteRules,
    records: Sequence[Record],
    before: dict[ReviewKey, dict[str, Any]],
    observed_at: datetime,
    raw_page_id: int,
) -> dict[ReviewKey, int]:
    def key(record: Record) -> ReviewKey:
        return (record.site, record.id)

    keyed = _identity(site, records[0])[0]
    ident = {key(r): _identity(site, r)[1] for r in records}
    chosen = {key(r): before[key(r)]["author_id"] for r in records if key(r) in before}
    # A known review names its author's current name: a new review on the same page
    # under that name is by the same author, even before the rename is stored.
    by_ident = {ident[key(r)]: chosen[key(r)] for r in records if key(r) in chosen}
    unknown = {
        ident[key(r)]: r.author
        for r in records
        if key(r) not in before and ident[key(r)] not in by_ident
    }
    created: set[int] = set()
    if unknown:
        found, created = _find_or_create(connection, site_name, keyed, unknown, observed_at)
        by_ident.update(found)
    for record in records:
        chosen.setdefault(key(record), by_ident[ident[key(record)]])
    # Captures with the same time (files saved together, say) are ordered like the
    # review rows: the later raw page wins, so a review and its author's name agree.
    ties = {
        chosen[key(r)]
        for r in records
        if key(r) in before
        and before[key(r)]["last_seen_at"] == observed_at
        and (before[key(r)]["last_raw_page_id"] or 0) <= raw_page_id
    }
    _refresh_authors(connection, records, chosen, observed_at, ties, created)
    renamed = any(
        key(r) in before and before[key(r)]["author_name"] != r.author.name for r in records
    )
    # An author created just now has a name no author of the site was seen under.
    candidates = set(chosen.values()) - created
    if keyed or not candidates or (not unknown and not renamed):
        return chosen  # no author got a new current name: nobody new to merge with
    merged = _merge_same_people(connection, site, candidates)
    return {review: merged.get(author, author) for review, author in chosen.items()}


def _find_or_create(
    connection: Connection,
    site_name: str,
    keyed: bool,
    unknown: dict[str, Author],
    observed_at: datetime,
) -> tuple[dict[str, int], set[int]]:
    """Return identity → author id for *unknown* identities, creating the missing, and
    the ids of the authors created by names (keyed ones are never merged)."""
    if keyed:
        _create(
            connection,
            [
                _author_row(author, observed_at) | {"site": site_name, "key": ident}
                for ident, author in sorted(unknown.items())
            ],
            keyed=True,
        )
        by_key = _pg_lookups()[1] if connection.dialect.name == "postgresql" else _BY_KEY
        found = connection.execute(by_key, {"site": site_name, "keys": sorted(unknown)})
        return {str(ident): int(author_id) for ident, author_id in found}, set()
    by_name = {
        str(name): int(author_id)
        for name, author_id in connection.execute(
            _pg_lookups()[0] if connection.dialect.name == "postgresql" else _BY_NAME,
            {"site": site_name, "names": list(unknown)},
        )
    }
    missing = [name for name in sorted(unknown) if name not in by_name]
    created: list[int] = []
    if missing:
        created = _create(
            connection,
            [
                _author_row(unknown[name], observed_at) | {"site": site_name, "key": None}
                for name in missing
            ],
            keyed=False,
        )
        by_name.update(zip(missing, created, strict=True))
    return by_name, set(created)


def _create(connection: Connection, rows: list[dict[str, Any]], *, keyed: bool) -> list[int]:
    """Insert author *rows*; return the new ids in the rows' order (none when *keyed*:
    those are read back by key, as another writer may have inserted one first)."""
    if connection.dialect.name == "postgresql":  # one statement, one array per column
        written = execute_arrays(connection, authors_create_arrays(keyed=keyed), _AUTHORS, rows)
        # Identity values grow in the order the rows were inserted (the arrays' order).
        return [] if keyed else sorted(written.scalars())
    if keyed:
        connection.execute(authors_insert(connection.dialect.name), rows)
        return []
    return inserted_ids(connection, _CREATE, rows)


_AUTHORS = columns_of(authors, AUTHOR_COLUMNS)


def _author_row(author: Author, observed_at: datetime) -> dict[str, Any]:
    return {
        "name": author.name,
        "url": author.url,
        "image_url": author.image_url,
        "name_seen_at": observed_at,
    }


def _refresh_authors(
    connection: Connection,
    records: Sequence[Record],
    chosen: dict[ReviewKey, int],
    observed_at: datetime,
    ties: set[int],
    created: set[int],
) -> None:
    """Rename authors seen under a new name in a newer capture; remember every name.

    Authors *created* from this capture hold its names already."""
    seen = {chosen[(r.site, r.id)]: r.author for r in records}
    updates = [
        {"uid": author_id, **_author_row(author, observed_at)}
        for author_id, author in sorted(seen.items())
        if author_id not in created
    ]
    # Row by row, in id order (one UPDATE over arrays would lock the rows in whatever
    # order its join takes them: two writers renaming the same authors could deadlock).
    for statement, rows in (
        (_RENAME, [row for row in updates if row["uid"] not in ties]),
        (_RENAME_AT_TIE, [row for row in updates if row["uid"] in ties]),
    ):
        if rows:
            connection.execute(statement, rows)
    postgres = connection.dialect.name == "postgresql"  # one statement, one array per column
    names = sorted({(aid, a.name) for aid, a in seen.items() if a.name is not None})
    rows = [
        {"author_id": aid, "name": name, "first_seen_at": observed_at}
        | {"last_seen_at": observed_at}
        for aid, name in names
    ]
    if rows and postgres:
        execute_arrays(connection, author_names_upsert_arrays(), _AUTHOR_NAMES, rows)
    elif rows:
        connection.execute(author_names_upsert(connection.dialect.name), rows)


_AUTHOR_NAMES = columns_of(author_names, AUTHOR_NAME_COLUMNS)


def _merge_same_people(
    connection: Connection, site: SiteRules, author_ids: Iterable[int]
) -> dict[int, int]:
    """Merge authors that now share a current name and are one person (the site says)
    into the oldest. Return merged author id → the id it was merged into."""
    pairs = connection.execute(_SAME_NAME, {"ids": sorted(set(author_ids))}).all()
    merged: dict[int, int] = {}

    def survivor(author_id: int) -> int:
        while author_id in merged:
            author_id = merged[author_id]
        return author_id

    for first, first_image, second, second_image in pairs:
        if not site.same_author(first_image, second_image):
            continue
        # Either of the pair may already be merged into another: merge the survivors.
        one, other = survivor(first), survivor(second)
        if one != other:
            keep, drop = min(one, other), max(one, other)
            _merge(connection, keep, drop)
            merged[drop] = keep
    return {author_id: survivor(author_id) for author_id in merged}


def _merge(connection: Connection, keep: int, drop: int) -> None:
    connection.execute(sa.update(reviews).where(reviews.c.author_id == drop).values(author_id=keep))
    names = connection.execute(
        sa.select(
            author_names.c.name, author_names.c.first_seen_at, author_names.c.last_seen_at
        ).where(author_names.c.author_id == drop)
    ).all()
    if names:
        connection.execute(
            author_names_upsert(connection.dialect.name),
            [
                {"author_id": keep, "name": n, "first_seen_at": first, "last_seen_at": last}
                for n, first, last in names
            ],
        )
    connection.execute(sa.delete(author_names).where(author_names.c.author_id == drop))
    # The survivor takes the newest name, whichever row it came from.
    newest = connection.execute(
        sa.select(authors.c.name, authors.c.url, authors.c.image_url, authors.c.name_seen_at)
        .where(authors.c.id.in_([keep, drop]))
        .order_by(authors.c.name_seen_at.desc())
        .limit(1)
    ).one()
    connection.execute(sa.delete(authors).where(authors.c.id == drop))
    connection.execute(sa.update(authors).where(authors.c.id == keep).values(**newest._mapping))
