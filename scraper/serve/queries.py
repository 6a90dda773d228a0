"""Every SQL statement ``reviews serve`` runs, in one module (SQLAlchemy Core, bound
parameters only), so that a schema change is ported here and nowhere else.

Lists of reviews are read through the store's read side (``ReviewQuery`` /
``select_reviews`` and its row-to-record step), so the pages, the Jikan API and
``reviews export`` give the same records. Everything else here (totals, facets,
observations, items, authors, runs) is a small SELECT of its own.

Names used by the pages: a review is ``(site, key)`` (MyAnimeList: ``myanimelist``
and MAL's review id), an item ``(site, key)`` (MyAnimeList: ``anime:1``), an
author ``(site, number)`` with the archive's own row number (an author may have
no key of its own: MyAnimeList's users rename themselves).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Select
from sqlalchemy.sql.elements import ColumnElement

from scraper.schema import tables as t
from scraper.store.read import ReviewQuery, observation_dict, observed_on, select_reviews

__all__ = [
    "MAL_SITE",
    "ReviewFilter",
    "author_names",
    "author_row",
    "authors_named",
    "count_reviews",
    "facets",
    "full_text_count",
    "item_row",
    "items_monthly",
    "items_scores",
    "never_analysed",
    "observations",
    "observations_as_of",
    "ordered_ids",
    "overview",
    "records_of",
    "review_page",
    "review_record",
    "review_row",
    "runs",
    "search_only",
    "top_review_ids",
    "user_by_name",
]

MAL_SITE = "myanimelist"


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """A ``ReviewQuery`` plus what the web adds: an item or author by row, the Jikan flags
    (leave MyAnimeList's preliminary / spoiler reviews out) and a set of rows."""

    query: ReviewQuery = field(default_factory=ReviewQuery)
    item_id: int | None = None
    author_id: int | None = None
    no_preliminary: bool = False
    no_spoilers: bool = False
    ids: tuple[int, ...] | None = None
    seen_by: datetime | None = None  # first captured before this instant (as_of)


def _statement(conn: Connection, flt: ReviewFilter) -> Select[Any]:
    """Return the store's SELECT of records for *flt* (joined, ordered by its sort).

    An author's name is looked up here rather than by the store, exact spelling
    first (the name indexes), so a big archive is not read name by name for it.
    """
    query, where = flt.query, _extra_conditions(flt)
    if query.user:
        ids = authors_named(conn, query.user, query.site)
        where.append(t.reviews.c.author_id.in_(ids) if ids else sa.false())
        query = replace(query, user=None)
    statement = select_reviews(replace(query, limit=None), conn.dialect.name)
    return statement.where(*where) if where else statement


def _extra_conditions(flt: ReviewFilter) -> list[ColumnElement[bool]]:
    r = t.reviews.c
    where: list[ColumnElement[bool]] = []
    if flt.item_id is not None:
        where.append(r.item_id == flt.item_id)
    if flt.author_id is not None:
        where.append(r.author_id == flt.author_id)
    if flt.no_preliminary:
        where.append(sa.not_(sa.func.coalesce(r.extra["is_preliminary"].as_boolean(), False)))
    if flt.no_spoilers:
        where.append(sa.not_(sa.func.coalesce(r.extra["is_spoiler"].as_boolean(), False)))
    if flt.ids is not None:
        where.append(r.id.in_(flt.ids))
    if flt.seen_by is not None:
        where.append(r.first_seen_at < flt.seen_by)
    return where


def _matching(conn: Connection, flt: ReviewFilter, *columns: Any) -> Select[Any]:
    """Return ``SELECT columns FROM reviews WHERE <flt>``, without the joins and the
    order the records need (every condition reads reviews or a subquery)."""
    where = _statement(conn, flt).whereclause
    statement = sa.select(*columns).select_from(t.reviews)
    return statement.where(where) if where is not None else statement


def _ordered_ids(conn: Connection, flt: ReviewFilter, *, offset: int, size: int) -> Select[Any]:
    """Return the SELECT of one page of row ids in *flt*'s order (ties broken by row).

    SQLite plans a filtered date or score sort by reading every matching review
    (through the full-text list, or a date or score range) and sorting them; when
    many reviews match, reading the sort's own index from the top and stopping at
    the page is far cheaper. Then the filters that could steer it elsewhere are
    written with SQLite's no-op unary ``+``, which keeps them off their indexes.
    That is done when no narrow filter (an item, an author, a few ids) is there to
    start from and a full-text search matches a large enough share of the archive.
    """
    r = t.reviews.c
    key = flt.query.sort.lstrip("-")
    column = {"date": r.date, "score": r.rating_value}.get(key, r.id)
    walk = conn.dialect.name == "sqlite" and key in ("date", "score")
    walk = walk and _walk_index(conn, flt, offset + size)
    if walk:
        q = flt.query
        rest = replace(
            flt,
            query=replace(q, search=None, since=None, until=None, min_score=None, max_score=None),
        )
        statement = _matching(conn, rest, r.id).where(*_unindexed(q))
    else:
        statement = _matching(conn, flt, r.id)
    order = [column.desc(), r.id.desc()] if flt.query.sort.startswith("-") else [column, r.id]
    return statement.order_by(*order).offset(offset).limit(size)


def _unindexed(query: ReviewQuery) -> list[ColumnElement[bool]]:
    """*query*'s search, date and score filters, written so SQLite uses no index for them."""
    from scraper.store.fts import FTS_TABLE, parse_search

    def plus(column: Any) -> Any:
        return sa.type_coerce(sa.literal_column(f"+reviews.{column.name}"), column.type)

    r = t.reviews.c
    where: list[ColumnElement[bool]] = []
    if query.search is not None:
        found = sa.text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :walk_terms")
        terms = parse_search(query.search).sqlite_match()
        where.append(plus(r.id).in_(found.bindparams(walk_terms=terms).columns(sa.column("rowid"))))
    if query.since is not None:
        where.append(plus(r.date) >= query.since)
    if query.until is not None:
        where.append(plus(r.date) < query.until)
    if query.min_score is not None:
        where.append(plus(r.rating_value) >= query.min_score)
    if query.max_score is not None:
        where.append(plus(r.rating_value) <= query.max_score)
    return where


def search_only(flt: ReviewFilter) -> bool:
    """Whether *flt* is a full-text search and nothing else (no filter, any order)."""
    bare = replace(flt.query, search=None, sort="id", limit=None)
    return (
        flt.query.search is not None
        and bare == ReviewQuery()
        and flt == ReviewFilter(query=flt.query)
    )


def full_text_count(conn: Connection, terms: str) -> int:
    """Return how many reviews hold the full-text *terms* (SQLite: counted by the index)."""
    from scraper.store.fts import FTS_TABLE, parse_search

    match = parse_search(terms).sqlite_match()
    return int(
        conn.execute(
            sa.text(f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :terms"),
            {"terms": match},
        ).scalar_one()
    )


def _walk_index(conn: Connection, flt: ReviewFilter, needed: int) -> bool:
    rows = (flt.item_id, flt.author_id, flt.ids)
    narrow = bool(flt.query.entry or flt.query.user) or any(v is not None for v in rows)
    if narrow:
        return False
    if flt.query.search is None:
        return True
    matched = full_text_count(conn, flt.query.search)
    total = conn.execute(sa.select(sa.func.max(t.reviews.c.id))).scalar() or 0  # ~ the count
    share = matched / total if total else 0.0
    # Reading the index costs about needed / share rows; sorting the matches, matched rows.
    return bool(share) and needed / share < matched


def ordered_ids(conn: Connection, flt: ReviewFilter, *, limit: int, offset: int = 0) -> list[int]:
    """Return the row ids of *limit* of *flt*'s reviews from *offset* on, in its order."""
    statement = _ordered_ids(conn, flt, offset=offset, size=limit)
    return [int(row[0]) for row in conn.execute(statement)]


def review_page(conn: Connection, flt: ReviewFilter, *, offset: int, size: int) -> list[Any]:
    """Return the records (``Record.to_dict()``) of one page of *flt*'s reviews, in its
    order; each also has ``_links``: its item key and author row (for the pages)."""
    ids = [row[0] for row in conn.execute(_ordered_ids(conn, flt, offset=offset, size=size))]
    return records_of(conn, ids)


def records_of(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Return the records of the reviews with row *ids*, in that order (see review_page)."""
    from scraper.store.read import _records

    if not ids:
        return []
    r = t.reviews.c
    statement = select_reviews(ReviewQuery(), conn.dialect.name).add_columns(r.author_id)
    rows = conn.execute(statement.where(r.id.in_(ids))).all()
    found = {}
    plain = [tuple(row)[:-1] for row in rows]  # the store's columns, without author_id
    for row, record in zip(rows, _records(conn, plain, history=False), strict=True):
        # row[4] is items.key (the store's record columns; reviews.key comes first).
        record["_links"] = {"row": row.id, "item": row[4], "author": row.author_id}
        found[row.id] = record
    return [found[i] for i in ids if i in found]


def count_reviews(conn: Connection, flt: ReviewFilter, *, cap: int | None = None) -> int:
    """Return how many reviews *flt* selects (counting stops past *cap* when given)."""
    inner = _matching(conn, flt, t.reviews.c.id)
    if cap is not None:
        inner = inner.limit(cap + 1)
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner.subquery())).scalar_one())


def facets(conn: Connection, flt: ReviewFilter, *, cap: int) -> dict[str, list[tuple[Any, int]]]:
    """Return counts by site, type, score, year and tag over *cap* of *flt*'s hits
    (the first the database finds, in no particular order)."""
    r = t.reviews.c
    hits = _matching(conn, flt, r.id, r.site, r.item_type, r.rating_value, r.date).limit(cap)
    counts: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    rows = conn.execute(hits).all()
    for _id, site, kind, rating, date in rows:
        counts["site"][site] += 1
        if kind is not None:
            counts["type"][kind] += 1
        if rating is not None:
            counts["score"][_number(rating)] += 1
        if date is not None:
            counts["year"][date.year] += 1
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 900):
        tagged = conn.execute(
            sa.select(t.tags.c.name, sa.func.count())
            .join(t.review_tags, t.review_tags.c.tag_id == t.tags.c.id)
            .where(t.review_tags.c.review_id.in_(ids[start : start + 900]))
            .group_by(t.tags.c.name)
        )
        for name, count in tagged:
            counts["tag"][name] += count
    return {
        "site": sorted(counts["site"].items()),
        "type": sorted(counts["type"].items()),
        "score": sorted(counts["score"].items(), reverse=True),
        "year": sorted(counts["year"].items(), reverse=True),
        "tag": sorted(counts["tag"].items(), key=lambda pair: (-pair[1], pair[0])),
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def review_row(conn: Connection, site: str, key: str) -> Any:
    """Return the review's bookkeeping row (id, author, body hash, first/last seen), or None."""
    r = t.reviews.c
    return conn.execute(
        sa.select(
            r.id, r.author_id, r.item_id, r.body_sha256, r.first_seen_at, r.last_seen_at
        ).where(r.site == site, r.key == key)
    ).first()


def review_record(conn: Connection, site: str, key: str) -> dict[str, Any] | None:
    """Return the record of one review as it reads now, or None when not archived."""
    row = review_row(conn, site, key)
    found = records_of(conn, [row.id]) if row is not None else []
    return found[0] if found else None


def observations(conn: Connection, review_id: int, site: str) -> list[dict[str, Any]]:
    """Return every capture of a review (by row), oldest first: ``observation_dict``
    plus ``raw_page_id`` and the page's URL."""
    from scraper.sites import site_for_record

    o = t.review_observations
    rows = conn.execute(
        observed_on(sa.select(o))
        .where(o.c.review_id == review_id)
        .order_by(o.c.observed_at, o.c.id)
    )
    rules = site_for_record(site)
    found = []
    for row in rows:
        entry = observation_dict(row, rules)
        entry.update(raw_page_id=row.raw_page_id, page_url=row.page_url)
        found.append(entry)
    return found


def observations_as_of(
    conn: Connection, review_ids: Sequence[int], before: datetime
) -> dict[int, dict[str, Any]]:
    """Return, per review row, its newest capture taken before *before* (``observation_dict``
    of MyAnimeList's rules, with ``raw_page_id``)."""
    from scraper.sites import site_for_record

    if not review_ids:
        return {}
    o = t.review_observations
    newest = (
        sa.select(o.c.review_id, sa.func.max(o.c.observed_at).label("at"))
        .where(o.c.review_id.in_(review_ids), o.c.observed_at < before)
        .group_by(o.c.review_id)
        .subquery()
    )
    rows = conn.execute(
        observed_on(sa.select(o))
        .join(newest, sa.and_(newest.c.review_id == o.c.review_id, newest.c.at == o.c.observed_at))
        .order_by(o.c.id)
    )
    rules = site_for_record(MAL_SITE)
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = observation_dict(row, rules)
        entry.update(raw_page_id=row.raw_page_id)
        found[row.review_id] = entry
    return found


def item_row(conn: Connection, site: str, key: str) -> Any:
    """Return the item row (id, site, key, type, name, url, first/last seen), or None."""
    i = t.items.c
    return conn.execute(
        sa.select(
            i.id, i.site, i.key, i.type, i.name, i.url, i.first_seen_at, i.last_seen_at
        ).where(i.site == site, i.key == key)
    ).first()


def items_scores(conn: Connection, item_id: int) -> list[tuple[Any, int]]:
    """Return (rating value, reviews) for one item, lowest first; MyAnimeList's 1..10,
    and 1..5 (or up to the top rating) for whole-number ratings, are all listed (a score
    nobody gave shows as 0)."""
    r = t.reviews.c
    rows = conn.execute(
        sa.select(r.rating_value, sa.func.count())
        .where(r.item_id == item_id, r.rating_value.is_not(None))
        .group_by(r.rating_value)
    ).all()
    counts = {_number(value): int(count) for value, count in rows}
    site = conn.execute(sa.select(t.items.c.site).where(t.items.c.id == item_id)).scalar()
    if site == MAL_SITE:
        return [(score, counts.get(score, 0)) for score in range(1, 11)]
    if counts and all(isinstance(value, int) and 0 <= value <= 10 for value in counts):
        # Whole ratings (stars): every step from 1 to the scale's top, 5 at least.
        top = max(5, *(int(value) for value in counts))
        return [(score, counts.get(score, 0)) for score in range(1, top + 1)]
    return sorted(counts.items())


def items_monthly(conn: Connection, item_id: int) -> list[tuple[str, int]]:
    """Return (YYYY-MM, reviews) for one item, by review date (UTC), oldest first."""
    r = t.reviews.c
    if conn.dialect.name == "sqlite":
        month: Any = sa.func.substr(r.date, 1, 7)
    else:
        month = sa.func.to_char(r.date.op("AT TIME ZONE")(sa.literal("UTC")), "YYYY-MM")
    rows = conn.execute(
        sa.select(month.label("m"), sa.func.count())
        .where(r.item_id == item_id, r.date.is_not(None))
        .group_by(month)
        .order_by(month)
    )
    return [(str(m), int(n)) for m, n in rows]


def author_row(conn: Connection, site: str, number: str) -> Any:
    """Return the author row (id, site, key, name, url, image_url) for its row *number*."""
    if not (number.isascii() and number.isdigit() and len(number) <= 12):
        return None
    a = t.authors.c
    return conn.execute(
        sa.select(a.id, a.site, a.key, a.name, a.url, a.image_url).where(
            a.id == int(number), a.site == site
        )
    ).first()


def author_names(conn: Connection, author_id: int) -> list[Any]:
    """Return every name the author was seen under, with first and last capture times."""
    n = t.author_names.c
    return list(
        conn.execute(
            sa.select(n.name, n.first_seen_at, n.last_seen_at)
            .where(n.author_id == author_id)
            .order_by(n.first_seen_at)
        )
    )


def authors_named(conn: Connection, name: str, site: str | None = None) -> list[int]:
    """Return the rows of the authors (of *site*, else of every site) with the current
    or former *name*: spelled exactly when any is, else with case ignored."""
    a, n = t.authors.c, t.author_names.c
    for same in (
        lambda column: column == name,
        lambda column: sa.func.lower(column) == name.lower(),
    ):
        current = sa.select(a.id).where(same(a.name))
        former = sa.select(n.author_id).where(same(n.name))
        if site is not None:
            current = current.where(a.site == site)
            former = former.join(t.authors, a.id == n.author_id).where(a.site == site)
        found = sorted({int(row[0]) for row in conn.execute(current.union(former))})
        if found:
            return found
    return []


def user_by_name(conn: Connection, name: str) -> int | None:
    """Return the row of MyAnimeList's user with the current or former *name*."""
    found = authors_named(conn, name, MAL_SITE)
    return found[0] if found else None


def top_review_ids(conn: Connection, flt: ReviewFilter, limit: int) -> list[int]:
    """Return the ids of *flt*'s most-reacted reviews (reactions, else helpful votes)."""
    r = t.reviews.c
    weight = sa.func.coalesce(
        r.reactions["overall"].as_integer(), r.extra["helpful_count"].as_integer(), 0
    )
    statement = (
        _statement(conn, flt)
        .with_only_columns(r.id)
        .order_by(None)
        .order_by(weight.desc(), r.date.desc(), r.id.desc())
        .limit(limit)
    )
    return [int(row[0]) for row in conn.execute(statement)]


def overview(conn: Connection) -> dict[str, Any]:
    """Return what the archive holds: totals, items by site, the newest capture."""

    def count(table: Any) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    by_site: dict[str, int] = dict(
        conn.execute(sa.select(t.items.c.site, sa.func.count()).group_by(t.items.c.site)).all()
    )
    newest = conn.execute(sa.select(sa.func.max(t.raw_pages.c.fetched_at))).scalar()
    return {
        "sites": sorted(by_site),
        "items": count(t.items),
        "items_by_site": by_site,
        "reviews": count(t.reviews),
        "authors": count(t.authors),
        "captures": count(t.raw_pages),
        "observations": count(t.review_observations),
        "newest_capture": newest,
    }


def never_analysed(conn: Connection) -> bool:
    """Return True on PostgreSQL when the reviews table, big enough for plans to matter
    (16 MiB), has no planner statistics yet (``reltuples`` -1: never analysed)."""
    if conn.dialect.name != "postgresql":
        return False
    row = conn.execute(
        sa.text(
            "SELECT reltuples, pg_relation_size(oid) FROM pg_class "
            "WHERE oid = to_regclass('reviews')"
        )
    ).first()
    return row is not None and float(row[0]) < 0 and int(row[1]) > 16 * 1024 * 1024


def runs(conn: Connection, *, limit: int) -> list[Any]:
    """Return the newest *limit* crawl / job runs, newest first."""
    c = t.crawl_runs.c
    return list(
        conn.execute(
            sa.select(
                c.id,
                c.job,
                c.command,
                c.started_at,
                c.finished_at,
                c.pages,
                c.reviews_new,
                c.reviews_updated,
                c.not_modified,
                c.errors,
                c.outcome,
                c.message,
                c.seeds,
            )
            .order_by(c.started_at.desc(), c.id.desc())
            .limit(limit)
        )
    )
