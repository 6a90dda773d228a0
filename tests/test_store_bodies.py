"""Raw bodies compressed against bases held in memory read back like any other."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import HISTORY

from scraper.records import FetchedPage
from scraper.schema.tables import raw_bodies
from scraper.store import bodies as bodies_module
from scraper.store.bodies import load_body
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page

PAGE = HISTORY / "anime-91234-reviews-2026-02.html"
URLS = (
    "https://myanimelist.net/anime/91234/x/reviews",
    "https://myanimelist.net/anime/5/y/reviews",
)


def _archive(url: str, bodies: list[bytes]) -> dict[str, tuple[str, bytes]]:
    """Ingest *bodies* (alternating between two URLs) into a new database at *url*."""
    engine = open_engine(url)
    try:
        for number, body in enumerate(bodies):
            page_url = URLS[number % 2]
            at = datetime(2026, 3, 1 + number, tzinfo=UTC)
            ingest_page(engine, FetchedPage(page_url, page_url, 200, (), body, at))
        with engine.connect() as connection:
            rows = connection.execute(sa.select(raw_bodies)).all()
            for row in rows:
                assert load_body(connection, row.sha256) in bodies
        return {row.sha256: (row.encoding, bytes(row.data)) for row in rows}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_bases_from_memory_store_the_same_bytes_as_bases_from_the_database(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PAGE.read_bytes()
    bodies = [text.replace(b"gorgeous", f"gorgeous {n}".encode()) for n in range(6)]
    # The first archive reads every base from its database (nothing is kept in
    # memory); the second (a new database, the same bodies) finds its bases in
    # memory, some left there by the first: what each stores must be the same.
    with monkeypatch.context() as patch:
        patch.setattr(bodies_module, "_bodies", bodies_module._Recent(0))
        patch.setattr(bodies_module, "_dicts", bodies_module._Recent(0))
        first = _archive(f"sqlite:///{tmp_path / 'first.db'}", bodies)
    second = _archive(db_url, bodies)
    assert second == first
    assert sorted(encoding for encoding, _ in first.values()) == [
        "zstd",
        "zstd-ref",
        "zstd-ref",
        "zstd-ref2",
        "zstd-ref2",
        "zstd-ref2",
    ]
