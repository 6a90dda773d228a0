"""Re-running the current parser over the stored raw pages (no network).

Pages are taken in id order in batches (keyset pagination, so memory stays flat
however large the archive). A batch's rows and bodies are read, decompressed and
parsed where the batch is worked on: in this process, or with *workers* > 1 in a
worker process with its own read connection (SQLite in WAL mode lets it read while
this process writes). Running it twice changes nothing the second time.

What a page's parse stored has a digest (``raw_pages.records_sha256``, see
``outcome_digest``): a page whose new parse has the same digest would store the
same rows again, so nothing is written for it but, when it was read by another
parser version, that version (one UPDATE per batch). Only pages whose records
changed go through the store path (``store_records``), each in its own
transaction exactly as ingest does, in this process: the one writer. Pages stored
before the digest existed are written in full once, and get it.

A raw page's body never changes (it is stored under its sha256), so a page whose
``parser_version`` is the current one was read by this very parser: it is
skipped unless *everything* is asked for (``reviews reparse --all``), which is
what a parser changed without a new version needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.schema.tables import raw_pages, review_observations
from scraper.store import reparse_lite
from scraper.store.bodies import load_bodies, load_body
from scraper.store.engine import open_engine, store_error, write_transaction
from scraper.store.ingest import PAGE_REFUSALS
from scraper.store.lite import sqlite_file
from scraper.store.parsing import (
    PARSER_VERSION,
    ParseOutcome,
    Reparsed,
    StoredPage,
    reparse_body,
    stored_page,
)
from scraper.store.reparse_run import Progress, ReparseReport, parse_batches, tally
from scraper.store.upsert import store_records
from scraper.store.workers import finishing

__all__ = ["EngineWriter", "Progress", "ReparseReport", "reparse"]

_BATCH = StoreSettings().reparse_batch_pages


def reparse(
    engine: Engine,
    *,
    progress: Progress | None = None,
    everything: bool = False,
    workers: int = 1,
) -> ReparseReport:
    """Parse the stored raw pages again with the current parser; return what changed.

    Pages the current parser version read already are skipped unless *everything*.
    With *workers* > 1, that many processes read and parse pages (this one among
    them, for its share), and this one writes what changed; on a SQLite file they
    read it through ``sqlite3`` (``reparse_lite``: a worker starts without SQLAlchemy).
    A page whose body is damaged, or whose rows the database refuses, is named in
    ``failed`` and left as it was; the others go on. Raises StoreError naming the
    database when it cannot be read or written at all (pages done before that stay
    done).
    """
    todo = sa.true() if everything else _outdated()
    writer = EngineWriter(engine)
    try:
        with engine.connect() as connection:
            total = _count(connection, todo)
            skipped = 0 if everything else _count(connection, sa.true()) - total
        totals: Counter[str] = Counter()
        url = engine.url.render_as_string(hide_password=False)
        path = sqlite_file(url)
        parsed: Iterator[list[Reparsed]]
        if workers <= 1 or total <= _BATCH:  # one process: no worker to start
            parsed = (_read_pages(engine, ids) for ids in _batches(engine, todo))
        elif path is not None:
            files = ((path, ids) for ids in _batches(engine, todo))
            parsed = parse_batches(
                reparse_lite.read_batch, files, workers=workers, total=total, totals=totals
            )
        else:
            urls = ((url, ids) for ids in _batches(engine, todo))
            parsed = parse_batches(_read_batch, urls, workers=workers, total=total, totals=totals)
        with finishing(parsed):
            failed = tally(parsed, lambda: writer, totals, total=total, progress=progress)
    except DBAPIError as error:
        raise store_error(engine, error) from error
    finally:
        _close_engines()
    return ReparseReport(**totals, skipped=skipped, failed=tuple(failed))


class EngineWriter:
    """A reparse's writes through *engine* (``reparse_run.Writer``): this process is
    the one writer. Raises StoreError naming the database when it refuses a write
    for another reason than one page's rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def versions(self, ids: list[int]) -> None:
        try:
            _store_versions(self.engine, ids)
        except DBAPIError as error:
            raise store_error(self.engine, error) from error

    def page(self, done: Reparsed) -> tuple[dict[str, int], str | None]:
        assert done.outcome is not None, "only a page whose records changed is written"
        try:
            return _store_one(self.engine, done.page, done.outcome, done.digest), None
        except PAGE_REFUSALS as error:  # this page's rows only
            return {}, str(error.orig)
        except DBAPIError as error:
            raise store_error(self.engine, error) from error


