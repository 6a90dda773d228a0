"""The read side of the archive: filtered, streaming queries that give back records.

``ReviewQuery`` holds the filters of ``reviews query`` / ``reviews export``;
``iter_records`` streams contract records (``Review.to_dict()`` shape, built
from the tables) in constant memory: rows come through a server-side cursor
(``yield_per``) and the tags and observations of each chunk of reviews are
fetched with one query per chunk, never one per row.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scraper.errors import UsageError
from scraper.records import REACTION_KINDS, Entry, Review, User

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Select
    from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "KNOWN_TAGS",
    "SORT_KEYS",
    "ReviewQuery",
    "iter_records",
    "observation_dict",
    "parse_when",
    "raw_pages_of",
    "select_reviews",
]

#: Tag labels of contract v1, as ``--tag`` accepts them (case and -/space ignored).
KNOWN_TAGS: tuple[str, ...] = (
    "Recommended",
    "Mixed Feelings",
    "Not Recommended",
    "Preliminary",
    "Spoiler",
    "Funny",
    "Informative",
    "Well-written",
    "Creative",
)
#: ``--sort`` values; a leading ``-`` sorts descending (``--sort=-date``).
SORT_KEYS: tuple[str, ...] = ("id", "date", "score", "entry", "user")
CHUNK = 1000


def _tag_key(label: str) -> str:
    return re.sub(r"[\s_-]+", "-", label.strip().lower())


_TAG_BY_KEY = {_tag_key(label): label for label in KNOWN_TAGS}


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
    except ValueError:
        raise UsageError(
            f"{argument}: {value!r} is not a date (use YYYY-MM-DD or an ISO date-time)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _score(value: int | str | None, argument: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{argument}: {value!r} is not a whole number from 1 to 10") from None
    if not 1 <= number <= 10:
        raise UsageError(f"{argument}: {number} is out of range (scores go from 1 to 10)")
    return number


def _limit(value: int | str | None) -> int | None:
    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--limit: {value!r} is not a positive whole number")
    return count


def _tags(labels: Sequence[str]) -> tuple[str, ...]:
    """Return the contract labels for *labels* (case, spaces and dashes ignored)."""
    unknown = [label for label in labels if _tag_key(label) not in _TAG_BY_KEY]
    if unknown:
        raise UsageError(f"--tag: unknown tag {unknown[0]!r} (known: {', '.join(KNOWN_TAGS)})")
    return tuple(_TAG_BY_KEY[_tag_key(label)] for label in labels)


@dataclass(frozen=True, slots=True)
class ReviewQuery:
    """Which reviews to read, in which order. Every filter is optional.

    ``entry``: a MAL id (``1``, ``anime:1``) or part of the title; ``user``: a
    username, current or former; ``tags``: all must be present; ``since`` /
    ``until``: review date, ``until`` exclusive; ``search``: full-text terms.
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
    ) -> ReviewQuery:
        """Build a query from command-line strings.

        Returns the checked query; raises UsageError naming the bad option.
        """
        from scraper.store.fts import parse_search

        if type not in (None, "anime", "manga"):
            raise UsageError(f"--type: {type!r} is neither anime nor manga")
        low, high = _score(min_score, "--min-score"), _score(max_score, "--max-score")
        if low is not None and high is not None and low > high:
            raise UsageError(f"--min-score {low} is above --max-score {high}")
        start = parse_when(since, "--since") if since else None
        stop = parse_when(until, "--until", end=True) if until else None
        if start and stop and start >= stop:
            raise UsageError(f"--since {since} is not before --until {until}")
        if sort.lstrip("-") not in SORT_KEYS:
            raise UsageError(
                f"--sort: {sort!r} is not one of {', '.join(SORT_KEYS)} (- to reverse)"
            )
        if search is not None:
            parse_search(search)  # refuse an empty search now, naming --search
        return cls(
            entry=entry.strip() if entry else None,
            user=user.strip() if user else None,
            tags=_tags(tags),
            type=type,
            min_score=low,
            max_score=high,
            since=start,
            until=stop,
            search=search,
            sort=sort,
            limit=_limit(limit),
        )

    def is_empty(self) -> bool:
        """Return True when no filter is set (sort and limit aside)."""
        return not (self.entry or self.user or self.tags or self.type or self.search) and all(
            v is None for v in (self.min_score, self.max_score, self.since, self.until)
        )


