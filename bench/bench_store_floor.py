"""The floor under ``reviews import``: what storing real pages costs the databases
themselves, with no Python in the way, against the bare parse.

Issue 13 asks an import of first captures for <= 3x the bare parse a page on SQLite and
>= 100 pages/s on PostgreSQL, on a 2-CPU machine. On 2 CPUs a wall time of k x the floor
a page leaves at most 2k x the floor of CPU a page for everything: reading, parsing,
storing. This bench measures the parts of that no change to our code can remove.

- The floor and ``reviews parse --jobs 1`` (the parse an import does, in one process),
  the least CPU time of ``--runs`` runs each.
- SQLite: the page set is imported by ``reviews import``; then its rows are copied into
  a new archive at the same schema, one ``INSERT ... SELECT`` a table in one transaction,
  through the stdlib ``sqlite3`` module with the store's pragmas (WAL, synchronous
  NORMAL, foreign keys on). That is the least SQLite can do to hold those rows. Printed
  apart: the rows (the full-text insert trigger dropped), the full-text index of their
  reviews in one statement (as an import's batch does it), the commit.
- PostgreSQL (``--pg``): ``reviews import`` of the page set into a new database, the
  server's CPU time beside the importer's (the server's is its processes' ``/proc``
  times, the backends that ended included, which the postmaster reaps; this only works
  with the server on this machine). Then, on the stored reviews, the server's time for:
  their rows copied by one ``INSERT ... SELECT`` into a new table like ``reviews`` (its
  indexes, its generated full-text column), the way the SQLite rows are; the full-text
  vector of every body alone (the generated column's own expression); a GIN index taking
  the stored vectors.

    .venv/bin/python bench/bench_store_floor.py [--pages 600] [--pg URL] [--runs 3]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_goals import (  # noqa: E402  (bench/ is not a package)
    REVIEWS,
    drop_pg,
    fresh_pg,
    least,
    libpq,
    options,
    page_folder,
    timed,
)
from bench_parse import BARE  # noqa: E402


def main() -> int:
    args = options(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        folder, count = page_folder(root, args.pages)
        _, bare = least([sys.executable, "-c", BARE, str(folder)], args.runs)
        floor = 1000 * bare / count
        _, parse = least([*REVIEWS, "parse", "--jobs", "1", str(folder)], args.runs)
        show = _Shower(floor)
        show("floor: bare lexbor + 1 CSS (CPU)", floor)
        show("reviews parse --jobs 1 (CPU)", 1000 * parse / count)
        cpus = os.cpu_count() or 1
        show(f"budget at 3x the floor on {cpus} CPUs", 3 * cpus * floor, "parse + store, all")
        source = root / "source.db"
        timed([*REVIEWS, "import", "--db", str(source), str(folder)])
        _sqlite_floor(show, source, root / "copy.db", count)
        if args.pg:
            _postgres_floor(show, args.pg, folder, count)
        else:
            print("  (PostgreSQL skipped: give --pg URL or set $REVIEWS_TEST_POSTGRES_URL)")
        print(f"  load average {os.getloadavg()[0]:.1f}")
    return 0


class _Shower:
    """Prints a figure a page beside its ratio to the floor."""

    def __init__(self, floor: float) -> None:
        self.floor = floor

    def __call__(self, name: str, per_page: float, note: str = "") -> None:
        print(f"  {name:50s} {per_page:7.2f} ms/page {per_page / self.floor:6.2f}x  {note}")


def _sqlite_floor(show: _Shower, source: Path, target: Path, count: int) -> None:
    """Copy *source*'s rows into a new archive *target*: SQLite's own cost of storing them."""
    timed([*REVIEWS, "db", "--db", str(target), "upgrade"])
    connection = sqlite3.connect(target, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("ATTACH DATABASE ? AS source", (str(source),))
        trigger = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'reviews_fts_ai'"
        ).fetchone()
        connection.execute("BEGIN IMMEDIATE")
        if trigger is not None:
            connection.execute("DROP TRIGGER reviews_fts_ai")
        started = time.perf_counter()
        for table in _in_key_order(connection):
            connection.execute(f'INSERT INTO main."{table}" SELECT * FROM source."{table}"')
        rows = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute("INSERT INTO reviews_fts(rowid, body) SELECT id, body FROM reviews")
        index = time.perf_counter() - started
        if trigger is not None:
            connection.execute(trigger[0])
        started = time.perf_counter()
        connection.execute("COMMIT")
        commit = time.perf_counter() - started
    finally:
        connection.close()
    show("SQLite: the rows, INSERT ... SELECT", 1000 * rows / count)
    show("SQLite: their full-text index, one statement", 1000 * index / count)
    show("SQLite: the commit (WAL)", 1000 * commit / count)
    show("SQLite: the store's floor, all three", 1000 * (rows + index + commit) / count)


def _in_key_order(connection: sqlite3.Connection) -> list[str]:
    """The source's tables with rows to copy, each after the tables its foreign keys name."""
    names = [
        str(name)
        for (name,) in connection.execute(
            "SELECT name FROM source.sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'sqlite%' AND name NOT LIKE 'reviews_fts%' AND name != 'alembic_version'"
        )
    ]
    parents = {
        name: {
            str(row[2])
            for row in connection.execute(f'PRAGMA source.foreign_key_list("{name}")')
            if row[2] != name
        }
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise SystemExit(f"foreign keys in a cycle among {sorted(set(names) - set(ordered))}")
        ordered.extend(sorted(ready))
    return ordered


def _postgres_floor(show: _Shower, base: str, folder: Path, count: int) -> None:
    import psycopg

    url, name = fresh_pg(base)
    try:
        timed([*REVIEWS, "db", "--db", url, "upgrade"])
        before = _server_cpu()
        wall, client = timed([*REVIEWS, "import", "--db", url, str(folder)])
        server = _server_cpu() - before
        show("PostgreSQL: reviews import, wall", 1000 * wall / count, f"{count / wall:.1f} pages/s")
        show("PostgreSQL: the importer's CPU", 1000 * client / count)
        show("PostgreSQL: the server's CPU", 1000 * server / count)
        budget = 2 * 1000 / 100  # 100 pages/s on 2 CPUs
        show("PostgreSQL: budget at 100 pages/s, 2 CPUs", budget, "importer + server, all")
        with psycopg.connect(libpq(url), autocommit=True) as connection:
            (vector,) = connection.execute(
                "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef JOIN pg_attribute a "
                "ON a.attrelid = adrelid AND a.attnum = adnum "
                "WHERE adrelid = 'reviews'::regclass AND a.attname = 'body_fts'"
            ).fetchone() or ("",)
            if not vector:
                print("  (no body_fts column: the vector's cost is not measured)")
                return
            copied = _copy_reviews(connection)
            started = time.perf_counter()
            connection.execute(f"SELECT sum(length({vector})) FROM reviews")
            vectors = time.perf_counter() - started
            connection.execute("CREATE TEMP TABLE floor_vectors (v tsvector)")
            connection.execute("CREATE INDEX ON floor_vectors USING gin (v)")
            started = time.perf_counter()
            connection.execute("INSERT INTO floor_vectors SELECT body_fts FROM reviews")
            gin = time.perf_counter() - started
        show("PostgreSQL: the reviews' rows, INSERT ... SELECT", 1000 * copied / count, "server")
        show("PostgreSQL: of it, the full-text vectors alone", 1000 * vectors / count, "server")
        show("PostgreSQL: a GIN index taking them", 1000 * gin / count, "server")
    finally:
        drop_pg(base, name)


def _copy_reviews(connection: Any) -> float:
    """Seconds the server takes to copy every stored review into a new table like
    ``reviews``: its indexes and its generated column come with it, its ids are new."""
    connection.execute("CREATE TEMP TABLE floor_reviews (LIKE reviews INCLUDING ALL)")
    columns = [
        str(name)
        for (name,) in connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'reviews'::regclass "
            "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' AND attname != 'id' "
            "ORDER BY attnum"
        )
    ]
    named = ", ".join(f'"{name}"' for name in columns)
    started = time.perf_counter()
    connection.execute(f"INSERT INTO floor_reviews ({named}) SELECT {named} FROM reviews")
    return time.perf_counter() - started


def _server_cpu() -> float:
    """CPU seconds of this machine's PostgreSQL processes, the ended ones included."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("postgres"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
