"""Every SQL statement ``reviews serve`` runs, in one module (SQLAlchemy Core, bound
parameters only), so that a schema change is ported here and nowhere else.

Lists of reviews are read through the store's read side (``ReviewQuery`` /
``select_reviews`` and its row-to-record step), so the pages, the Jikan API and
``reviews export`` give the same records. Everything else here (totals, facets,
observations, items, authors, runs) is a small SELECT of its own.

Names used by the pages: a review is ``(site, id)``; MyAnimeList's site is
``myanimelist`` and its ids are MAL's. An item key is ``anime:1`` / ``manga:2``;
an author key is the archive's own user number (names change, it does not).
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
from scraper.store.read import ReviewQuery, observation_dict, select_reviews

__all__ = [
    "MAL_SITE",
    "Page",
    "ReviewFilter",
    "author_names",
    "author_row",
    "count_reviews",
    "entry_exists",
    "facets",
    "item_row",
    "items_monthly",
    "items_scores",
    "observations",
    "observations_as_of",
    "overview",
    "raw_page",
    "review_meta",
    "review_page",
    "review_record",
    "runs",
    "top_review_ids",
    "user_by_name",
]

MAL_SITE = "myanimelist"


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """A ``ReviewQuery`` plus what the web adds: the site, an author by key, the
    Jikan flags (leave preliminary / spoiler reviews out) and a set of ids."""

    query: ReviewQuery = field(default_factory=ReviewQuery)
    site: str | None = None
    author_id: int | None = None
    no_preliminary: bool = False
    no_spoilers: bool = False
    ids: tuple[int, ...] | None = None
    seen_by: datetime | None = None  # first captured before this instant (as_of)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of records and how many there are in all (at most ``cap``)."""

    records: list[dict[str, Any]]
    total: int
    capped: bool


def _statement(conn: Connection, flt: ReviewFilter) -> Select[Any]:
    """Return the store's SELECT of records for *flt* (joined, ordered by its sort)."""
    statement = select_reviews(replace(flt.query, limit=None), conn.dialect.name)
    where = _extra_conditions(flt)
    return statement.where(*where) if where else statement


def _extra_conditions(flt: ReviewFilter) -> list[ColumnElement[bool]]:
    r = t.reviews.c
    where: list[ColumnElement[bool]] = []
    if flt.site is not None and flt.site != MAL_SITE:
        where.append(sa.false())
    if flt.author_id is not None:
        where.append(r.user_id == flt.author_id)
    if flt.no_preliminary:
        where.append(r.is_preliminary.is_(False))
    if flt.no_spoilers:
        where.append(r.is_spoiler.is_(False))
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
    """Return the SELECT of one page of ids in *flt*'s order (ties broken by row).

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
    column = {"date": r.date, "score": r.score}.get(key, r.id)
    sqlite = conn.dialect.name == "sqlite"
    tie = sa.literal_column("reviews.rowid") if sqlite else r.id
    walk = sqlite and key in ("date", "score") and _walk_index(conn, flt, offset + size)
    if walk:
        q = flt.query
        rest = replace(flt, query=replace(q, search=None, since=None, until=None,
                                          min_score=None, max_score=None))  # fmt: skip
        statement = _matching(conn, rest, r.id).where(*_unindexed(q))
    else:
        statement = _matching(conn, flt, r.id)
    order = [column.desc(), tie.desc()] if flt.query.sort.startswith("-") else [column, tie]
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
        where.append(plus(r.score) >= query.min_score)
    if query.max_score is not None:
        where.append(plus(r.score) <= query.max_score)
    return where


def _walk_index(conn: Connection, flt: ReviewFilter, needed: int) -> bool:
    narrow = flt.query.entry or flt.query.user or flt.author_id is not None or flt.ids
    if narrow:
        return False
    if flt.query.search is None:
        return True
    from scraper.store.fts import FTS_TABLE, parse_search

    terms = parse_search(flt.query.search).sqlite_match()
    matched = conn.execute(
        sa.text(f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :terms"),
        {"terms": terms},
    ).scalar_one()
    total = conn.execute(sa.select(sa.func.max(t.reviews.c.id))).scalar() or 0
    share = matched / total if total else 0.0
    # Reading the index costs about needed / share rows; sorting the matches, matched rows.
    return bool(share) and needed / share < matched


def review_page(conn: Connection, flt: ReviewFilter, *, offset: int, size: int) -> list[Any]:
    """Return the records (contract v1 dicts) of one page of *flt*'s reviews, in its order."""
    from scraper.store.read import _records

    ids = [row[0] for row in conn.execute(_ordered_ids(conn, flt, offset=offset, size=size))]
    if not ids:
        return []
    rows = conn.execute(select_reviews(ReviewQuery(), conn.dialect.name).where(
        t.reviews.c.id.in_(ids)))  # fmt: skip
    by_id = {record["mal_id"]: record for record in _records(conn, rows, history=False)}
    return [by_id[i] for i in ids if i in by_id]


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
    hits = _matching(conn, flt, r.id, r.type, r.score, r.date).limit(cap)
    counts: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    rows = conn.execute(hits).all()
    for _id, kind, score, date in rows:
        counts["site"][MAL_SITE] += 1
        counts["type"][kind] += 1
        counts["score"][score] += 1
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


