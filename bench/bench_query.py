"""Benchmark: full-text and filtered queries, and JSONL export, on a synthetic archive.

Goals (issue 6): full-text search and a filtered query answer in < 100 ms median on
SQLite; JSONL export streams >= 20,000 reviews/s with flat memory.

The archive comes from bench/synth.py (made first when --db does not exist yet).
Query latency is the time to get the first page of results (--limit 50, as
``reviews query`` shows them) through ``iter_records`` on an open engine, the
median over --runs runs of each query. Export runs ``reviews export`` in a child
process writing to /dev/null; its peak RSS is measured for the whole archive and
for its first tenth, to show that memory does not grow with the export.

    .venv/bin/python bench/bench_query.py --db /tmp/synth.db --reviews 1000000
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from synth import generate

from scraper.config import database_url
from scraper.store.engine import open_engine
from scraper.store.read import ReviewQuery, iter_records

SEARCHES = (
    "lantern",  # in ~3% of reviews
    "harbour",  # ~0.1%
    "soundtrack festival",  # both words
    '"lantern festival"',  # a phrase, ~1%
    "ka",  # one of the most frequent pseudo-words
)
FILTERS = (
    {"entry": "7", "min_score": "8"},  # entry id
    {"entry": "ba", "since": "2020", "sort": "-date"},  # part of a title, newest first
    {"tags": ["recommended"], "type": "manga", "until": "2024-06"},
    {"min_score": "9", "since": "2023-01-01", "sort": "-score"},
    {"user": "{user}", "sort": "date"},  # a real name, looked up (case ignored)
    {"entry": "{title}", "sort": "-date"},  # one entry's full title
    {"search": "ka", "sort": "-date"},  # a frequent word, newest first
)


def _median_ms(engine: object, options: dict[str, object], runs: int) -> tuple[float, int]:
    query = ReviewQuery.from_args(limit="50", **options)  # type: ignore[arg-type]
    times, count = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        count = sum(1 for _ in iter_records(engine, query))  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), count


def _export(db: str, limit: int | None) -> tuple[float, int, float]:
    """Return (seconds, reviews, child peak RSS in MB) of one JSONL export to /dev/null."""
    command = [sys.executable, "-m", "scraper", "export", "--db", db]
    if limit:
        command += ["--limit", str(limit)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"export failed: {done.stderr}")
    count = int(done.stderr.split()[2])  # "reviews export: N review(s) written"
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, count, max(peak, before) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/review-archiver-synth.db")
    parser.add_argument("--reviews", type=int, default=1_000_000, help="size if made here")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    url = database_url(args.db)
    if "://" not in args.db and not Path(args.db).exists():
        print(f"making a synthetic archive of {args.reviews:,} reviews in {args.db} ...")
        seconds = generate(url, args.reviews)
        print(f"synth: {args.reviews / seconds:,.0f} reviews/s")
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            total = conn.exec_driver_sql("SELECT count(*) FROM reviews").scalar_one()
            user = conn.exec_driver_sql("SELECT name FROM authors WHERE id = 5").scalar_one()
            title = conn.exec_driver_sql("SELECT name FROM items WHERE id = 5").scalar_one()
        print(f"archive: {total:,} reviews ({engine.dialect.name})")
        medians = []
        for label, cases in (("full text", [{"search": s} for s in SEARCHES]), ("filter", FILTERS)):
            for options in cases:
                if options.get("user") == "{user}":
                    options = {**options, "user": user.upper()}
                if options.get("entry") == "{title}":
                    options = {**options, "entry": title}
                median, count = _median_ms(engine, options, args.runs)
                medians.append((label, median))
                print(f"  {label:9} {median:8.1f} ms median  ({count:2} shown)  {options}")
        for label in ("full text", "filter"):
            values = [m for kind, m in medians if kind == label]
            print(
                f"{label}: median of medians {statistics.median(values):.1f} ms, "
                f"worst {max(values):.1f} ms (goal < 100 ms)"
            )
    finally:
        engine.dispose()
    tenth = max(1, total // 10)
    small_seconds, small_count, small_rss = _export(args.db, tenth)
    seconds, count, rss = _export(args.db, None)
    print(
        f"export jsonl: {count:,} reviews in {seconds:.1f} s = {count / seconds:,.0f} reviews/s "
        f"(goal >= 20,000), peak RSS {rss:.0f} MB"
    )
    print(
        f"export jsonl: first {small_count:,} in {small_seconds:.1f} s, "
        f"peak RSS {small_rss:.0f} MB (flat memory: the two peaks should be close)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
