"""Benchmark: ingest of saved pages (parse + compress + upsert) into SQLite and PostgreSQL.

Goals (issues 3 and 13): >= 200 pages/s into SQLite and >= 100 into PostgreSQL, raw
pages stored at <= 1/8 of their size. Real-sized pages only (``bench/pages.py``), two
sets reported apart:

- ``corpus``: the real saved MAL pages in ../shared/corpus/mal/ (when present);
- ``grown``: our fixtures grown to a real page's size (20 long reviews of our text).

Then ``reviews import`` of the same pages saved as files (one process, then --jobs 2:
on SQLite one parser beside the writer, on PostgreSQL two processes that parse and
write) and ``reviews reparse --all`` of that archive. On a local PostgreSQL server the
CPU its backend spent on the store is printed too (it shares the machine's cores).

Every copy of a page gets its own entry and review ids, so each is a first capture of
new reviews. For each set and database, two archives are built: "first" (``--pages``
distinct pages, each once, as a first crawl sees them) and "Nx" (a tenth as many
pages, each captured N times, days apart, with a small change each time, as
re-crawls see them). Parsing is timed on its own, then
ingest_page is timed with the pages already parsed (store only: compress +
upsert), after one page of another site has warmed the engine up (statements are
compiled once per process); "with parse" is pages / (parse + store) time. The
ratio is the stored size of the measured raw bodies over their raw size.

    .venv/bin/python bench/bench_ingest.py [--pages 60] [--rounds N] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from scraper.records import FetchedPage
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page, parse_fetched

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from pages import CORPUS, page_set  # noqa: E402  (bench/ is not a package)


def _sets() -> list[str]:
    return ["corpus", "grown"] if CORPUS.is_dir() else ["grown"]


def _pages(only: str, count: int, rounds: int) -> list[FetchedPage]:
    """*count* distinct real-sized pages, each *rounds* times with a small change each time."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sources = [page.body for page in page_set(count, only=only)]
    pages = []
    for number in range(rounds):
        for index, source in enumerate(sources):
            body = source
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


def _run(url: str, pages: list[FetchedPage]) -> tuple[float, float, float, float, float | None]:
    """Return (parse seconds, store seconds, store CPU seconds, stored/raw size, server
    CPU seconds or None) for ingesting *pages*."""
    started = time.perf_counter()
    parsed = [parse_fetched(p.body, p.final_url, p.charset) for p in pages]
    parse_seconds = time.perf_counter() - started
    engine = open_engine(url)
    try:
        _warm_up(engine)
        server = _server_cpu(engine)
        server_before = server()
        started, cpu = time.perf_counter(), time.process_time()
        for page, outcome in zip(pages, parsed, strict=True):
            ingest_page(engine, page, parsed=outcome)
        store_seconds = time.perf_counter() - started
        store_cpu = time.process_time() - cpu
        server_after = server()
        server_cpu = (
            server_after - server_before
            if server_before is not None and server_after is not None
            else None
        )
        with engine.connect() as connection:
            raw, stored = connection.execute(
                sa.text(
                    "SELECT sum(size), sum(length(data)) FROM raw_bodies WHERE sha256 IN "
                    "(SELECT body_sha256 FROM raw_pages WHERE final_url NOT LIKE :warm_up)"
                ),
                {"warm_up": f"{_WARM_UP_SITE}%"},
            ).one()
        return parse_seconds, store_seconds, store_cpu, float(stored) / float(raw), server_cpu
    finally:
        engine.dispose()


def _server_cpu(engine: sa.Engine) -> Callable[[], float | None]:
    """Return a reader of the CPU seconds used so far by the PostgreSQL backend behind
    the engine's pooled connection (the one a serial ingest reuses), None when it cannot
    be read (SQLite, a server on another machine)."""
    if engine.dialect.name != "postgresql":
        return lambda: None
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    return read


#: Another site: its page is no base for the measured ones, and is left out of the sizes.
_WARM_UP_SITE = "https://warm-up.invalid/"


def _warm_up(engine: sa.Engine) -> None:
    """Ingest one page of another site first: a process compiles its statements once."""
    body = (REPO / "fixtures" / "mal" / "anime-reviews-current.html").read_bytes()
    url = f"{_WARM_UP_SITE}anime/1/reviews"
    at = datetime(2020, 1, 1, tzinfo=UTC)
    ingest_page(engine, FetchedPage(url, url, 200, (), body, at))