def review_record(conn: Connection, site: str, review_id: int) -> dict[str, Any] | None:
    """Return the record of one review as it reads now, or None when not archived."""
    if site != MAL_SITE:
        return None
    found = review_page(conn, ReviewFilter(ids=(review_id,)), offset=0, size=1)
    return found[0] if found else None


def review_meta(conn: Connection, review_id: int) -> Any:
    """Return the review's bookkeeping row (user id, first/last seen, body hash)."""
    r = t.reviews.c
    return conn.execute(
        sa.select(r.user_id, r.entry_id, r.first_seen_at, r.last_seen_at, r.body_sha256).where(
            r.id == review_id
        )
    ).first()


def observations(conn: Connection, review_id: int) -> list[dict[str, Any]]:
    """Return every capture of a review, oldest first: ``observation_dict`` plus
    ``raw_page_id``, ``tags`` and the page's URL."""
    o = t.review_observations
    rows = conn.execute(
        sa.select(o, t.raw_pages.c.final_url)
        .join(t.raw_pages, t.raw_pages.c.id == o.c.raw_page_id)
        .where(o.c.review_id == review_id)
        .order_by(o.c.observed_at, o.c.id)
    )
    found = []
    for row in rows:
        entry = observation_dict(row)
        entry.update(raw_page_id=row.raw_page_id, tags=list(row.tags), page_url=row.final_url)
        found.append(entry)
    return found


def observations_as_of(
    conn: Connection, review_ids: Sequence[int], before: datetime
) -> dict[int, dict[str, Any]]:
    """Return, per review, its newest capture taken before *before* (with ``raw_page_id``)."""
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
        sa.select(o)
        .join(newest, sa.and_(newest.c.review_id == o.c.review_id, newest.c.at == o.c.observed_at))
        .order_by(o.c.id)
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = observation_dict(row)
        entry.update(raw_page_id=row.raw_page_id, tags=list(row.tags))
        found[row.review_id] = entry
    return found


def raw_page(conn: Connection, raw_page_id: int) -> tuple[str, bytes] | None:
    """Return a stored page's URL and body, or None when it is gone."""
    from scraper.store.bodies import load_body

    row = conn.execute(
        sa.select(t.raw_pages.c.final_url, t.raw_pages.c.body_sha256).where(
            t.raw_pages.c.id == raw_page_id
        )
    ).first()
    if row is None:
        return None
    return row.final_url, load_body(conn, row.body_sha256)


def entry_exists(conn: Connection, kind: str, mal_id: int) -> bool:
    """Return True when the archive holds the entry ``kind``/``mal_id``."""
    e = t.entries.c
    found = conn.execute(sa.select(e.id).where(e.type == kind, e.mal_id == mal_id)).first()
    return found is not None