def _conditions(
    query: ReviewQuery, dialect_name: str, wide_entry: bool
) -> list[ColumnElement[bool]]:
    import sqlalchemy as sa

    from scraper.schema.tables import entries, review_tags, reviews, tags, user_names, users
    from scraper.store.fts import parse_search, search_condition

    where: list[ColumnElement[bool]] = []
    # Entries and users are matched in their own small tables first (uncorrelated
    # subqueries, evaluated once), so the reviews are then reached by their indexes.
    if query.entry:
        found = re.fullmatch(r"(?:(anime|manga)[:/])?(\d+)", query.entry)
        matching = sa.select(entries.c.id)
        if found:
            matching = matching.where(entries.c.mal_id == int(found.group(2)))
            if found.group(1):
                matching = matching.where(entries.c.type == found.group(1))
        else:
            pattern = f"%{_escape_like(query.entry)}%"
            matching = matching.where(entries.c.title.ilike(pattern, escape="\\"))
        # "+ 0" keeps SQLite off the entry index when many entries match (see iter_records).
        column = reviews.c.entry_id + 0 if wide_entry else reviews.c.entry_id
        where.append(column.in_(matching))
    if query.user:
        name = query.user.lower()
        current = sa.select(users.c.id).where(sa.func.lower(users.c.username) == name)
        former = sa.select(user_names.c.user_id).where(sa.func.lower(user_names.c.username) == name)
        where.append(reviews.c.user_id.in_(sa.union(current, former)))
    for label in query.tags:
        tagged = (
            sa.select(review_tags.c.review_id)
            .join(tags, tags.c.id == review_tags.c.tag_id)
            .where(review_tags.c.review_id == reviews.c.id, tags.c.name == label)
        )
        where.append(tagged.exists())
    if query.type:
        where.append(reviews.c.type == query.type)
    if query.min_score is not None:
        where.append(reviews.c.score >= query.min_score)
    if query.max_score is not None:
        where.append(reviews.c.score <= query.max_score)
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
    """Return the SELECT (reviews joined with entry and user) that *query* describes.

    *wide_entry*: the entry filter matches many entries, so reading the sort
    index until the limit beats reading every review of those entries.
    """
    import sqlalchemy as sa

    from scraper.schema.tables import entries, reviews, users

    order_columns = {
        "id": [reviews.c.id],
        # No id tie-break on the indexed keys: it would stop SQLite from reading the
        # date / score index in order and stopping at --limit (ties: index order).
        "date": [reviews.c.date],
        "score": [reviews.c.score],
        "entry": [entries.c.title, reviews.c.id],
        "user": [users.c.username, reviews.c.id],
    }[query.sort.lstrip("-")]
    descending = query.sort.startswith("-")
    statement = (
        sa.select(*_record_columns())
        .join(entries, entries.c.id == reviews.c.entry_id)
        .join(users, users.c.id == reviews.c.user_id)
        .where(*_conditions(query, dialect_name, wide_entry))
        .order_by(*(column.desc() if descending else column for column in order_columns))
    )
    return statement.limit(query.limit) if query.limit else statement


