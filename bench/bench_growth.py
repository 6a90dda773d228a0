"""Benchmark: does a page's store cost grow with the archive? (issue 13: flat, the cost
at 50k pages within 10% of the cost at 1k).

One archive is filled with real-sized first captures (``bench/pages.py``: corpus pages
and grown fixtures, every copy renumbered so each page is new, with new reviews and
authors), generated one at a time so memory stays flat. Each page is parsed, then
stored with ``ingest_page`` (what ``reviews import`` does per page); the store's CPU
time (this process) and wall time are summed per window of ``--window`` pages, and
printed when the archive reaches each of ``--marks`` pages.

    .venv/bin/python bench/bench_growth.py [--marks 1000,10000,50000] [--db URL]
        [--statements 8] [--batch]

Without --db, a SQLite file in a temporary folder (removed after). With
``--statements N``, each mark also lists the N statements that cost the most CPU per
page in the window (SQLite runs in this process, so its work is in there: an INSERT's
triggers and index updates are its own statement's), each beside its cost at the
first mark: which statement grows with the archive. With ``--batch`` the pages go
through ``scraper.store.batch.ingest_pages`` as ``reviews import`` stores them
(several pages per transaction).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import sqlalchemy as sa  # noqa: E402
from pages import renumber, sources  # noqa: E402  (bench/ is not a package)

from scraper.records import FetchedPage  # noqa: E402
from scraper.store.engine import open_engine  # noqa: E402
from scraper.store.ingest import ingest_page, parse_fetched  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", default="1000,10000,50000", help="archive sizes to report")
    parser.add_argument("--window", type=int, default=500, help="pages averaged per figure")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite)")
    parser.add_argument(
        "--statements", type=int, default=0, help="list the N costliest statements at each mark"
    )
    parser.add_argument(
        "--batch", action="store_true", help="store as reviews import does (batched commits)"
    )
    args = parser.parse_args()
    marks = sorted(int(mark) for mark in args.marks.split(","))
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/growth.db"
        run(url, marks, args.window, args.statements, args.batch)
    return 0


class _Statements:
    """CPU time per statement text while ``on``, summed until ``report`` resets it.

    A statement's time runs from its start to the next one's (or the COMMIT's): the
    rows of an INSERT ... RETURNING are stepped, its triggers run, while they are
    fetched, after the cursor's execute has returned.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.on = False
        self.spent: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self._open: tuple[str, float] | None = None
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "commit", self._commit)

    def close(self) -> None:
        """End the statement being timed (the page is stored)."""
        if self._open is not None:
            key, started = self._open
            self.spent[key] = self.spent.get(key, 0.0) + time.process_time() - started
            self._open = None

    def _start(self, key: str) -> None:
        self.close()
        if self.on:
            self._open = (key, time.process_time())

    def _before(self, _conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        self._start(" ".join(statement.split()))

    def _commit(self, _conn: object) -> None:
        self._start("COMMIT")

    def report(self, count: int, window: int) -> None:
        per_page = {sql: 1000 * spent / window for sql, spent in self.spent.items()}
        if not self.first:
            self.first = dict(per_page)
        total = sum(per_page.values())
        print(f"    statements: {total:5.2f} ms CPU/page in all ({len(per_page)} kinds)")
        for sql, cost in sorted(per_page.items(), key=lambda item: -item[1])[:count]:
            before = self.first.get(sql)
            ratio = f"{cost / before:5.2f}x" if before else "  new"
            print(f"    {cost:6.3f} ms ({ratio} the first mark)  {sql[:110]}")
        self.spent = {}


def run(url: str, marks: list[int], window: int, statements: int = 0, batch: bool = False) -> None:
    if batch:
        _run_batched(url, marks, window)
        return
    chosen = sources()
    engine = open_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cpu = wall = 0.0
    first: float | None = None
    timed = _Statements(engine) if statements else None
    try:
        for copy in range(marks[-1]):
            page, outcome = _page(chosen, copy, start)
            measured = marks[-1] - copy <= window or any(
                0 <= mark - 1 - copy < window for mark in marks
            )
            if timed is not None:
                timed.on = measured
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            ingest_page(engine, page, parsed=outcome)
            if timed is not None:
                timed.close()
            if measured:
                cpu += time.process_time() - cpu_start
                wall += time.perf_counter() - wall_start
            if copy + 1 in marks:
                first = _print_mark(copy + 1, 1000 * cpu / window, 1000 * wall / window, first)
                if timed is not None:
                    timed.report(statements, window)
                    sys.stdout.flush()
                cpu = wall = 0.0
    finally:
        engine.dispose()


def _page(chosen: list[tuple[str, str]], copy: int, start: datetime) -> tuple[FetchedPage, Any]:
    """Copy number *copy* of the sources, parsed: a first capture of new reviews."""
    _, html = chosen[copy % len(chosen)]
    body = renumber(html, copy).encode("utf-8")
    outcome = parse_fetched(body, None, "utf-8")
    page_url = outcome.result.url if outcome.result and outcome.result.url else None
    page_url = page_url or f"https://myanimelist.net/bench/{copy}"
    return FetchedPage(page_url, page_url, 200, (), body, start + timedelta(seconds=copy)), outcome


def _print_mark(pages: int, cpu_ms: float, wall_ms: float, first: float | None) -> float:
    first = first or cpu_ms
    print(
        f"at {pages:6} pages: store {cpu_ms:5.2f} ms CPU/page ({wall_ms:5.2f} wall) over the "
        f"last window; {cpu_ms / first:4.2f}x the first mark (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    return first


def _run_batched(url: str, marks: list[int], window: int) -> None:
    """The same pages through ``ingest_pages`` (what ``reviews import`` runs: several
    pages per transaction). A window runs from the commit that reaches its first page
    to the one that reaches the mark, its pages counted; parsing is left out."""
    from scraper.store.batch import PageJob, ingest_pages

    chosen = sources()
    engine = open_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    parse_cpu = [0.0]

    def jobs() -> Any:
        for copy in range(marks[-1]):
            began = time.process_time()
            page, outcome = _page(chosen, copy, start)
            parse_cpu[0] += time.process_time() - began
            yield PageJob(copy, page, outcome)

    first: float | None = None
    opened: tuple[int, float, float, float] | None = None  # pages, cpu, wall, parse cpu
    pending = list(marks)
    stored = 0
    try:
        for _, _report in ingest_pages(engine, jobs(), source="file"):
            stored += 1
            if not pending:
                continue
            if opened is None and stored >= pending[0] - window:
                opened = (stored, time.process_time(), time.perf_counter(), parse_cpu[0])
            elif opened is not None and stored >= pending[0]:
                count = stored - opened[0]
                cpu = time.process_time() - opened[1] - (parse_cpu[0] - opened[3])
                wall = time.perf_counter() - opened[2] - (parse_cpu[0] - opened[3])
                first = _print_mark(stored, 1000 * cpu / count, 1000 * wall / count, first)
                pending.pop(0)
                opened = None
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