def item_row(conn: Connection, site: str, key: str) -> Any:
    """Return the item (entry) row for ``anime:1``-style *key*, or None."""
    kind, _, number = key.partition(":")
    if site != MAL_SITE or kind not in ("anime", "manga") or not number.isdigit():
        return None
    e = t.entries.c
    return conn.execute(
        sa.select(e.id, e.type, e.mal_id, e.title, e.url, e.first_seen_at, e.last_seen_at).where(
            e.type == kind, e.mal_id == int(number)
        )
    ).first()


def items_scores(conn: Connection, entry_id: int) -> list[tuple[int, int]]:
    """Return (score, reviews) for one entry, every score 1..10 listed."""
    r = t.reviews.c
    rows: dict[int, int] = dict(
        conn.execute(
            sa.select(r.score, sa.func.count()).where(r.entry_id == entry_id).group_by(r.score)
        ).all()
    )
    return [(score, int(rows.get(score, 0))) for score in range(1, 11)]


def items_monthly(conn: Connection, entry_id: int) -> list[tuple[str, int]]:
    """Return (YYYY-MM, reviews) for one entry, by review date, oldest first."""
    r = t.reviews.c
    if conn.dialect.name == "sqlite":
        month: Any = sa.func.substr(r.date, 1, 7)
    else:
        month = sa.func.to_char(r.date.op("AT TIME ZONE")(sa.literal("UTC")), "YYYY-MM")
    rows = conn.execute(
        sa.select(month.label("m"), sa.func.count())
        .where(r.entry_id == entry_id)
        .group_by(month)
        .order_by(month)
    )
    return [(str(m), int(n)) for m, n in rows]


def author_row(conn: Connection, site: str, key: str) -> Any:
    """Return the user row for *key* (the archive's user number), or None."""
    if site != MAL_SITE or not key.isdigit():
        return None
    u = t.users.c
    return conn.execute(
        sa.select(u.id, u.username, u.url, u.image_url).where(u.id == int(key))
    ).first()


def author_names(conn: Connection, user_id: int) -> list[Any]:
    """Return every name the user was seen under, with first and last capture times."""
    n = t.user_names.c
    return list(
        conn.execute(
            sa.select(n.username, n.first_seen_at, n.last_seen_at)
            .where(n.user_id == user_id)
            .order_by(n.first_seen_at)
        )
    )


def user_by_name(conn: Connection, name: str) -> int | None:
    """Return the user number of a current or former *name* (case ignored), or None."""
    wanted = name.lower()
    current = sa.select(t.users.c.id).where(sa.func.lower(t.users.c.username) == wanted)
    former = sa.select(t.user_names.c.user_id).where(
        sa.func.lower(t.user_names.c.username) == wanted
    )
    return conn.execute(current.union(former).limit(1)).scalar()


def top_review_ids(conn: Connection, flt: ReviewFilter, limit: int) -> list[int]:
    """Return the ids of *flt*'s most-reacted reviews (reactions, else helpful votes)."""
    r = t.reviews.c
    weight = sa.func.coalesce(r.reactions_overall, r.helpful_count, 0)
    statement = (
        _statement(conn, flt)
        .with_only_columns(r.id)
        .order_by(None)
        .order_by(weight.desc(), r.date.desc(), r.id.desc())
        .limit(limit)
    )
    return [int(row[0]) for row in conn.execute(statement)]


def overview(conn: Connection) -> dict[str, Any]:
    """Return what the archive holds: totals, newest capture, reviews by type."""

    def count(table: Any) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    by_type: dict[str, int] = dict(
        conn.execute(sa.select(t.entries.c.type, sa.func.count()).group_by(t.entries.c.type)).all()
    )
    newest = conn.execute(sa.select(sa.func.max(t.raw_pages.c.fetched_at))).scalar()
    return {
        "sites": [MAL_SITE] if by_type else [],
        "items": count(t.entries),
        "items_by_type": by_type,
        "reviews": count(t.reviews),
        "authors": count(t.users),
        "captures": count(t.raw_pages),
        "observations": count(t.review_observations),
        "newest_capture": newest,
    }


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