def _record_columns() -> list[Any]:
    """The columns a record is built from, in the order ``_review`` unpacks them."""
    from scraper.schema.tables import entries, reviews, users

    c = reviews.c
    return [
        c.id,
        c.type,
        entries.c.mal_id,
        entries.c.type,
        entries.c.title,
        entries.c.url,
        users.c.username,
        users.c.url,
        users.c.image_url,
        c.date,
        c.score,
        c.is_spoiler,
        c.is_preliminary,
        c.episodes_watched,
        c.chapters_read,
        *(c[f"reactions_{kind}"] for kind in REACTION_KINDS),
        c.helpful_count,
        c.scores,
        c.body,
        c.layout,
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


def _reactions(values: Sequence[int | None]) -> dict[str, int] | None:
    if all(value is None for value in values):
        return None
    return dict(zip(REACTION_KINDS, values, strict=True))  # type: ignore[arg-type]


_REACTIONS_AT = 15  # where the reaction columns start in ``_record_columns``
_REACTIONS_END = _REACTIONS_AT + len(REACTION_KINDS)


def _review(row: Sequence[Any], tag_names: Sequence[str]) -> Review:
    # Unpacked by position: attribute access per field is the export's hot spot.
    (review_id, kind, entry_id, entry_type, title, entry_url, username, user_url, image_url,
     date, score, spoiler, preliminary, episodes, chapters) = row[:_REACTIONS_AT]  # fmt: skip
    helpful, scores, body, layout = row[_REACTIONS_END:]
    return Review(
        mal_id=int(review_id),
        type=kind,
        entry=Entry(mal_id=entry_id, type=entry_type, title=title, url=entry_url),
        user=User(username=username, url=user_url, image_url=image_url),
        date=date,
        score=score,
        tags=tuple(tag_names),
        is_spoiler=bool(spoiler),
        is_preliminary=bool(preliminary),
        episodes_watched=episodes,
        chapters_read=chapters,
        reactions=_reactions(row[_REACTIONS_AT:_REACTIONS_END]),
        helpful_count=helpful,
        scores=scores,
        review=body,
        layout=layout,
    )


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


def observation_dict(row: Any) -> dict[str, Any]:
    """Return one history entry: ``{observed_at, score, username, reactions,
    helpful_count, review_sha256}`` from a ``review_observations`` row."""
    return {
        "observed_at": row.observed_at.isoformat(),
        "score": row.score,
        "username": row.username,
        "reactions": _reactions([row._mapping[f"reactions_{kind}"] for kind in REACTION_KINDS]),
        "helpful_count": row.helpful_count,
        "review_sha256": row.review_sha256,
    }


def _observations_by_review(conn: Connection, ids: Sequence[int]) -> dict[int, list[Any]]:
    import sqlalchemy as sa

    from scraper.schema.tables import review_observations as obs

    found: dict[int, list[Any]] = defaultdict(list)
    rows = conn.execute(
        sa.select(obs)
        .where(obs.c.review_id.in_(ids))
        .order_by(obs.c.review_id, obs.c.observed_at, obs.c.id)
    )
    for row in rows:
        found[row.review_id].append(observation_dict(row))
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
    """Whether a title filter matches so many entries that SQLite should walk the
    sort index instead (its planner has no estimate for a LIKE on another table).

    Walking the index reads about limit / f reviews where f is the share of
    entries matched; using the entry index reads about f * reviews, then sorts.
    """
    if conn.dialect.name != "sqlite" or not query.limit or not query.entry:
        return False
    if query.sort.lstrip("-") not in ("id", "date", "score") or query.entry.isdigit():
        return False
    import sqlalchemy as sa

    from scraper.schema.tables import entries, reviews

    pattern = f"%{_escape_like(query.entry)}%"
    matched = conn.execute(
        sa.select(sa.func.count()).where(entries.c.title.ilike(pattern, escape="\\"))
    ).scalar_one()
    total = conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one()
    count = conn.execute(sa.select(sa.func.max(sa.literal_column("rowid")))
                         .select_from(reviews)).scalar() or 0  # fmt: skip
    share = matched / total if total else 0.0
    return bool(share) and query.limit / share < share * count


def _records(conn: Connection, rows: Iterable[Any], history: bool) -> Iterator[dict[str, Any]]:
    rows = list(rows)
    ids = [row[0] for row in rows]
    tag_names = _tags_by_review(conn, ids)
    observations = _observations_by_review(conn, ids) if history else {}
    for row in rows:
        record = _review(row, tag_names.get(row[0], ())).to_dict()
        if history:
            record["observations"] = observations.get(row[0], [])
        yield record
