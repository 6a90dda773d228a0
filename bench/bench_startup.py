"""Benchmark: the start-up of the read commands, whole process (goal: < 0.15 s).

``reviews query``, ``stats`` and ``export`` (JSONL, CSV) run on a small SQLite
archive (the three pages of fixtures/history), each as its own interpreter, in
turn with a bare ``python -c pass`` and ``python -c "import sqlalchemy"`` (what
a read command cost before it stopped loading SQLAlchemy). Printed per command:
the least wall time and the least CPU time (user + system) over --runs runs,
and the load average, since wall figures on a busy machine mean little.

    .venv/bin/python bench/bench_startup.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "import sqlalchemy": ["-c", "import sqlalchemy"],
    "reviews query": ["-m", "scraper", "query", "--format", "jsonl", "--limit", "3"],
    "reviews stats": ["-m", "scraper", "stats", "--json"],
    "reviews export jsonl": ["-m", "scraper", "export", "--format", "jsonl"],
    "reviews export csv": ["-m", "scraper", "export", "--format", "csv"],
}


def _run(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "reviews.db")
        pages = str(REPO / "fixtures" / "history")
        subprocess.run(
            [sys.executable, "-m", "scraper", "import", pages, "--db", db],
            capture_output=True,
            check=True,
        )
        programs = {
            name: [sys.executable, *argv, *(["--db", db] if argv[0] == "-m" else [])]
            for name, argv in COMMANDS.items()
        }
        for argv in programs.values():
            _run(argv)  # bytecode cached, files in the page cache
        best = {name: (float("inf"), float("inf")) for name in programs}
        for _ in range(args.runs):
            for name, argv in programs.items():
                wall, cpu = _run(argv)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; best of {args.runs}")
    print(f"{'':24} {'wall s':>8} {'CPU s':>8}")
    for name, (wall, cpu) in best.items():
        print(f"{name:24} {wall:8.3f} {cpu:8.3f}")


if __name__ == "__main__":
    main()
