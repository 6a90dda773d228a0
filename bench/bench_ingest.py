"""Benchmark: ingest of saved pages (parse + compress + upsert) into SQLite and PostgreSQL.

Prints pages/s for each database (goals: >= 200 into SQLite, >= 100 into PostgreSQL)
and the stored/raw size ratio of the bodies (goal <= 1/8), for two shapes of archive:
"first captures" (every page distinct) and "recaptures" (each page captured again, with
small changes, as a re-crawl sees it).

Pages: the shared corpus (../shared/corpus/mal/*.html) when present, else fixtures/.
PostgreSQL: --pg URL or $REVIEWS_TEST_POSTGRES_URL; a scratch schema is made and dropped.

    .venv/bin/python bench/bench_ingest.py [--rounds N] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from scraper.records import FetchedPage
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page, parse_fetched

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "mal"


def _sources() -> list[Path]:
    pages = sorted(CORPUS.glob("*.html")) if CORPUS.is_dir() else []
    return pages or sorted((REPO / "fixtures").rglob("*.html"))


def _pages(rounds: int) -> list[FetchedPage]:
    """Each source page *rounds* times, each time a recapture with a small change."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pages = []
    for number in range(rounds):
        for index, path in enumerate(_sources()):
            body = path.read_bytes()
            # What changes between captures: counters and timestamps in the page.
            body = body.replace(b"</body>", f"<!-- capture {number} -->\n</body>".encode())
            # The page's own canonical URL: captures of one page share it, as they would.
            result = parse_fetched(body, None, "utf-8").result
            url = (result.url if result else None) or f"https://myanimelist.net/bench/{index}"
            pages.append(
                FetchedPage(
                    requested_url=url,
                    final_url=url,
                    status=200,
                    headers=(("Content-Type", "text/html; charset=utf-8"),),
                    body=body,
                    fetched_at=start + timedelta(days=number, minutes=index),
                )
            )
    return pages


def _run(url: str, pages: list[FetchedPage]) -> tuple[float, float, float]:
    """Return (pages/s with parsing, pages/s store-only, stored/raw ratio of the first pass).

    The store-only pass ingests every page again, already parsed, with one byte
    changed (a recapture): it measures compress + upsert without the parser.
    """
    engine = open_engine(url)
    try:
        parsed = [parse_fetched(p.body, p.final_url, p.charset) for p in pages]
        started = time.perf_counter()
        for page in pages:
            ingest_page(engine, page)
        with_parse = len(pages) / (time.perf_counter() - started)
        with engine.connect() as connection:
            raw, stored = connection.execute(
                sa.text("SELECT sum(size), sum(length(data)) FROM raw_bodies")
            ).one()
        later = [
            FetchedPage(
                p.requested_url, p.final_url, p.status, p.headers, p.body + b" ", p.fetched_at
            )
            for p in pages
        ]
        started = time.perf_counter()
        for page, outcome in zip(later, parsed, strict=True):
            ingest_page(engine, page, parsed=outcome)
        store_only = len(pages) / (time.perf_counter() - started)
        return with_parse, store_only, float(stored) / float(raw)
    finally:
        engine.dispose()


def _report(name: str, url: str, pages: list[FetchedPage]) -> None:
    with_parse, store_only, ratio = _run(url, pages)
    print(
        f"{name:10} {len(pages):4} pages: {with_parse:6.1f} pages/s (parse+compress+upsert), "
        f"{store_only:6.1f} pages/s store only; bodies stored at 1/{1 / ratio:.1f} of raw size"
    )


def _import_files(name: str, url: str, pages: list[FetchedPage], workers: int) -> None:
    """Time ``import_paths`` (what ``reviews import`` runs) over the pages saved as files."""
    from scraper.store.files import import_paths

    with tempfile.TemporaryDirectory() as folder:
        files = []
        for number, page in enumerate(pages):
            path = Path(folder) / f"{number:04d}.html"
            path.write_bytes(page.body)
            files.append(path)
        engine = open_engine(url)
        try:
            started = time.perf_counter()
            count = sum(1 for _ in import_paths(engine, files, workers=workers))
            rate = count / (time.perf_counter() - started)
        finally:
            engine.dispose()
    print(f"{name:10} {count:4} files: {rate:6.1f} pages/s importing with {workers} parse workers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="captures per page (default 10)")
    parser.add_argument("--pg", default=os.environ.get("REVIEWS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    sources = _sources()
    print(f"{len(sources)} source pages ({sum(p.stat().st_size for p in sources)} bytes)")
    first = _pages(1)
    recaptures = _pages(args.rounds)
    with tempfile.TemporaryDirectory() as folder:
        _report("sqlite 1x", f"sqlite:///{folder}/first.db", first)
        _report(f"sqlite {args.rounds}x", f"sqlite:///{folder}/many.db", recaptures)
        # Enough files that starting the parse workers (~0.5 s) does not dominate.
        many = _pages(args.rounds * 10)
        for workers in (1, 2):
            _import_files("sqlite", f"sqlite:///{folder}/import{workers}.db", many, workers)
    if not args.pg:
        print("postgresql: skipped (give --pg URL or set $REVIEWS_TEST_POSTGRES_URL)")
        return 0
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    separator = "&" if "?" in args.pg else "?"
    try:
        for name, pages in (("pg 1x", first), (f"pg {args.rounds}x", recaptures)):
            # A scratch schema per run: open_engine remembers which URLs it migrated.
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            scratch = f"{args.pg}{separator}options={quote(f'-csearch_path={schema}')}"
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            try:
                _report(name, scratch, pages)
                if pages is recaptures:
                    _import_files("pg", scratch, pages, 2)
            finally:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
