"""Benchmark: ``reviews reparse`` of an archive of real-sized first captures.

Goal (issue 13): >= 300 pages/s with both cores, <= 2x the bare parse (``selectolax``
parse + one CSS query, the floor ``bench_parse.py`` uses), per-page cost flat as the
archive grows. The archive is built with ``ingest_page`` from ``bench/pages.py``'s
real-sized pages (each copy under its own URL, every review new), then reparsed:

- ``--all``, nothing changed (each page read, parsed, compared, not written), on
  SQLite also as ``reviews reparse`` runs it on a file (``Archive.reparse``: read
  through ``sqlite3``, SQLAlchemy's engine opened only to write);
- a new parser version that reads every page alike (read, parsed, version noted);
- ``--all`` of an archive without digests (before revision 0004: every page written).

Each with one process and with ``--jobs 2``. CPU is this process plus its workers
(``os.times``), per page; wall-clock rates need idle cores, so the load average is
printed beside them.

    .venv/bin/python bench/bench_reparse.py [--pages 600] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

# Nothing heavy at the top: a ``--jobs`` worker (spawn) runs this script's top level
# again as ``__mp_main__``, and would import SQLAlchemy here that it never needs.
if TYPE_CHECKING:
    import sqlalchemy as sa


def _floor(bodies: list[bytes]) -> float:
    """CPU seconds per page of the bare parse: lexbor's tree and one CSS query."""
    from selectolax.lexbor import LexborHTMLParser

    started = time.process_time()
    for body in bodies:
        tree = LexborHTMLParser(body.decode("utf-8", "replace"))
        tree.css("div.review-element, div.borderDark")
    return (time.process_time() - started) / len(bodies)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _run(
    engine: sa.Engine, label: str, floor: float, prepare: Callable[[], None], **how: object
) -> None:
    from scraper.api import Archive
    from scraper.store.reparse import reparse

    prepare()
    started, cpu = time.perf_counter(), _cpu()
    if label.startswith("file"):  # as `reviews reparse` does: a SQLite file via sqlite3
        with Archive(engine.url.render_as_string(hide_password=False)) as archive:
            report = archive.reparse(**how)  # type: ignore[arg-type]
    else:
        report = reparse(engine, **how)  # type: ignore[arg-type]
    wall, used = time.perf_counter() - started, _cpu() - cpu
    per_page = used / report.pages
    print(
        f"  {label:34} {report.pages:5} pages, {report.written:5} written: "
        f"{report.pages / wall:6.1f} pages/s, {1000 * per_page:5.2f} ms CPU/page "
        f"({per_page / floor:4.2f}x the bare parse by CPU), load {os.getloadavg()[0]:.1f}"
    )


def _bench(url: str, name: str, count: int) -> None:
    import sqlalchemy as sa

    # bench/ is not a package: run as a script, this folder is on sys.path.
    from bench_ingest import _pages

    from scraper.schema.tables import raw_pages
    from scraper.store.engine import open_engine
    from scraper.store.ingest import ingest_page

    pages = _pages(name, count, 1)
    floor = _floor([page.body for page in pages])
    engine = open_engine(url)
    try:
        started = time.perf_counter()
        for page in pages:
            ingest_page(engine, page)
        print(
            f"  {name}: {len(pages)} pages stored in {time.perf_counter() - started:.1f} s; "
            f"bare parse {1000 * floor:.2f} ms CPU/page"
        )

        def nothing() -> None:
            return None

        def bump() -> None:
            with engine.begin() as connection:
                connection.execute(sa.update(raw_pages).values(parser_version="0"))

        def no_digests() -> None:
            with engine.begin() as connection:
                connection.execute(sa.update(raw_pages).values(records_sha256=None))

        for jobs in (1, 2):
            _run(
                engine,
                f"--all, unchanged, --jobs {jobs}",
                floor,
                nothing,
                everything=True,
                workers=jobs,
            )
        if engine.dialect.name == "sqlite":
            for jobs in (1, 2):
                label = f"file, --all, unchanged, --jobs {jobs}"
                _run(engine, label, floor, nothing, everything=True, workers=jobs)
        for jobs in (1, 2):
            _run(engine, f"new parser version, --jobs {jobs}", floor, bump, workers=jobs)
        for jobs in (1, 2):
            _run(
                engine,
                f"--all, no digests, --jobs {jobs}",
                floor,
                no_digests,
                everything=True,
                workers=jobs,
            )
    finally:
        engine.dispose()


def main() -> int:
    from bench_ingest import _pg_schemas, _sets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=600, help="pages in the archive")
    parser.add_argument("--pg", default=os.environ.get("REVIEWS_TEST_POSTGRES_URL"))
    parser.add_argument("--set", choices=_sets(), default=_sets()[0], help="the page set")
    args = parser.parse_args()
    print("sqlite")
    with tempfile.TemporaryDirectory() as folder:
        _bench(f"sqlite:///{folder}/{uuid.uuid4().hex}.db", args.set, args.pages)
    if not args.pg:
        print("postgresql: skipped (give --pg URL or set $REVIEWS_TEST_POSTGRES_URL)")
        return 0
    print("postgresql")
    with _pg_schemas(args.pg) as scratch:
        _bench(scratch(), args.set, args.pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
