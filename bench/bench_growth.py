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

Filling an archive to 50k pages takes most of an hour on a shared machine, and a
window of pages timed while it grows is timed once, under whatever load there is. So:

    .venv/bin/python bench/bench_growth.py --build FOLDER [--marks 1000,10000,20000,50000]
    .venv/bin/python bench/bench_growth.py --measure FOLDER [--pages 320] [--rounds 3]
        [--statements 12] [--callgrind]

``--build`` fills ``FOLDER/growth.db`` once (batched, as ``reviews import``) and keeps a
checkpointed copy ``at-<mark>.db`` at each mark. ``--measure`` imports the same
``--pages`` new pages (parsed once, pickled in FOLDER) into a fresh copy of each
mark's archive, the marks alternated over the rounds, and prints the cost a page
of all but the first 64 (which compile the statements and warm the caches): CPU
time, with ``--statements N`` the time inside SQLite of each statement (its
execute; the COMMIT's with its WAL checkpoint), or with ``--callgrind`` the
instructions counted by valgrind (the same however loaded the machine is; each
mark's import is run twice in a child under valgrind, whole and the first 64
pages only, and the difference taken).

A --measure window (256 pages: 8 batches) sees the full-text merges that fall in it,
not their average: FTS5 merges a level in lumps, the higher levels rarely. Its
figures are right for every other statement (flat to 20k pages, within the load's
noise); the index's cost over the whole growth is ``bench_fts_growth``'s. Measured
on copies built before revision 0007, the import first upgrades each copy (new
merge settings on an index built with FTS5's defaults: neither before nor after).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
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

from scraper.config import StoreSettings  # noqa: E402
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
    parser.add_argument(
        "--build", metavar="FOLDER", help="fill FOLDER/growth.db, keeping a copy at each mark"
    )
    parser.add_argument(
        "--measure", metavar="FOLDER", help="time the same next pages into each copy of --build"
    )
    parser.add_argument("--pages", type=int, default=320, help="pages imported per --measure")
    parser.add_argument("--rounds", type=int, default=3, help="--measure rounds (alternated)")
    parser.add_argument(
        "--callgrind", action="store_true", help="--measure counts instructions (valgrind)"
    )
    parser.add_argument("--import-into", help=argparse.SUPPRESS)  # one callgrind run
    parser.add_argument("--jobs-file", help=argparse.SUPPRESS)
    parser.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    marks = sorted(int(mark) for mark in args.marks.split(","))
    if args.import_into:
        return _import_once(args.import_into, Path(args.jobs_file), dry=args.dry)
    if args.build:
        build(Path(args.build), marks)
        return 0
    if args.measure:
        measure(Path(args.measure), args.pages, args.rounds, args.statements, args.callgrind)
        return 0
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


# --- One archive built once, its copies at each mark, the same next pages timed into each.

#: Copies imported by --measure are numbered from here: above any page of a --build.
_NEXT_COPY = 1_000_000
#: --build and --measure batch by page count only: ``batch_seconds`` cuts a batch
#: when the clock says so (32 pages take about 0.4 s CPU, more than 0.5 s of wall time
#: on a loaded machine), and a smaller batch writes more FTS5 segments and commits.
#: With a batch always ``sqlite_batch_pages`` pages, the archive and the import do the
#: same work however busy the machine is.
_BATCHES = StoreSettings(batch_seconds=1e9)
#: The first pages of each --measure import are not counted: they compile the
#: statements and fill the caches (a long import pays that once).
_WARM = 64


def _copy_path(folder: Path, mark: int) -> Path:
    return folder / f"at-{mark}.db"


def _checkpointed(path: Path) -> None:
    """Fold *path*'s WAL into the file (no connection may be open on it)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


_SOURCES: list[tuple[str, str]] = []


def _parsed(copy: int) -> tuple[FetchedPage, Any]:
    """Copy *copy* parsed (in a pool worker: the sources are read once per process)."""
    if not _SOURCES:
        _SOURCES.extend(sources())
    return _page(_SOURCES, copy, datetime(2026, 1, 1, tzinfo=UTC))


def build(folder: Path, marks: list[int]) -> None:
    """Fill ``folder/growth.db`` through ``ingest_pages`` (batched, as ``reviews import``)
    with copies 0.. of the sources; at each mark, checkpoint it and keep a copy
    ``at-<mark>.db``. One worker process parses while this one stores."""
    import multiprocessing

    from scraper.store.batch import PageJob, ingest_pages

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "growth.db"
    if path.exists():
        raise SystemExit(f"{path} exists: build into an empty folder")
    url = f"sqlite:///{path}"
    done = 0
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        parsed = pool.imap(_parsed, range(marks[-1]), chunksize=16)
        for mark in marks:
            engine = open_engine(url)
            jobs = (PageJob(copy, *next(parsed)) for copy in range(done, mark))
            try:
                for _ in ingest_pages(engine, jobs, source="file", settings=_BATCHES):
                    pass
            finally:
                engine.dispose()
            done = mark
            _checkpointed(path)
            shutil.copyfile(path, _copy_path(folder, mark))
            print(
                f"{mark} pages stored, {time.perf_counter() - began:.0f} s so far "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )


def _next_jobs(folder: Path, count: int) -> Path:
    """The pickled jobs of the *count* pages every mark imports (parsed once, here)."""
    from scraper.store.batch import PageJob

    path = folder / f"next-{count}.pickle"
    if not path.exists():
        jobs = [PageJob(copy, *_parsed(copy)) for copy in range(_NEXT_COPY, _NEXT_COPY + count)]
        path.write_bytes(pickle.dumps(jobs))
    return path


def _import_once(database: str, jobs_file: Path, *, dry: bool) -> int:
    """Load the jobs, open the archive and import them (with *dry*, only the first
    ``_WARM`` of them). Run under callgrind by --measure: the difference between the
    two runs' instructions is the cost of the pages after the first ``_WARM``, with
    every statement compiled and the caches as warm as in a long import."""
    from scraper.store.batch import ingest_pages

    jobs = pickle.loads(jobs_file.read_bytes())
    engine = open_engine(f"sqlite:///{database}")
    try:
        for _ in ingest_pages(
            engine, jobs[:_WARM] if dry else jobs, source="file", settings=_BATCHES
        ):
            pass
    finally:
        engine.dispose()
    return 0


def _marks_of(folder: Path) -> list[int]:
    found = [re.fullmatch(r"at-(\d+)\.db", path.name) for path in folder.iterdir()]
    return sorted(int(match.group(1)) for match in found if match)


def measure(folder: Path, count: int, rounds: int, statements: int, callgrind: bool) -> None:
    """Import the same *count* new pages into a fresh copy of each mark's archive,
    marks alternated over *rounds*; print the cost a page of all but the first
    ``_WARM`` of them per mark (CPU ms, or instructions under callgrind) and its
    ratio to the first mark's."""
    marks = _marks_of(folder)
    if not marks:
        raise SystemExit(f"{folder}: no at-<pages>.db copies (run --build first)")
    if count <= _WARM:
        raise SystemExit(f"--pages must be more than the {_WARM} warm-up pages")
    jobs_file = _next_jobs(folder, count)
    scratch = folder / "scratch.db"
    measured = count - _WARM
    results: dict[int, list[float]] = {mark: [] for mark in marks}
    per_statement: dict[int, dict[str, float]] = {mark: {} for mark in marks}
    for round_number in range(rounds):
        order = marks if round_number % 2 == 0 else marks[::-1]
        for mark in order:
            if callgrind:
                _fresh(folder, mark, scratch)
                cost = _instructions(scratch, jobs_file, dry=False)
                _fresh(folder, mark, scratch)
                cost -= _instructions(scratch, jobs_file, dry=True)
            else:
                _fresh(folder, mark, scratch)
                cost = _timed_import(scratch, jobs_file, statements, per_statement[mark])
            results[mark].append(cost / measured)
            print(
                f"  round {round_number + 1} at {mark}: {_unit(cost / measured, callgrind)} "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    _fresh(folder, None, scratch)
    _print_results(results, callgrind, rounds)
    if statements:
        _print_statements(per_statement, statements, measured * rounds)


def _fresh(folder: Path, mark: int | None, scratch: Path) -> None:
    """Put a copy of the archive at *mark* in *scratch* (none: just clear it)."""
    for stale in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
        stale.unlink(missing_ok=True)
    if mark is not None:
        shutil.copyfile(_copy_path(folder, mark), scratch)


class _SqlTime:
    """CPU time inside each statement's execute (SQLite's part: an INSERT ... RETURNING
    does all its work, triggers and index updates included, in its first step) and
    inside each COMMIT, summed per statement text while ``on``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.on = False
        self.spent: dict[str, float] = {}
        self._started = 0.0
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)
        commit = engine.dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            began = time.process_time()
            commit(dbapi_connection)
            self._add("COMMIT", began)

        engine.dialect.do_commit = timed_commit  # type: ignore[method-assign]

    def _add(self, key: str, began: float) -> None:
        if self.on:
            self.spent[key] = self.spent.get(key, 0.0) + time.process_time() - began

    def _before(self, *_args: object) -> None:
        self._started = time.process_time()

    def _after(self, _conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        self._add(" ".join(statement.split()), self._started)


def _timed_import(path: Path, jobs_file: Path, statements: int, spent: dict[str, float]) -> float:
    """Import the jobs into *path* in this process; return the CPU seconds of all but
    the first ``_WARM`` pages (and add their statements' to *spent*)."""
    from scraper.store.batch import ingest_pages

    jobs = pickle.loads(jobs_file.read_bytes())
    engine = open_engine(f"sqlite:///{path}")
    timed = _SqlTime(engine) if statements else None
    try:
        for _ in ingest_pages(engine, jobs[:_WARM], source="file", settings=_BATCHES):
            pass
        if timed is not None:
            timed.on = True
        began = time.process_time()
        for _ in ingest_pages(engine, jobs[_WARM:], source="file", settings=_BATCHES):
            pass
        cost = time.process_time() - began
        if timed is not None:
            for sql, seconds in timed.spent.items():
                spent[sql] = spent.get(sql, 0.0) + seconds
    finally:
        engine.dispose()
    return cost


def _unit(value: float, callgrind: bool) -> str:
    return (
        f"{value / 1e6:7.3f} M instructions/page"
        if callgrind
        else f"{1000 * value:6.3f} ms CPU/page"
    )


def _instructions(path: Path, jobs_file: Path, *, dry: bool) -> float:
    """Instructions (callgrind's Ir) of one ``_import_once`` run in a child process."""
    out = path.with_suffix(".callgrind")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--import-into",
        str(path),
        "--jobs-file",
        str(jobs_file),
    ] + (["--dry"] if dry else [])
    subprocess.run(command, check=True, capture_output=True)
    text = out.read_text()
    out.unlink()
    totals = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if totals is None:
        raise SystemExit(f"{out}: no instruction total")
    return float(totals.group(1))


def _print_results(results: dict[int, list[float]], callgrind: bool, rounds: int) -> None:
    first = min(results[min(results)])
    print(f"best of {rounds} rounds (load {os.getloadavg()[0]:.2f}):")
    for mark, values in results.items():
        best = min(values)
        spread = ", ".join(_unit(value, callgrind).split()[0] for value in values)
        print(f"  at {mark:6} pages: {_unit(best, callgrind)}  {best / first:5.3f}x  ({spread})")


def _print_statements(per_statement: dict[int, dict[str, float]], count: int, pages: int) -> None:
    first = per_statement[min(per_statement)]
    for mark, spent in per_statement.items():
        total = 1000 * sum(spent.values()) / pages
        print(f"statements at {mark} pages: {total:.3f} ms CPU/page inside SQLite in all")
        for sql, seconds in sorted(spent.items(), key=lambda item: -item[1])[:count]:
            before = first.get(sql)
            ratio = f"{seconds / before:5.2f}x" if before else "  new"
            print(f"    {1000 * seconds / pages:6.3f} ms ({ratio} the first mark)  {sql[:100]}")


if __name__ == "__main__":
    sys.exit(main())
