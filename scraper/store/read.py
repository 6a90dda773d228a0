"""The read side of the archive: filtered, streaming queries that give back records.

``ReviewQuery`` holds the filters of ``reviews query`` / ``reviews export``;
``iter_records`` streams contract records (``Record.to_dict()`` shape, built
from the tables, with each site's own keys rebuilt by its ``record_extra``) in
constant memory: rows come through a server-side cursor
(``yield_per``) and the tags and observations of each chunk of reviews are
fetched with one query per chunk, never one per row.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scraper.config import StoreSettings
from scraper.errors import UsageError
from scraper.records import Author, Rating, Record, ReviewedItem
from scraper.sites import SITES, SiteRules, known_tags, site_for_record

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Select
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "SORT_KEYS",
    "ReviewQuery",
    "iter_records",
    "observation_dict",
    "parse_when",
    "raw_pages_of",
    "select_reviews",
]

#: ``--sort`` values; a leading ``-`` sorts descending (``--sort=-date``).
SORT_KEYS: tuple[str, ...] = ("id", "date", "score", "entry", "user")
#: Rows read per query when streaming reviews out.
CHUNK = StoreSettings().read_chunk_rows


def _tag_key(label: str) -> str:
    return re.sub(r"[\s_-]+", "-", label.strip().lower())


def _generic(site: str | None) -> bool:
    """Whether *site* (``--site``) is a site without a folder of its own: free tags and types."""
    return site is not None and not any(registered.owns(site) for registered in SITES)


@contextmanager
def naming(parameter: str) -> Iterator[None]:
    """Within the block, a UsageError that names no parameter is said to be *parameter*'s."""
    try:
        yield
    except UsageError as error:
        if error.parameter is not None:
            raise
        raise UsageError(error.message, parameter=parameter) from None


def parse_when(value: str, argument: str, *, end: bool = False) -> datetime:
    """Read ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or an ISO datetime as UTC.

    With *end*, a date-only value means the end of that period (the returned
    instant is the exclusive upper bound), so ``--until 2020`` keeps all of 2020.
    Raises UsageError naming *argument* when the value is not a date.
    """
    text = value.strip()
    parts = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text)
    try:
        if parts:
            year, month, day = (int(p) if p else None for p in parts.groups())
            start = datetime(year or 1, month or 1, day or 1, tzinfo=UTC)
            if not end:
                return start
            if day is not None:
                return start + timedelta(days=1)
            if month is not None:
                return (start + timedelta(days=32)).replace(day=1)
            return start.replace(year=start.year + 1)
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise UsageError(
            f"{argument}: {value!r} is not a date (use YYYY-MM-DD or an ISO date-time)",
            parameter=argument,
        ) from None
    except OverflowError:  # 9999-12-31 + 1 day, or year 1 moved to UTC
        raise UsageError(
            f"{argument}: {value!r} is out of the range of dates", parameter=argument
        ) from None


