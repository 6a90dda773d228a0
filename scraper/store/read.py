"""The read side of the archive: filtered, streaming queries that give back records.

``ReviewQuery`` holds the filters of ``reviews query`` / ``reviews export``;
``read_records`` (from a URL) and ``iter_records`` (from an engine) stream contract
records (``Record.to_dict()`` shape, built from the tables, with each site's own
keys rebuilt by its ``record_extra``) in constant memory: rows come in chunks
(a server-side cursor on PostgreSQL) and the tags and observations of each chunk
of reviews are fetched with one query per chunk, never one per row. The SQL is
``reviewsql``'s text; on a SQLite file it runs through the stdlib ``sqlite3``
module, so ``reviews query`` / ``export`` never load SQLAlchemy there.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from scraper.config import StoreSettings
from scraper.errors import StoreError, UsageError
from scraper.records import Author, Rating, Record, ReviewedItem
from scraper.sites import RULES, SiteRules, known_tags, site_for_record
from scraper.store import reviewsql

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Select

    from scraper.store.lite import Source

__all__ = [
    "SORT_KEYS",
    "ReviewQuery",
    "iter_records",
    "observation_dict",
    "parse_when",
    "raw_pages_of",
    "read_records",
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
    return site is not None and not any(registered.owns(site) for registered in RULES)


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
    sites = [site_for_record(site)] if site else list(RULES)
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
    sites = [site for site in RULES if query.site is None or site.owns(query.site)]
    return [(site.name, key) for site in sites for key in (site.item_keys(query.entry) or ())]


def select_reviews(
    query: ReviewQuery, dialect_name: str, *, wide_entry: bool = False
) -> Select[Any]:
    """Return the SELECT (reviews joined with item and author) that *query* describes:
    ``reviewsql.review_sql`` as a Core statement, for callers that add to it (the web).

    *wide_entry*: the entry filter matches many items, so reading the sort
    index until the limit beats reading every review of those items.
    """
    import sqlalchemy as sa

    from scraper.schema.tables import authors, items, reviews

    where, params = reviewsql.conditions(
        query, dialect_name, claimed=_claimed_items(query), wide_entry=wide_entry
    )
    descending = query.sort.startswith("-")
    order = [_column(*column) for column in reviewsql.order_by(query)]
    statement = (
        sa.select(*_record_columns())
        .join(items, items.c.id == reviews.c.item_id)
        .join(authors, authors.c.id == reviews.c.author_id)
        .order_by(*(column.desc() if descending else column for column in order))
    )
    if where:
        statement = statement.where(sa.text(f"({' AND '.join(where)})").bindparams(**params))
    return statement.limit(query.limit) if query.limit else statement


def _column(table: str, name: str) -> Any:
    from scraper.schema import tables

    return getattr(tables, table).c[name]


def _record_columns() -> list[Any]:
    """The Core columns of ``reviewsql.RECORD_COLUMNS`` (JSON read as text)."""
    import sqlalchemy as sa

    columns = [_column(*column) for column in reviewsql.RECORD_COLUMNS]
    return [
        sa.type_coerce(column, sa.Text) if column.name in ("reactions", "extra") else column
        for column in columns
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


def _tags_by_review(source: Source, ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for review_id, name in source.rows(reviewsql.tags_sql(ids)):
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


class Observation(NamedTuple):
    """One ``reviewsql.observations_sql`` row, its values as ``observation_dict`` reads them."""

    review_id: int
    raw_page_id: int
    observed_at: datetime
    author_name: str | None
    rating_value: float | None
    reactions: Any
    tags: Any
    body_sha256: str | None
    extra: Any
    page_url: str
    page_fetched_at: datetime


def _instant(value: Any) -> datetime:
    """An instant as the driver gives it (SQLite: naive UTC text) as an aware UTC datetime."""
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _observations_by_review(
    source: Source, ids: Sequence[int], sites: dict[int, SiteRules]
) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    for row in source.rows(reviewsql.observations_sql(ids)):
        (review_id, page_id, observed_at, author, rating, reactions, tags, sha, extra, url,
         fetched_at) = row  # fmt: skip
        observation = Observation(
            review_id, page_id, _instant(observed_at), author, rating, _json(reactions),
            _json(tags), sha, _json(extra), url, _instant(fetched_at),
        )  # fmt: skip
        found[review_id].append(observation_dict(observation, sites[review_id]))
    return found


def iter_records(
    engine: Engine, query: ReviewQuery | None = None, *, history: bool = False, chunk: int = CHUNK
) -> Iterator[dict[str, Any]]:
    """Stream the contract records that *query* selects, in its order, from *engine*
    (see ``read_records``, which needs no engine on SQLite)."""
    from sqlalchemy.exc import SQLAlchemyError

    from scraper.store.lite import AlchemySource

    try:
        with engine.connect() as conn:
            yield from _read(AlchemySource(conn), query or ReviewQuery(), history, chunk)
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read reviews: {error}") from error


def read_records(
    url: str,
    query: ReviewQuery | None = None,
    *,
    history: bool = False,
    chunk: int = CHUNK,
    engine: Engine | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the contract records that *query* selects, in its order, from the
    archive at *url* (never created).

    With *history*, each record also gets ``observations``: every capture of the
    review in time order. Memory stays flat whatever the archive's size. *engine*,
    when given, is an open engine on *url* to read through.
    Raises UsageError for a search on a database without full text, StoreError
    when the database cannot be read.
    """
    from scraper.store.source import open_source

    with open_source(url, engine) as source:
        try:
            yield from _read(source, query or ReviewQuery(), history, chunk)
        except source.errors as error:
            raise StoreError(f"cannot read reviews: {error}") from error


