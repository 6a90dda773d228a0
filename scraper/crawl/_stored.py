"""Looking up what is stored about a URL: its validators for conditional requests and
when it was last checked (the ``url_validators`` table), the capture a dead run left
(``find_stored``), the stale pages of a crawl's listings, and a stored capture's
"More Reviews" link read back without fetching.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scraper.records import FetchedPage, PageKind
from scraper.schema.tables import crawl_runs, raw_pages, url_validators
from scraper.sites import address, site_for_url
from scraper.store.dialect import insert

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "Validators",
    "find_stored",
    "load_many_validators",
    "save_validators",
    "stale_pages",
    "stored_next_url",
]


@dataclass(frozen=True, slots=True)
class Validators:
    """The stored state of one URL."""

    url: str
    etag: str | None
    last_modified: str | None
    last_checked_at: datetime
    raw_page_id: int | None
    body_sha256: str | None = None  # of the stored capture, to tell a changed body

    def age(self, now: datetime) -> float:
        """Seconds since the URL was last checked."""
        return (now - self.last_checked_at).total_seconds()


def _validators_statement() -> sa.Select[Any]:
    v = url_validators.c
    return (
        sa.select(
            v.url,
            v.etag,
            v.last_modified,
            v.last_checked_at,
            v.raw_page_id,
            raw_pages.c.body_sha256,
        )
        .select_from(url_validators.outerjoin(raw_pages, raw_pages.c.id == v.raw_page_id))
        .where(v.url.in_(sa.bindparam("urls", expanding=True)))
    )


#: Built once: building a statement costs more than running it (a lease's turn).
_VALIDATORS = _validators_statement()


def load_many_validators(
    engine: Engine, urls: Sequence[str], *, conn: Connection | None = None
) -> dict[str, Validators]:
    """Return what is stored for each of *urls* that was ever fetched, by URL
    (one query for a whole batch of leased URLs; in *conn*, when given)."""
    if not urls:
        return {}
    with _reading(engine, conn) as reader:
        rows = reader.execute(_VALIDATORS, {"urls": list(urls)}).all()
    return {row.url: Validators(*row) for row in rows}


@contextmanager
def _reading(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """Yield *conn* (the caller's), or a connection of its own."""
    if conn is not None:
        yield conn
        return
    with engine.connect() as own:
        yield own


def save_validators(
    conn: Connection,
    url: str,
    page: FetchedPage,
    raw_page_id: int | None,
    known: Validators | None,
) -> None:
    """Record a fetch of *url* in the caller's write transaction: its validators,
    status, and the capture it produced. *known* is what ``load_many_validators`` found
    before the fetch (None: never fetched).

    A 304 keeps the stored validators and capture and only moves ``last_checked_at``;
    ``last_changed_at`` moves when a 200's body differs from the previous capture's.
    """
    now = datetime.now(UTC)
    previous = known.body_sha256 if known is not None else None
    values: dict[str, object] = {"last_checked_at": now, "last_status": page.status}
    if page.status != 304:
        values.update(
            etag=page.header("etag"),
            last_modified=page.header("last-modified"),
            raw_page_id=raw_page_id,
        )
        if previous != hashlib.sha256(page.body).hexdigest():
            values["last_changed_at"] = now
    statement = insert(conn, url_validators).values(url=url, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["url"], set_=values))


def find_stored(engine: Engine, url: str, crawl_key: str, since: datetime) -> int | None:
    """Return the id of a page this crawl already stored for *url* since *since*, or None.

    A worker killed between storing a page and marking its frontier row done left
    exactly this behind; finding it is what keeps a resumed crawl from storing the
    page twice.
    """
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(raw_pages.c.id)
            .join(crawl_runs, crawl_runs.c.id == raw_pages.c.crawl_run_id)
            .where(
                raw_pages.c.requested_url == url,
                crawl_runs.c.crawl_key == crawl_key,
                raw_pages.c.fetched_at >= since,
                # A block page was stored (nothing fetched is dropped) but never
                # counted as the page: the URL was queued again for a real answer.
                sa.func.coalesce(raw_pages.c.page_kind, "") != PageKind.BLOCKED.value,
            )
            .order_by(raw_pages.c.id.desc())
            .limit(1)
        ).scalar()
    return int(found) if found is not None else None


def stored_next_url(engine: Engine, raw_page_id: int | None) -> str | None:
    """Return the "More Reviews" link of a stored capture (None: last page or unknown).

    Used when the page itself is not fetched again (a 304, a fresh page, a recovered
    one): its chain must still be followed. The link its parse read is stored with
    it; only a page stored before revision 0004 (no digest, no link) is parsed
    again. Raises StoreError for a damaged body.
    """
    if raw_page_id is None:
        return None
    from scraper.store.bodies import load_page
    from scraper.store.parsing import parse_fetched

    with engine.connect() as conn:
        row = conn.execute(
            sa.select(raw_pages.c.records_sha256, raw_pages.c.next_url).where(
                raw_pages.c.id == raw_page_id
            )
        ).first()
        if row is None:
            return None
        if row.records_sha256 is not None:
            return None if row.next_url is None else str(row.next_url)
        page = load_page(conn, raw_page_id)
    if page is None:
        return None
    return parse_fetched(page.body, page.final_url, page.charset).next_url


def stale_pages(
    engine: Engine, seeds: Sequence[str], refresh_after: float, *, now: datetime
) -> list[str]:
    """Return the stored pages of the *seeds*' listings last checked more than
    *refresh_after* seconds before *now*, oldest check first.

    Whether a page belongs to a seed's listing is the seed's site's to say
    (``Site.in_listing``: pages that share the seed's address and every query
    parameter of the seed but the page number), and only its review pages
    (``Site.is_review_url``) are re-checked. The seeds themselves are left out:
    an incremental crawl asks for them anyway.
    """
    cutoff = now - timedelta(seconds=refresh_after)
    bases = {address(seed) for seed in seeds}
    v = url_validators.c
    same_listing = sa.or_(*(v.url.startswith(base, autoescape=True) for base in bases))
    with engine.connect() as conn:
        urls = (
            conn.execute(
                sa.select(v.url)
                .where(same_listing, v.last_checked_at < cutoff)
                .order_by(v.last_checked_at, v.url)
            )
            .scalars()
            .all()
        )
    return [url for url in urls if url not in seeds and any(_in(url, seed) for seed in seeds)]


def _in(url: str, seed: str) -> bool:
    """True when *url* is a review page of *seed*'s listing (see ``stale_pages``)."""
    site = site_for_url(seed)
    return site.in_listing(url, seed) and site.is_review_url(url)