def _report(label: str, url: str, pages: list[FetchedPage]) -> None:
    parse, store, store_cpu, ratio, server = _run(url, pages)
    count = len(pages)
    # The server's own CPU, when it runs here: on a shared machine it competes with ours.
    in_server = f", {1000 * server / count:4.1f} in the server" if server is not None else ""
    print(
        f"  {label:16} {count:4} pages: {count / (parse + store):6.1f} pages/s with parse, "
        f"{count / store:6.1f} store only (parse {1000 * parse / count:4.1f} ms, store "
        f"{1000 * store / count:4.1f} ms/page, {1000 * store_cpu / count:4.1f} of it CPU "
        f"here{in_server}); bodies at 1/{1 / ratio:.1f} of raw size; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def _import_files(
    label: str, url: str, url_again: str, pages: list[FetchedPage], workers: int
) -> None:
    """Time ``import_paths`` (what ``reviews import`` runs) over the pages saved as files,
    in one process and with *workers* processes, then ``reparse --all`` of the archive.

    Wall-clock rates need idle cores; the CPU of this process (the writer) is what
    bounds the parallel rate when they are.
    """
    from scraper.store.files import import_paths
    from scraper.store.reparse import reparse

    with tempfile.TemporaryDirectory() as folder:
        files = []
        for number, page in enumerate(pages):
            path = Path(folder) / f"{number:04d}.html"
            path.write_bytes(page.body)
            files.append(path)
        engine = open_engine(url)
        try:
            for jobs in (1, workers):
                if jobs > 1:  # a second archive: the same files as first captures again
                    engine.dispose()
                    engine = open_engine(url_again)
                started, cpu = time.perf_counter(), time.process_time()
                count = sum(1 for _ in import_paths(engine, files, workers=jobs))
                rate = count / (time.perf_counter() - started)
                writer = 1000 * (time.process_time() - cpu) / count
                print(
                    f"  {label + ' import':16} {count:4} files: {rate:6.1f} pages/s with parse "
                    f"(--jobs {jobs}: this process {writer:4.1f} ms CPU/page; "
                    f"load {os.getloadavg()[0]:.1f})"
                )
            for jobs in (1, workers):
                started, cpu = time.perf_counter(), time.process_time()
                report = reparse(engine, everything=True, workers=jobs)
                rate = report.pages / (time.perf_counter() - started)
                writer = 1000 * (time.process_time() - cpu) / report.pages
                print(
                    f"  {label + ' reparse':16} {report.pages:4} pages: {rate:6.1f} pages/s "
                    f"(--all --jobs {jobs}: this process {writer:4.1f} ms CPU/page)"
                )
        finally:
            engine.dispose()


@contextmanager
def _pg_schemas(base: str) -> Iterator[Callable[[], str]]:
    """Yield a maker of scratch-schema URLs on *base*; the schemas are dropped after."""
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    made: list[str] = []
    separator = "&" if "?" in base else "?"

    def scratch() -> str:
        # A new schema each time: open_engine remembers which URLs it migrated.
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"

    try:
        yield scratch
    finally:
        with admin.connect() as connection:
            for schema in made:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60, help="first captures (default 60)")
    parser.add_argument("--rounds", type=int, default=10, help="captures per page (default 10)")
    parser.add_argument("--pg", default=os.environ.get("REVIEWS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    sets = _sets()
    for name in sets:
        sample = page_set(min(args.pages, 6), only=name)
        size = sum(len(page.body) for page in sample) / len(sample)
        print(f"{name}: real-sized pages, {size / 1024:.0f} KiB average")
    with tempfile.TemporaryDirectory() as folder:
        _bench("sqlite", lambda: f"sqlite:///{folder}/{uuid.uuid4().hex}.db", sets, args)
    if not args.pg:
        print("postgresql: skipped (give --pg URL or set $REVIEWS_TEST_POSTGRES_URL)")
        return 0
    with _pg_schemas(args.pg) as scratch:
        _bench("postgresql", scratch, sets, args)
    return 0


def _bench(
    database: str, new_url: Callable[[], str], sets: list[str], args: argparse.Namespace
) -> None:
    """Print the figures for one database; *new_url* gives an empty database each call."""
    print(database)
    rounds = args.rounds
    for name in sets:
        _report(f"{name} first", new_url(), _pages(name, args.pages, 1))
        _report(f"{name} {rounds}x", new_url(), _pages(name, max(1, args.pages // 10), rounds))
    for name in sets:
        # Enough files that starting the parse workers (~0.5 s) does not dominate.
        _import_files(name, new_url(), new_url(), _pages(name, max(args.pages, 120), 1), 2)


if __name__ == "__main__":
    sys.exit(main())
