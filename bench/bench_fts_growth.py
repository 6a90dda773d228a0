"""Benchmark: the full-text index alone, grown to 50k pages (issue 13: which part of a
page's cost grows with the archive, and which FTS5 settings make it flat).

``bench_growth`` found the batch's full-text insert the statement whose cost grows
(FTS5 merges its segments again as the index grows). Building a whole archive to
50k pages takes most of an hour on a shared machine; the index alone takes minutes.
This fills an FTS5 table made as the archive's ``reviews_fts`` is (same tokenizer,
no content of its own) with the review bodies of a built archive, copied as
``bench_growth --build`` copies pages (every copy the same bodies, new ids), one
``INSERT ... SELECT`` and one commit per batch of ``--batch`` pages as
``scraper.store.ftsbatch`` does, in WAL mode as the archive is. Between marks it
prints the CPU time a page of that insert and of the commit (the WAL checkpoints
run in it) and the database pages the transactions wrote (a count
the load does not change), averaged over the whole span, so the merges (which come in lumps: a
level is merged once every few batches, the next level more rarely) are paid in
full, and the number of index segments at the mark.

    .venv/bin/python bench/bench_fts_growth.py --source ARCHIVE.db
        [--marks 1000,10000,20000,50000] [--batch 32] [--automerge N]
        [--crisismerge N] [--usermerge N] [--pgsz N]

The settings are FTS5's own (``INSERT INTO t(t, rank) VALUES ('automerge', N)``),
stored in the index; left out, FTS5's defaults.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

#: Searches timed at each mark (``scraper.store.fts`` MATCH expressions): a word of
#: most reviews, a rarer one, a phrase; the search counts what matches, as
#: ``reviews serve`` does.
_SEARCHES = ('"the"', '"lantern"', '"quiet storm"', '"soundtrack" "finale"')
_TOKENIZE = "tokenize='unicode61 remove_diacritics 0'"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="an archive (bench_growth --build)")
    parser.add_argument("--marks", default="1000,10000,20000,50000")
    parser.add_argument("--batch", type=int, default=32, help="pages per INSERT ... SELECT")
    parser.add_argument("--sources", type=int, default=6, help="distinct pages in the source")
    for option in ("automerge", "crisismerge", "usermerge", "pgsz"):
        parser.add_argument(f"--{option}", type=int, default=None)
    parser.add_argument("--keep", metavar="FILE", help="build the index in FILE and keep it")
    args = parser.parse_args()
    marks = sorted(int(mark) for mark in args.marks.split(","))
    pages = _pages(Path(args.source), args.sources)
    settings = {
        name: getattr(args, name)
        for name in ("automerge", "crisismerge", "usermerge", "pgsz")
        if getattr(args, name) is not None
    }
    if args.keep:
        run(Path(args.keep), pages, marks, args.batch, settings)
        return 0
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        run(Path(folder) / "fts.db", pages, marks, args.batch, settings)
    return 0


def _pages(source: Path, count: int) -> list[list[str]]:
    """The review bodies of the first *count* pages of *source* (one list per page)."""
    connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT last_raw_page_id, body FROM reviews WHERE last_raw_page_id <= ? ORDER BY id",
            (count,),
        ).fetchall()
    finally:
        connection.close()
    pages: dict[int, list[str]] = {}
    for page, body in rows:
        pages.setdefault(page, []).append(body or "")
    return [pages[page] for page in sorted(pages)]


def run(
    path: Path, pages: list[list[str]], marks: list[int], batch: int, settings: dict[str, int]
) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    # The WAL is checkpointed after every commit here, timed with it: its frames are
    # the pages the transaction wrote, a count that does not depend on the load.
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute(
        f"CREATE VIRTUAL TABLE reviews_fts USING fts5(body, content='', {_TOKENIZE})"
    )
    connection.execute("CREATE TEMP TABLE staged (id INTEGER PRIMARY KEY, body TEXT)")
    for name, value in settings.items():
        connection.execute(
            "INSERT INTO reviews_fts(reviews_fts, rank) VALUES (?, ?)", (name, value)
        )
    print(f"settings {settings or 'FTS5 defaults'}, {batch} pages a batch", flush=True)
    stored = row = 0
    spent = {"insert": 0.0, "commit": 0.0}
    written = 0
    longest = 0.0
    opened = 0
    began = time.perf_counter()
    for mark in marks:
        while stored < mark:
            count = min(batch, mark - stored)
            rows = []
            for copy in range(stored, stored + count):
                for body in pages[copy % len(pages)]:
                    row += 1
                    rows.append((row, body))
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT INTO staged VALUES (?, ?)", rows)
            started = time.process_time()
            connection.execute("INSERT INTO reviews_fts(rowid, body) SELECT id, body FROM staged")
            took = time.process_time() - started
            spent["insert"] += took
            longest = max(longest, took)
            connection.execute("DELETE FROM staged")
            started = time.process_time()
            connection.execute("COMMIT")
            written += connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            spent["commit"] += time.process_time() - started
            stored += count
        span = stored - opened
        segments = connection.execute(
            "SELECT count(DISTINCT segid) FROM reviews_fts_idx"
        ).fetchone()[0]
        searched = _searched(connection)
        print(
            f"pages {opened + 1:6}-{stored:6}: insert {1000 * spent['insert'] / span:6.3f} ms "
            f"CPU/page, commit {1000 * spent['commit'] / span:6.3f}, {written / span:5.1f} "
            f"database pages written a page, longest insert {longest:.2f} s; {segments} segments, "
            f"index {path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - began:.0f} s "
            f"(load {os.getloadavg()[0]:.2f}); searches {searched}",
            flush=True,
        )
        spent = {"insert": 0.0, "commit": 0.0}
        written = 0
        longest = 0.0
        opened = stored
    connection.close()


def _searched(connection: sqlite3.Connection) -> str:
    """CPU ms of each of ``_SEARCHES`` (best of three), and how many rows it matched."""
    parts = []
    for search in _SEARCHES:
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            found = connection.execute(
                "SELECT count(*) FROM reviews_fts WHERE reviews_fts MATCH ?", (search,)
            ).fetchone()[0]
            best = min(best, time.process_time() - started)
        parts.append(f"{search} {1000 * best:.1f} ms ({found})")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