def _read(
    source: Source, query: ReviewQuery, history: bool, chunk: int
) -> Iterator[dict[str, Any]]:
    if source.dialect_name == "postgresql":
        # A server-side cursor is planned for its first 10% of rows by default,
        # which picks "walk the primary key, test each body" over the GIN index.
        source.execute("SET LOCAL cursor_tuple_fraction = 1.0")
    sql, params = reviewsql.review_sql(
        query,
        source.dialect_name,
        claimed=_claimed_items(query),
        wide_entry=_wide_entry_match(source, query),
    )
    for rows in source.chunks(sql, params, chunk):
        yield from _source_records(source, rows, history)


def _wide_entry_match(source: Source, query: ReviewQuery) -> bool:
    """Whether a name filter matches so many items that SQLite should walk the
    sort index instead (its planner has no estimate for a LIKE on another table).

    Walking the index reads about limit / f reviews where f is the share of
    items matched; using the item index reads about f * reviews, then sorts.
    """
    if source.dialect_name != "sqlite" or not query.limit or not query.entry:
        return False
    if query.sort.lstrip("-") not in ("id", "date", "score") or _claimed_items(query):
        return False
    ((matched, total, count),) = source.rows(*reviewsql.entry_shares(query, "sqlite"))
    share = matched / total if total else 0.0
    return bool(share) and query.limit / share < share * (count or 0)


def _records(conn: Connection, rows: Iterable[Any], history: bool) -> Iterator[dict[str, Any]]:
    """The records of *rows* (``reviewsql.RECORD_COLUMNS``) read on a SQLAlchemy connection."""
    from scraper.store.lite import AlchemySource

    return _source_records(AlchemySource(conn), rows, history)


def _source_records(source: Source, rows: Iterable[Any], history: bool) -> Iterator[dict[str, Any]]:
    rows = list(rows)
    ids = [row[0] for row in rows]
    tag_names = _tags_by_review(source, ids) if ids else {}
    observations = {}
    if history and ids:
        sites = {row[0]: site_for_record(row[1]) for row in rows}
        observations = _observations_by_review(source, ids, sites)
    for row in rows:
        record = _record(row, tag_names.get(row[0], ())).to_dict()
        if history:
            record["observations"] = observations.get(row[0], [])
        yield record