def _score(value: int | str | None, argument: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise UsageError(
            f"{argument}: {value!r} is not a whole number from 1 to 10", parameter=argument
        ) from None
    if not 1 <= number <= 10:
        raise UsageError(
            f"{argument}: {number} is out of range (scores go from 1 to 10)", parameter=argument
        )
    return number


#: The largest integer both databases store (SQLite INTEGER, PostgreSQL BIGINT).
_MAX_ID = 2**63 - 1


def _limit(value: int | str | None, argument: str = "limit") -> int | None:
    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(
            f"{argument}: {value!r} is not a positive whole number", parameter=argument
        )
    if count > _MAX_ID:
        raise UsageError(
            f"{argument}: {value!r} is too large (at most {_MAX_ID})", parameter=argument
        )
    return count


def _tags(labels: Sequence[str], site: str | None, argument: str = "tag") -> tuple[str, ...]:
    """Return the sites' own labels for *labels* (case, spaces and dashes ignored).

    A label no registered site knows is refused, unless ``--site`` names a site
    without a folder of its own (whose tags are whatever its pages say).
    """
    known = site_for_record(site).known_tags if site and not _generic(site) else known_tags()
    by_key = {_tag_key(label): label for label in known}
    if _generic(site):
        return tuple(by_key.get(_tag_key(label), label.strip()) for label in labels)
    unknown = [label for label in labels if _tag_key(label) not in by_key]
    if unknown:
        raise UsageError(
            f"{argument}: unknown tag {unknown[0]!r} (known: {', '.join(known)}; "
            "another site's tags need a site)",
            parameter=argument,
        )
    return tuple(by_key[_tag_key(label)] for label in labels)


def _type(value: str | None, site: str | None, argument: str = "type") -> str | None:
    """Return the item type *value*, refused when no registered site has it (see ``_tags``)."""
    if value is None or _generic(site):
        return value.strip() if value else None
    sites = [site_for_record(site)] if site else list(SITES)
    types = [kind for one in sites for kind in one.item_types]
    if value not in types:
        raise UsageError(
            f"{argument}: {value!r} is not one of {', '.join(types)}"
            " (another site's types need a site)",
            parameter=argument,
        )
    return value


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    """Which reviews to read, in which order. Every filter is optional.

    ``site``: the records' namespace (a site's name, or a host: ``example.com``);
    ``entry``: an item key in a site's own syntax (``Site.item_keys``), else
    part of the item's name (or its whole key); ``user``: an author name,
    current or former; ``tags``: all must be present; ``type``: the item type;
    ``min_score`` / ``max_score``: the rating's value; ``since`` / ``until``:
    review date, ``until`` exclusive; ``search``: full-text terms.
    """

    entry: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    type: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    sort: str = "id"
    limit: int | None = None
    site: str | None = None

    @classmethod
    def from_args(
        cls,
        *,
        entry: str | None = None,
        user: str | None = None,
        tags: Sequence[str] = (),
        type: str | None = None,
        min_score: int | str | None = None,
        max_score: int | str | None = None,
        since: str | None = None,
        until: str | None = None,
        search: str | None = None,
        sort: str = "id",
        limit: int | str | None = None,
        site: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> ReviewQuery:
        """Build a query from the strings a user typed (options, URL parameters).

        Errors name each argument as *names* spells it (``{"search": "q"}`` for a
        URL's ``?q=``), else by its parameter (``min_score``). Returns the checked
        query; raises UsageError naming the bad argument (``UsageError.parameter``).
        """
        from scraper.store.fts import parse_search

        def name(parameter: str) -> str:
            return names.get(parameter, parameter) if names is not None else parameter

        site = site.strip() if site else None
        if site == "":
            raise UsageError(
                f"{name('site')}: give a site, e.g. example.com", parameter=name("site")
            )
        low = _score(min_score, name("min_score"))
        high = _score(max_score, name("max_score"))
        if low is not None and high is not None and low > high:
            raise UsageError(
                f"{name('min_score')} {low} is above {name('max_score')} {high}",
                parameter=name("min_score"),
                also=(name("max_score"),),
            )
        start = parse_when(since, name("since")) if since else None
        stop = parse_when(until, name("until"), end=True) if until else None
        if start and stop and start >= stop:
            raise UsageError(
                f"{name('since')} {since} is not before {name('until')} {until}",
                parameter=name("since"),
                also=(name("until"),),
            )
        if sort.lstrip("-") not in SORT_KEYS:
            raise UsageError(
                f"{name('sort')}: {sort!r} is not one of {', '.join(SORT_KEYS)} (- to reverse)",
                parameter=name("sort"),
            )
        if search is not None:
            with naming(name("search")):
                parse_search(search, name("search"))  # refuse an empty search now
        return cls(
            entry=entry.strip() if entry else None,
            user=user.strip() if user else None,
            tags=_tags(tags, site, name("tag")),
            type=_type(type, site, name("type")),
            min_score=low,
            max_score=high,
            since=start,
            until=stop,
            search=search,
            sort=sort,
            limit=_limit(limit, name("limit")),
            site=site,
        )

    def is_empty(self) -> bool:
        """Return True when no filter is set (sort and limit aside)."""
        named = self.entry or self.user or self.tags or self.type or self.search or self.site
        return not named and all(
            v is None for v in (self.min_score, self.max_score, self.since, self.until)
        )


def _claimed_items(query: ReviewQuery) -> list[tuple[str, str]]:
    """Return the (site, item key) pairs ``--entry`` names in a site's own syntax."""
    if not query.entry:
        return []
    sites = [site for site in SITES if query.site is None or site.owns(query.site)]
    return [(site.name, key) for site in sites for key in (site.item_keys(query.entry) or ())]


def _conditions(
    query: ReviewQuery, dialect_name: str, wide_entry: bool
) -> list[ColumnElement[bool]]:
    import sqlalchemy as sa

    from scraper.schema.tables import author_names, authors, items, review_tags, reviews, tags
    from scraper.store.fts import parse_search, search_condition

    where: list[ColumnElement[bool]] = []
    if query.site:
        where.append(reviews.c.site == query.site)
    # Items and authors are matched in their own small tables first (uncorrelated
    # subqueries, evaluated once), so the reviews are then reached by their indexes.
    if query.entry:
        claimed = _claimed_items(query)
        matching = sa.select(items.c.id)
        if claimed:
            matching = matching.where(sa.tuple_(items.c.site, items.c.key).in_(claimed))
        else:
            pattern = f"%{_escape_like(query.entry)}%"
            matching = matching.where(
                sa.or_(items.c.name.ilike(pattern, escape="\\"), items.c.key == query.entry)
            )
        # "+ 0" keeps SQLite off the item index when many items match (see iter_records).
        column = reviews.c.item_id + 0 if wide_entry else reviews.c.item_id
        where.append(column.in_(matching))
    if query.user:
        name = query.user.lower()
        current = sa.select(authors.c.id).where(sa.func.lower(authors.c.name) == name)
        former = sa.select(author_names.c.author_id).where(
            sa.func.lower(author_names.c.name) == name
        )
        where.append(reviews.c.author_id.in_(sa.union(current, former)))
    for label in query.tags:
        # Case is ignored: a site without a folder of its own has labels as its pages spell them.
        named = sa.select(tags.c.id).where(sa.func.lower(tags.c.name) == label.lower())
        tagged = sa.select(review_tags.c.review_id).where(
            review_tags.c.review_id == reviews.c.id, review_tags.c.tag_id.in_(named)
        )
        where.append(tagged.exists())
    if query.type:
        where.append(reviews.c.item_type == query.type)
    if query.min_score is not None:
        where.append(reviews.c.rating_value >= query.min_score)
    if query.max_score is not None:
        where.append(reviews.c.rating_value <= query.max_score)
    if query.since is not None:
        where.append(reviews.c.date >= query.since)
    if query.until is not None:
        where.append(reviews.c.date < query.until)
    if query.search is not None:
        where.append(search_condition(dialect_name, parse_search(query.search)))
    return where


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def select_reviews(
    query: ReviewQuery, dialect_name: str, *, wide_entry: bool = False
) -> Select[Any]:
    """Return the SELECT (reviews joined with item and author) that *query* describes.

    *wide_entry*: the entry filter matches many items, so reading the sort
    index until the limit beats reading every review of those items.
    """
    import sqlalchemy as sa

    from scraper.schema.tables import authors, items, reviews

    order_columns = {
        "id": [reviews.c.id],
        # No id tie-break on the indexed keys: it would stop SQLite from reading the
        # date / rating index in order and stopping at --limit (ties: index order).
        "date": [reviews.c.date],
        "score": [reviews.c.rating_value],
        "entry": [items.c.name, reviews.c.id],
        "user": [authors.c.name, reviews.c.id],
    }[query.sort.lstrip("-")]
    descending = query.sort.startswith("-")
    statement = (
        sa.select(*_record_columns())
        .join(items, items.c.id == reviews.c.item_id)
        .join(authors, authors.c.id == reviews.c.author_id)
        .where(*_conditions(query, dialect_name, wide_entry))
        .order_by(*(column.desc() if descending else column for column in order_columns))
    )
    return statement.limit(query.limit) if query.limit else statement


def _record_columns() -> list[Any]:
    """The columns a record is built from, in the order ``_record`` unpacks them."""
    import sqlalchemy as sa

    from scraper.schema.tables import authors, items, reviews

    c = reviews.c
    return [
        c.id,
        c.site,
        c.key,
        c.url,
        items.c.key,
        items.c.name,
        items.c.type,
        items.c.url,
        authors.c.name,
        authors.c.url,
        authors.c.image_url,
        c.date_text,
        c.title,
        c.rating_value,
        c.rating_best,
        c.rating_worst,
        c.body,
        # As text, decoded in ``_record``: SQLAlchemy's JSON reading was a quarter of an export.
        sa.type_coerce(c.reactions, sa.Text),
        c.source,
        sa.type_coerce(c.extra, sa.Text),
    ]


def raw_pages_of(query: ReviewQuery, dialect_name: str) -> Select[Any]:
    """Return a SELECT of the ids of the raw pages on which *query*'s reviews were seen."""
    import sqlalchemy as sa

    from scraper.schema.tables import review_observations, reviews

    selected = select_reviews(query, dialect_name).with_only_columns(reviews.c.id)
    return (
        sa.select(review_observations.c.raw_page_id)
        .where(review_observations.c.review_id.in_(selected.subquery().select()))
        .distinct()
    )


def _record(row: Sequence[Any], tag_names: Sequence[str]) -> Record:
    # Unpacked by position: attribute access per field is the export's hot spot.
    (_, site, key, url, item_key, item_name, item_type, item_url, author_name, author_url,
     image_url, date, title, value, best, worst, body, reactions, source, extra) = row  # fmt: skip
    record = Record(
        site=site,
        id=key,
        url=url,
        item=ReviewedItem(name=item_name, type=item_type, url=item_url),
        author=Author(name=author_name, url=author_url, image_url=image_url),
        date=date,
        title=title,
        rating=Rating(value, best, worst) if value is not None else None,
        body=body,
        tags=tuple(tag_names),
        reactions=_json(reactions),
        source=source,
    )
    stored = _json(extra)
    return record._replace(extra=site_for_record(site).record_extra(record, item_key, stored))


_DECODE = json.JSONDecoder().raw_decode


def _json(value: Any) -> Any:
    """A JSON column read as text (SQLite), or already decoded by the driver."""
    if isinstance(value, str):
        return _DECODE(value)[0]
    return value


def _tags_by_review(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    import sqlalchemy as sa

    from scraper.schema.tables import review_tags, tags

    found: dict[int, list[str]] = defaultdict(list)
    rows = conn.execute(
        sa.select(review_tags.c.review_id, tags.c.name)
        .join(tags, tags.c.id == review_tags.c.tag_id)
        .where(review_tags.c.review_id.in_(ids))
        .order_by(review_tags.c.review_id, review_tags.c.position)
    )
    for review_id, name in rows:
        found[review_id].append(name)
    return found


def observation_dict(row: Any, site: SiteRules) -> dict[str, Any]:
    """Return one history entry from a ``review_observations`` row: ``observed_at``,
    the site's own keys (``site.history_keys``), then ``rating`` (the value),
    ``author_name``, ``reactions``, ``body_sha256``, ``tags``, ``extra`` (a site's own
    fields, such as sub-scores) and ``raw_page``: the page it was read from (the row
    joined by ``observed_on``)."""
    generic = {
        "rating": _number(row.rating_value),
        "author_name": row.author_name,
        "reactions": row.reactions,
        "body_sha256": row.body_sha256,
        "tags": row.tags,
        "extra": row.extra,
        "raw_page": raw_page_dict(row),
    }
    entry: dict[str, Any] = {"observed_at": row.observed_at.isoformat()}
    entry.update(site.history_keys(generic))
    entry.update(generic)
    return entry


def _number(value: float | None) -> int | float | None:
    return int(value) if value is not None and float(value).is_integer() else value


def raw_page_dict(row: Any) -> dict[str, Any]:
    """The raw page an observation was read from: ``{id, url, fetched_at}``."""
    fetched_at = row.page_fetched_at.isoformat()
    return {"id": row.raw_page_id, "url": row.page_url, "fetched_at": fetched_at}


def observed_on(statement: Select[Any]) -> Select[Any]:
    """Add each observation's raw page (URL, capture time) to a select of observations."""
    from scraper.schema.tables import raw_pages
    from scraper.schema.tables import review_observations as obs

    return statement.add_columns(
        raw_pages.c.final_url.label("page_url"), raw_pages.c.fetched_at.label("page_fetched_at")
    ).join_from(obs, raw_pages, raw_pages.c.id == obs.c.raw_page_id)


def _observations_by_review(
    conn: Connection, ids: Sequence[int], sites: dict[int, SiteRules]
) -> dict[int, list[Any]]:
    import sqlalchemy as sa

    from scraper.schema.tables import review_observations as obs

    found: dict[int, list[Any]] = defaultdict(list)
    rows = conn.execute(
        observed_on(sa.select(obs))
        .where(obs.c.review_id.in_(ids))
        .order_by(obs.c.review_id, obs.c.observed_at, obs.c.id)
    )
    for row in rows:
        found[row.review_id].append(observation_dict(row, sites[row.review_id]))
    return found


def iter_records(
    engine: Engine, query: ReviewQuery | None = None, *, history: bool = False, chunk: int = CHUNK
) -> Iterator[dict[str, Any]]:
    """Stream the contract records that *query* selects, in its order.

    With *history*, each record also gets ``observations``: every capture of the
    review in time order. Memory stays flat whatever the archive's size.
    Raises UsageError for a search on an engine without full text, StoreError
    when the database cannot be read.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from scraper.errors import StoreError

    query = query or ReviewQuery()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # A server-side cursor is planned for its first 10% of rows by default,
                # which picks "walk the primary key, test each body" over the GIN index.
                conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
            wide = _wide_entry_match(conn, query)
            statement = select_reviews(query, engine.dialect.name, wide_entry=wide)
            result = conn.execution_options(yield_per=chunk).execute(statement)
            for rows in result.partitions():
                yield from _records(conn, rows, history)
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read reviews: {error}") from error


def _wide_entry_match(conn: Connection, query: ReviewQuery) -> bool:
    """Whether a name filter matches so many items that SQLite should walk the
    sort index instead (its planner has no estimate for a LIKE on another table).

    Walking the index reads about limit / f reviews where f is the share of
    items matched; using the item index reads about f * reviews, then sorts.
    """
    if conn.dialect.name != "sqlite" or not query.limit or not query.entry:
        return False
    if query.sort.lstrip("-") not in ("id", "date", "score") or _claimed_items(query):
        return False
    import sqlalchemy as sa

    from scraper.schema.tables import items, reviews

    pattern = f"%{_escape_like(query.entry)}%"
    matched = conn.execute(
        sa.select(sa.func.count()).where(items.c.name.ilike(pattern, escape="\\"))
    ).scalar_one()
    total = conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()
    count = conn.execute(sa.select(sa.func.max(sa.literal_column("rowid")))
                         .select_from(reviews)).scalar() or 0  # fmt: skip
    share = matched / total if total else 0.0
    return bool(share) and query.limit / share < share * count


def _records(conn: Connection, rows: Iterable[Any], history: bool) -> Iterator[dict[str, Any]]:
    rows = list(rows)
    ids = [row[0] for row in rows]
    tag_names = _tags_by_review(conn, ids)
    observations = {}
    if history:
        sites = {row[0]: site_for_record(row[1]) for row in rows}
        observations = _observations_by_review(conn, ids, sites)
    for row in rows:
        record = _record(row, tag_names.get(row[0], ())).to_dict()
        if history:
            record["observations"] = observations.get(row[0], [])
        yield record
