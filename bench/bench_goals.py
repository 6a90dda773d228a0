"""Issue 13's "done when", in one run: whole ``reviews`` commands on real-sized pages
against the bare parse of the same pages, timed the way a user (or a checker) times
them from outside.

The pages are ``bench/pages.py``'s first captures (the shared corpus pages when
present and our fixtures grown to real size, 20 long reviews each, every copy under
its own URL so every review is new), saved as files in a temporary folder. Each
program below is its own process; its wall time and CPU time (user + system, its
worker processes included) are printed per page beside the floor:

- the floor: a bare ``selectolax.lexbor`` parse of every file plus one CSS query
  (``bench_parse.BARE``);
- ``reviews parse DIR`` with its default (one worker per CPU) and ``--jobs 1``;
  these three are the least of ``--runs`` runs each (3), the others one run;
- ``reviews import DIR`` (its default: one process per CPU) into a new SQLite file,
  and (with ``--pg``) into a new PostgreSQL database; the schema is created first, as
  a scheduled user's archive has it (its creation is printed apart);
- ``reviews reparse --all`` (one process per CPU) of that SQLite archive (nothing
  changed: every page read, parsed and compared);
- ``reviews stats`` and ``reviews query`` on it: the read commands' start.

Goals: parse <= 2.0x the floor; import (SQLite) <= 3x the floor per page (about 200
pages/s here), PostgreSQL >= 100 pages/s; reparse <= 2x the floor with both cores
(about 300 pages/s); read commands < 0.15 s. Wall figures need idle cores: the load
average is printed with every line, and CPU time is what a program costs whatever
else runs.

    .venv/bin/python bench/bench_goals.py [--pages 600] [--pg URL] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_parse import BARE, ENV  # noqa: E402  (bench/ is not a package)
from pages import page_set, write  # noqa: E402

REVIEWS = [sys.executable, "-m", "scraper"]


def timed(command: list[str]) -> tuple[float, float]:
    """Run *command*; return its (wall, CPU) seconds, its children's CPU included.
    A command that fails stops the benchmark with its own message."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 3):  # 3: some page did not parse, named on stderr
        raise SystemExit(f"{' '.join(command[2:])} failed: {done.stderr.decode()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


class Table:
    """Prints one line per program: per page, against the floor."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.floor = 0.0

    def line(self, name: str, wall: float, cpu: float, goal: str = "") -> None:
        per_wall, per_cpu = 1000 * wall / self.pages, 1000 * cpu / self.pages
        ratios = ""
        if self.floor:
            ratios = f"{per_wall / self.floor:5.2f}x {per_cpu / self.floor:5.2f}x"
        print(
            f"  {name:38s} {per_wall:7.2f} {per_cpu:7.2f} {self.pages / wall:8.1f}  "
            f"{ratios:13s} {os.getloadavg()[0]:4.1f}  {goal}"
        )


def fresh_pg(base: str) -> tuple[str, str]:
    """A new PostgreSQL database on *base*'s server: (its URL, its name)."""
    import psycopg

    name = f"bench_goals_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(base), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}", name


def drop_pg(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(libpq(base), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def least(command: list[str], runs: int) -> tuple[float, float]:
    """The least wall and the least CPU time of *runs* runs of *command*: this machine's
    neighbours slow a single run of a few seconds by up to a third at times."""
    times = [timed(command) for _ in range(runs)]
    return min(wall for wall, _ in times), min(cpu for _, cpu in times)


def _import(table: Table, folder: Path, db: str, label: str, goal: str) -> None:
    made = timed([*REVIEWS, "db", "--db", db, "upgrade"])
    print(f"  ({label}: a new archive's schema created in {made[0]:.2f} s, not counted)")
    wall, cpu = timed([*REVIEWS, "import", "--db", db, str(folder)])
    table.line(f"reviews import (default jobs, {label})", wall, cpu, goal)


def options(description: str) -> argparse.Namespace:
    """The command line of this bench and of ``bench_store_floor.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pages", type=int, default=600, help="pages (default 600)")
    parser.add_argument("--pg", default=os.environ.get("REVIEWS_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of the floor and of parse, least kept (3)"
    )
    return parser.parse_args()


def page_folder(root: Path, count: int) -> tuple[Path, int]:
    """Write *count* real-sized first captures into a folder under *root* (the bytecode
    cache there too, and compiled); say what they are; return the folder and the count."""
    ENV["PYTHONPYCACHEPREFIX"] = str(root / "bytecode")
    folder = root / "pages"
    folder.mkdir()
    pages = page_set(count)
    write(folder, pages)
    size = sum(len(page.body) for page in pages) / len(pages) / 1024
    cpus = os.cpu_count()
    print(f"{len(pages)} real-sized first captures, {size:.0f} KiB average, {cpus} CPUs")
    timed([*REVIEWS, "parse", "--jobs", "1", str(next(folder.glob("*.html")))])  # bytecode
    return folder, len(pages)


def main() -> int:
    args = options(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        folder, count = page_folder(root, args.pages)
        heading = f"{'ms/page':>7s} {'CPU ms':>7s} {'pages/s':>8s}  vs floor: wall CPU  load"
        print(f"  {'':38s} {heading}")
        table = Table(count)
        wall, cpu = least([sys.executable, "-c", BARE, str(folder)], args.runs)
        table.line("floor: bare lexbor + 1 CSS", wall, cpu)
        table.floor = 1000 * cpu / count
        wall, cpu = least([*REVIEWS, "parse", str(folder)], args.runs)
        table.line("reviews parse (default jobs)", wall, cpu, "goal <= 2.0x")
        wall, cpu = least([*REVIEWS, "parse", "--jobs", "1", str(folder)], args.runs)
        table.line("reviews parse --jobs 1", wall, cpu, "goal <= 2.0x")
        sqlite = f"sqlite:///{root / 'archive.db'}"
        _import(table, folder, sqlite, "SQLite", "goal <= 3x wall, >= 200 pages/s")
        if args.pg:
            url, name = fresh_pg(args.pg)
            try:
                _import(table, folder, url, "PostgreSQL", "goal >= 100 pages/s")
            finally:
                drop_pg(args.pg, name)
        else:
            print("  (PostgreSQL skipped: give --pg URL or set $REVIEWS_TEST_POSTGRES_URL)")
        wall, cpu = timed([*REVIEWS, "reparse", "--all", "--db", sqlite])
        table.line("reviews reparse --all (default jobs)", wall, cpu, "goal <= 2x wall")
        for command in (["stats"], ["query", "--limit", "3"]):
            runs = [timed([*REVIEWS, *command, "--db", sqlite]) for _ in range(5)]
            wall, cpu = min(run[0] for run in runs), min(run[1] for run in runs)
            print(
                f"  reviews {command[0]:30s} {wall:7.3f} s wall, {cpu:.3f} s CPU "
                f"(least of 5, whole process)          goal < 0.15 s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