def _outdated() -> sa.ColumnElement[bool]:
    return sa.or_(
        raw_pages.c.parser_version.is_(None), raw_pages.c.parser_version != PARSER_VERSION
    )


def _count(connection: Connection, where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(raw_pages).where(where)
    return int(connection.execute(query).scalar_one())


def _batches(engine: Engine, todo: sa.ColumnElement[bool]) -> Iterator[list[int]]:
    """Yield the ids of the pages to reparse, in id order, a batch per query."""
    query = (
        sa.select(raw_pages.c.id)
        .where(todo, raw_pages.c.id > sa.bindparam("after"))
        .order_by(raw_pages.c.id)
        .limit(_BATCH)
    )
    last_id = 0
    while True:
        with engine.connect() as connection:
            ids = [int(found) for found in connection.execute(query, {"after": last_id}).scalars()]
        if not ids:
            return
        yield ids
        last_id = ids[-1]


#: A worker's engine, opened on its first batch (one database per reparse).
_engines: dict[str, Engine] = {}


def _close_engines() -> None:
    """Close the engines and connections this process opened for batches (its share,
    with workers)."""
    while _engines:
        _engines.popitem()[1].dispose()
    reparse_lite.close_connections()


def _read_batch(job: tuple[str, list[int]]) -> list[Reparsed]:
    """Read and parse the pages *job* names, in a worker process (its own connection):
    PostgreSQL, or a SQLite URL with a driver or options (a plain file goes to
    ``reparse_lite.read_batch``)."""
    url, ids = job
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = open_engine(url, migrate=False, create=False)
    return _read_pages(engine, ids)


_COLUMNS = (
    raw_pages.c.id,
    raw_pages.c.final_url,
    raw_pages.c.headers,
    raw_pages.c.body_sha256,
    raw_pages.c.fetched_at,
    raw_pages.c.page_kind,
    raw_pages.c.review_count,
    raw_pages.c.parse_error,
    raw_pages.c.parser_version,
    raw_pages.c.records_sha256,
)
_ROWS = (
    sa.select(*_COLUMNS)
    .where(raw_pages.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(raw_pages.c.id)
)


def _read_pages(engine: Engine, ids: Sequence[int]) -> list[Reparsed]:
    """Read the pages *ids* with their bodies (one query each), parse them again, and
    say which of them would store something new."""
    with engine.connect() as connection:
        rows = list(connection.execute(_ROWS, {"ids": list(ids)}))
        bodies, damaged = _bodies(connection, [str(row.body_sha256) for row in rows])
    done = []
    for row in rows:
        page = _page(row)
        sha = str(row.body_sha256)
        if sha in damaged:
            done.append(Reparsed(page, None, "", False, failure=damaged[sha]))
        else:
            done.append(reparse_body(page, bodies[sha], row.records_sha256, row.parser_version))
    return done


def _bodies(connection: Connection, shas: list[str]) -> tuple[dict[str, bytes], dict[str, str]]:
    """Return the bodies *shas* name, and for those that cannot be read, why: read in
    one query, or one by one when one of them is damaged (the others still come)."""
    try:
        return load_bodies(connection, shas), {}
    except StoreError:
        pass
    bodies: dict[str, bytes] = {}
    damaged: dict[str, str] = {}
    for sha in dict.fromkeys(shas):
        try:
            bodies[sha] = load_body(connection, sha)
        except StoreError as error:
            damaged[sha] = error.message
    return bodies, damaged


def _page(row: Any) -> StoredPage:
    return stored_page(
        row.id,
        row.final_url,
        row.headers,
        row.fetched_at,
        row.page_kind,
        row.review_count,
        row.parse_error,
    )


_SET_VERSION = (
    sa.update(raw_pages)
    .where(raw_pages.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(parser_version=PARSER_VERSION)
)


def _store_versions(engine: Engine, ids: list[int]) -> None:
    """Note that the current parser read pages *ids*, whose records did not change."""
    if ids:
        with write_transaction(engine) as connection:
            connection.execute(_SET_VERSION, {"ids": ids})


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
        records_sha256=sa.bindparam("records_sha256"),
        next_url=sa.bindparam("next_url"),
    )
)


def _store_one(
    engine: Engine, page: StoredPage, outcome: ParseOutcome, digest: str
) -> dict[str, int]:
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
                "records_sha256": digest,
                "next_url": outcome.next_url,
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
