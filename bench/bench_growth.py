"""Benchmark: does a page's store cost grow with the archive? (issue 13: flat, the cost
at 50k pages within 10% of the cost at 1k).

One archive is filled with real-sized first captures (``bench/pages.py``: corpus pages
and grown fixtures, every copy renumbered so each page is new, with new reviews and
authors), generated one at a time so memory stays flat. Each page is parsed, then
stored with ``ingest_page`` (what ``reviews import`` does per page); the store's CPU
time (this process) and wall time are summed per window of ``--window`` pages, and
printed when the archive reaches each of ``--marks`` pages.

    .venv/bin/python bench/bench_growth.py [--marks 1000,10000,50000] [--db URL]

Without --db, a SQLite file in a temporary folder (removed after).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from pages import renumber, sources  # noqa: E402  (bench/ is not a package)

from scraper.records import FetchedPage  # noqa: E402
from scraper.store.engine import open_engine  # noqa: E402
from scraper.store.ingest import ingest_page, parse_fetched  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", default="1000,10000,50000", help="archive sizes to report")
    parser.add_argument("--window", type=int, default=500, help="pages averaged per figure")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    marks = sorted(int(mark) for mark in args.marks.split(","))
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/growth.db"
        run(url, marks, args.window)
    return 0


def run(url: str, marks: list[int], window: int) -> None:
    chosen = sources()
    engine = open_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cpu = wall = 0.0
    first: float | None = None
    try:
        for copy in range(marks[-1]):
            _, html = chosen[copy % len(chosen)]
            body = renumber(html, copy).encode("utf-8")
            outcome = parse_fetched(body, None, "utf-8")
            page_url = outcome.result.url if outcome.result and outcome.result.url else None
            page_url = page_url or f"https://myanimelist.net/bench/{copy}"
            page = FetchedPage(page_url, page_url, 200, (), body, start + timedelta(seconds=copy))
            measured = marks[-1] - copy <= window or any(
                0 <= mark - 1 - copy < window for mark in marks
            )
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            ingest_page(engine, page, parsed=outcome)
            if measured:
                cpu += time.process_time() - cpu_start
                wall += time.perf_counter() - wall_start
            if copy + 1 in marks:
                per_page = 1000 * cpu / window
                first = first or per_page
                print(
                    f"at {copy + 1:6} pages: store {per_page:5.2f} ms CPU/page "
                    f"({1000 * wall / window:5.2f} wall) over the last {window}; "
                    f"{per_page / first:4.2f}x the first mark",
                    flush=True,
                )
                cpu = wall = 0.0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
