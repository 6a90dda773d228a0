"""Re-running the current parser over the stored raw pages (no network).

Pages are read in id order in batches (keyset pagination, so memory stays flat
however large the archive), their bodies read in one query per batch, parsed
outside any transaction (in worker processes with *workers* > 1) and written
back by this process, each page in its own transaction exactly as ingest does.
Running it twice changes nothing the second time.

A raw page's body never changes (it is stored under its sha256), so a page whose
``parser_version`` is the current one was read by this very parser: it is
skipped unless *everything* is asked for (``reviews reparse --all``), which is
what a parser changed without a new version needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scraper.config import StoreSettings
from scraper.records import FetchedPage
from scraper.schema.tables import raw_pages, review_observations
from scraper.store.bodies import load_bodies
from scraper.store.engine import store_error, write_transaction
from scraper.store.ingest import PARSER_VERSION
from scraper.store.parsing import ParseOutcome, StoredPage, parse_stored
from scraper.store.upsert import store_records
from scraper.store.workers import parallel_map

__all__ = ["ReparseReport", "reparse"]

#: Raw pages read (with their bodies) per query.
_BATCH = StoreSettings().reparse_batch_pages

#: Called with (pages done, pages in total) after each page.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ReparseReport:
    """What a reparse changed.

    ``pages_changed`` counts pages whose kind, review count or error changed, or
    whose reviews changed; ``reviews_changed`` reviews that are new or whose latest
    values changed; ``new_errors`` / ``fixed_errors`` pages that now fail / now parse;
    ``skipped`` pages left alone because the current parser version read them.
    """

    pages: int = 0
    pages_changed: int = 0
    reviews_changed: int = 0
    new_errors: int = 0
    fixed_errors: int = 0
    skipped: int = 0


def reparse(
    engine: Engine,
    *,
    progress: Progress | None = None,
    everything: bool = False,
    workers: int = 1,
) -> ReparseReport:
    """Parse the stored raw pages again with the current parser; return what changed.

    Pages the current parser version read already are skipped unless *everything*.
    With *workers* > 1, that many processes work: this one writes, the others parse.
    Raises StoreError naming the database when it refuses a read or a write (pages
    done before that stay done).
    """
    todo = sa.true() if everything else _outdated()
    try:
        with engine.connect() as connection:
            total = _count(connection, todo)
            skipped = 0 if everything else _count(connection, sa.true()) - total
        totals: Counter[str] = Counter()
        jobs = _jobs(engine, todo)
        parallel = workers > 1 and total > 0
        parsed = (
            parallel_map(parse_stored, jobs, workers - 1) if parallel else map(parse_stored, jobs)
        )
        for page, outcome in parsed:
            totals.update(_store_one(engine, page, outcome))
            totals["pages"] += 1
            if progress is not None:
                progress(totals["pages"], total)
    except DBAPIError as error:
        raise store_error(engine, error) from error
    return ReparseReport(**totals, skipped=skipped)


def _outdated() -> sa.ColumnElement[bool]:
    return sa.or_(
        raw_pages.c.parser_version.is_(None), raw_pages.c.parser_version != PARSER_VERSION
    )


def _count(connection: Connection, where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(raw_pages).where(where)
    return int(connection.execute(query).scalar_one())


_COLUMNS = (
    raw_pages.c.id,
    raw_pages.c.final_url,
    raw_pages.c.headers,
    raw_pages.c.body_sha256,
    raw_pages.c.fetched_at,
    raw_pages.c.page_kind,
    raw_pages.c.review_count,
    raw_pages.c.parse_error,
)


def _jobs(engine: Engine, todo: sa.ColumnElement[bool]) -> Iterator[tuple[StoredPage, bytes]]:
    """Yield (page, body) of the pages to reparse, in id order, a batch per query."""
    query = (
        sa.select(*_COLUMNS)
        .where(todo, raw_pages.c.id > sa.bindparam("after"))
        .order_by(raw_pages.c.id)
        .limit(_BATCH)
    )
    last_id = 0
    while True:
        with engine.connect() as connection:
            rows = list(connection.execute(query, {"after": last_id}))
            if not rows:
                return
            bodies = load_bodies(connection, (str(row.body_sha256) for row in rows))
        for row in rows:
            yield _page(row), bodies[str(row.body_sha256)]
        last_id = int(rows[-1].id)


def _page(row: Any) -> StoredPage:
    headers = tuple((str(name), str(value)) for name, value in row.headers or ())
    charset = FetchedPage("", "", None, headers, b"", row.fetched_at).charset
    return StoredPage(
        id=int(row.id),
        final_url=str(row.final_url),
        fetched_at=row.fetched_at,
        charset=charset,
        page_kind=row.page_kind,
        review_count=row.review_count,
        parse_error=row.parse_error,
    )


#: Observations of a raw page for reviews the current parser no longer reads there
#: (through ``ix_review_observations_raw_page_id``: a test checks the plan).
_STALE = sa.delete(review_observations).where(
    review_observations.c.raw_page_id == sa.bindparam("page_id"),
    review_observations.c.review_id.not_in(sa.bindparam("kept", expanding=True)),
)
_UPDATE_PAGE = (
    sa.update(raw_pages)
    .where(raw_pages.c.id == sa.bindparam("page_id"))
    .values(
        page_kind=sa.bindparam("page_kind"),
        review_count=sa.bindparam("review_count"),
        parse_error=sa.bindparam("parse_error"),
        parser_version=sa.bindparam("parser_version"),
    )
)


def _store_one(engine: Engine, page: StoredPage, outcome: ParseOutcome) -> dict[str, int]:
    records = outcome.result.reviews if outcome.result is not None else ()
    with write_transaction(engine) as connection:
        connection.execute(
            _UPDATE_PAGE,
            {
                "page_id": page.id,
                "page_kind": outcome.kind.value if outcome.kind is not None else None,
                "review_count": len(records),
                "parse_error": outcome.error_text,
                "parser_version": PARSER_VERSION,
            },
        )
        counts = store_records(
            connection, raw_page_id=page.id, observed_at=page.fetched_at, records=records
        )
        stale = connection.execute(
            _STALE, {"page_id": page.id, "kept": sorted(counts.review_ids)}
        ).rowcount
    changed_reviews = counts.new + counts.updated
    return {
        "pages_changed": int(
            _page_changed(page, outcome, len(records)) or changed_reviews > 0 or stale > 0
        ),
        "reviews_changed": changed_reviews,
        "new_errors": int(page.parse_error is None and outcome.error is not None),
        "fixed_errors": int(page.parse_error is not None and outcome.error is None),
    }


def _page_changed(page: StoredPage, outcome: ParseOutcome, count: int) -> bool:
    kind = outcome.kind.value if outcome.kind is not None else None
    before = (page.page_kind, page.review_count, page.parse_error)
    return before != (kind, count, outcome.error_text)
