"""Re-running the current parser over every stored raw page (no network).

Pages are read in id order in small batches (keyset pagination, so memory stays
flat however large the archive), each parsed outside any transaction and written
back in its own transaction, exactly as ingest does. Running it twice changes
nothing the second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError

from scraper.records import FetchedPage
from scraper.schema.tables import raw_pages, review_observations
from scraper.store.bodies import load_body
from scraper.store.engine import store_error, write_transaction
from scraper.store.ingest import PARSER_VERSION, ParseOutcome, parse_fetched
from scraper.store.upsert import store_records

__all__ = ["ReparseReport", "reparse"]

_BATCH = 100

#: Called with (pages done, pages in total) after each page.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ReparseReport:
    """What a reparse changed.

    ``pages_changed`` counts pages whose kind, review count or error changed, or
    whose reviews changed; ``reviews_changed`` reviews that are new or whose latest
    values changed; ``new_errors`` / ``fixed_errors`` pages that now fail / now parse.
    """

    pages: int = 0
    pages_changed: int = 0
    reviews_changed: int = 0
    new_errors: int = 0
    fixed_errors: int = 0


def reparse(engine: Engine, *, progress: Progress | None = None) -> ReparseReport:
    """Parse every stored raw page again with the current parser; return what changed.

    Raises StoreError naming the database when it refuses a read or a write (pages
    done before that stay done).
    """
    try:
        with engine.connect() as connection:
            total = int(
                connection.execute(sa.select(sa.func.count()).select_from(raw_pages)).scalar_one()
            )
        totals: Counter[str] = Counter()
        last_id = 0
        while True:
            batch = _next_batch(engine, last_id)
            if not batch:
                break
            for row in batch:
                totals.update(_reparse_one(engine, row))
                totals["pages"] += 1
                if progress is not None:
                    progress(totals["pages"], total)
            last_id = batch[-1].id
    except DBAPIError as error:
        raise store_error(engine, error) from error
    return ReparseReport(**totals)


def _next_batch(engine: Engine, last_id: int) -> list[Row[tuple[object, ...]]]:
    query = (
        sa.select(
            raw_pages.c.id,
            raw_pages.c.requested_url,
            raw_pages.c.final_url,
            raw_pages.c.headers,
            raw_pages.c.body_sha256,
            raw_pages.c.fetched_at,
            raw_pages.c.page_kind,
            raw_pages.c.review_count,
            raw_pages.c.parse_error,
        )
        .where(raw_pages.c.id > last_id)
        .order_by(raw_pages.c.id)
        .limit(_BATCH)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def _reparse_one(engine: Engine, row: Row[tuple[object, ...]]) -> dict[str, int]:
    page = row._mapping
    with engine.connect() as connection:
        body = load_body(connection, str(page["body_sha256"]))
    headers = tuple((str(name), str(value)) for name, value in page["headers"] or ())
    charset = FetchedPage("", "", None, headers, b"", page["fetched_at"]).charset
    outcome = parse_fetched(body, str(page["final_url"]), charset)
    records = outcome.result.reviews if outcome.result is not None else ()
    with write_transaction(engine) as connection:
        connection.execute(
            sa.update(raw_pages)
            .where(raw_pages.c.id == page["id"])
            .values(
                page_kind=outcome.kind.value if outcome.kind is not None else None,
                review_count=len(records),
                parse_error=outcome.error_text,
                parser_version=PARSER_VERSION,
            )
        )
        counts = store_records(
            connection, raw_page_id=int(page["id"]), observed_at=page["fetched_at"], records=records
        )
        # Observations the current parser no longer reads from this page go.
        stale = connection.execute(
            sa.delete(review_observations).where(
                review_observations.c.raw_page_id == page["id"],
                review_observations.c.review_id.not_in(sorted(counts.review_ids)),
            )
        ).rowcount
    changed_reviews = counts.new + counts.updated
    return {
        "pages_changed": int(
            _page_changed(page, outcome, len(records)) or changed_reviews > 0 or stale > 0
        ),
        "reviews_changed": changed_reviews,
        "new_errors": int(page["parse_error"] is None and outcome.error is not None),
        "fixed_errors": int(page["parse_error"] is not None and outcome.error is None),
    }


def _page_changed(page: sa.RowMapping, outcome: ParseOutcome, count: int) -> bool:
    kind = outcome.kind.value if outcome.kind is not None else None
    before = (page["page_kind"], page["review_count"], page["parse_error"])
    return before != (kind, count, outcome.error_text)
