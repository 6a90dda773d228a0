"""The archive's tables, defined once with SQLAlchemy 2 Core.

Reading guide (names chosen to read well in Datasette / sqlite-utils):

- ``items`` (what is reviewed), ``authors`` (+ ``author_names``: every name an
  author was seen under), ``reviews`` (latest values), ``tags`` / ``review_tags``:
  the normalized archive. Items, authors and reviews are namespaced by ``site``
  (contract v2) and keyed within it as the site decides; a site's own record keys
  are kept as JSON in ``extra``.
- ``review_observations``: one row each time a review was seen on a raw page; the
  history. ``(review_id, raw_page_id)`` is unique, so re-parsing is idempotent.
- ``raw_pages``: every fetch or import, with its headers and status; the body is
  stored once per distinct content in ``raw_bodies`` (sha256 of the payload).
- ``fetch_errors``: what went wrong where, for pages that never got stored.
- ``crawl_runs``, ``frontier``, ``hosts``, ``url_validators``, ``job_locks``: the
  crawler's persistent state, shared by every process that uses the database.

All timestamps are timezone-aware UTC (``UTCDateTime``), on SQLite too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UTCDateTime",
    "author_names",
    "authors",
    "crawl_runs",
    "fetch_errors",
    "frontier",
    "hosts",
    "items",
    "job_locks",
    "metadata",
    "raw_bodies",
    "raw_pages",
    "review_observations",
    "review_tags",
    "reviews",
    "tags",
    "url_validators",
]

# Deterministic constraint names, so migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the archive stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL paths on SQLite
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", Text, nullable=False),  # the records' namespace (contract v2 ``site``)
    Column("key", Text, nullable=False),  # the item's key within its site (the site decides)
    Column("type", Text, nullable=True),  # free text: the site's own kind of item
    Column("name", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("site", "key"),
    Index(None, "name"),
)

authors = Table(
    "authors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", Text, nullable=False),
    # The author's key within its site; NULL where the site names authors only by
    # names that change (they are then found through ``author_names``).
    Column("key", Text, nullable=True),
    Column("name", Text, nullable=True),  # the newest name seen
    Column("url", Text, nullable=True),
    Column("image_url", Text, nullable=True),
    Column("name_seen_at", UTCDateTime, nullable=False),  # capture that gave the name
    UniqueConstraint("site", "key"),
    Index(None, "name"),
)

author_names = Table(
    "author_names",
    metadata,
    Column("author_id", ForeignKey("authors.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index(None, "name"),
)

raw_bodies = Table(
    "raw_bodies",
    metadata,
    Column("sha256", String(64), primary_key=True),  # of the uncompressed payload
    Column("size", Integer, nullable=False),
    Column("encoding", String(16), nullable=False),  # how ``data`` is compressed
    Column("data", LargeBinary, nullable=False),
)

raw_pages = Table(
    "raw_pages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("requested_url", Text, nullable=False),
    Column("final_url", Text, nullable=False),
    Column("status", Integer, nullable=True),  # None: imported from a file
    Column("headers", JSON, nullable=False),  # [[name, value], ...] in order
    Column("request_headers", JSON, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("body_sha256", ForeignKey("raw_bodies.sha256"), nullable=False),
    Column("source", String(16), nullable=False),  # "http", "file", "warc"
    Column("crawl_run_id", ForeignKey("crawl_runs.id"), nullable=True),
    # What the parser made of it (updated by ``reviews reparse``).
    Column("page_kind", String(32), nullable=True),
    Column("review_count", Integer, nullable=True),
    Column("parse_error", Text, nullable=True),
    Column("parser_version", String(32), nullable=True),
    # sha256 of what that parse stored (``scraper.store.parsing.outcome_digest``): a
    # reparse that reads the same again writes nothing. NULL before revision 0004.
    Column("records_sha256", String(64), nullable=True),
    # The page's link to its next page as that parse read it (NULL: the last page), so
    # a crawl that does not fetch the page again follows its chain without re-parsing
    # it; known where ``records_sha256`` is.
    Column("next_url", Text, nullable=True),
    Index(None, "final_url"),
    Index(None, "fetched_at"),
    Index(None, "body_sha256"),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
)

reviews = Table(
    "reviews",
    metadata,
    # The row id (SQLite: an alias of the rowid, which full text indexes by); the
    # review's own id is (site, key).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("site", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("item_id", ForeignKey("items.id"), nullable=False),
    Column("author_id", ForeignKey("authors.id"), nullable=False),
    Column("item_type", Text, nullable=True),
    Column("date_text", Text, nullable=True),  # as the page gives it (ISO 8601)
    Column("date", UTCDateTime, nullable=True),  # the same instant in UTC, for filters
    Column("title", Text, nullable=True),
    Column("rating_value", Float, nullable=True),
    Column("rating_best", Float, nullable=True),
    Column("rating_worst", Float, nullable=True),
    Column("body", Text, nullable=True),
    Column("body_sha256", String(64), nullable=True),
    Column("reactions", JSON, nullable=True),  # {kind: count}
    Column("source", String(16), nullable=False),  # how it was read (mal-current, json-ld...)
    Column("extra", JSON, nullable=True),  # the site's own keys
    Column("first_seen_at", UTCDateTime, nullable=False),
    # The capture the latest values come from: a later import of an older capture
    # never overwrites them.
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("last_raw_page_id", ForeignKey("raw_pages.id"), nullable=True),
    UniqueConstraint("site", "key"),
    Index(None, "item_id"),
    Index(None, "author_id"),
    Index(None, "date"),
    Index(None, "rating_value"),
)

review_tags = Table(
    "review_tags",
    metadata,
    # BIGINT as revision 0001 made it (on SQLite too, where it is the same integer).
    Column(
        "review_id",
        BigInteger,
        ForeignKey("reviews.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("tag_id", ForeignKey("tags.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "tag_id"),
)

review_observations = Table(
    "review_observations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("review_id", ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False),
    Column("raw_page_id", ForeignKey("raw_pages.id"), nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("author_name", Text, nullable=True),
    Column("rating_value", Float, nullable=True),
    Column("reactions", JSON, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("body_sha256", String(64), nullable=True),  # of the body text (UTF-8)
    Column("extra", JSON, nullable=True),
    UniqueConstraint("review_id", "raw_page_id"),
    Index(None, "review_id", "observed_at"),
    Index(None, "raw_page_id"),
)

fetch_errors = Table(
    "fetch_errors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("error", String(64), nullable=False),  # the ScraperError class name
    Column("message", Text, nullable=False),
    Column("status", Integer, nullable=True),
    Column("raw_page_id", ForeignKey("raw_pages.id"), nullable=True),
    Column("crawl_run_id", ForeignKey("crawl_runs.id"), nullable=True),
    Index(None, "url"),
)

crawl_runs = Table(
    "crawl_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", Text, nullable=True),  # the jobs-file job name, None for ad-hoc crawls
    Column("command", String(16), nullable=False),  # "crawl", "archive", "run"
    Column("crawl_key", String(64), nullable=True),  # identifies the seed set (resume)
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("seeds", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("hostname", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("reviews_new", Integer, nullable=False, default=0),
    Column("reviews_updated", Integer, nullable=False, default=0),
    Column("reviews_unchanged", Integer, nullable=False, default=0),
    Column("not_modified", Integer, nullable=False, default=0),
    Column("robots_skipped", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    # running, success, page_errors, site_blocked, failed, interrupted
    Column("outcome", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Index(None, "job", "started_at"),
)

frontier = Table(
    "frontier",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("crawl_key", String(64), nullable=False),
    Column("url", Text, nullable=False),  # canonical
    Column("host", Text, nullable=False),
    Column("depth", Integer, nullable=False, default=0),
    Column("discovered_from", Text, nullable=True),
    # queued, leased, done, failed, skipped
    Column("state", String(8), nullable=False),
    Column("lease_owner", Text, nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("raw_page_id", ForeignKey("raw_pages.id"), nullable=True),
    Column("added_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime, nullable=True),
    UniqueConstraint("crawl_key", "url"),
    Index(None, "crawl_key", "state", "id"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("host", Text, primary_key=True),  # scheme://netloc
    # The shared per-host budget: no process starts a request before this instant.
    Column("next_request_at", Float, nullable=False, default=0.0),  # epoch seconds
    Column("crawl_delay", Float, nullable=True),  # from robots.txt
    Column("robots_txt", Text, nullable=True),
    Column("robots_status", Integer, nullable=True),
    Column("robots_fetched_at", UTCDateTime, nullable=True),
    Column("refusals", Integer, nullable=False, default=0),
)

url_validators = Table(
    "url_validators",
    metadata,
    Column("url", Text, primary_key=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("last_checked_at", UTCDateTime, nullable=False),
    Column("last_changed_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("raw_page_id", ForeignKey("raw_pages.id"), nullable=True),
)

job_locks = Table(
    "job_locks",
    metadata,
    Column("job", Text, primary_key=True),
    Column("owner", Text, nullable=False),  # hostname:pid:uuid
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("crawl_run_id", ForeignKey("crawl_runs.id"), nullable=True),
)
