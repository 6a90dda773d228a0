"""Benchmark: the Fetcher over loopback, against tests/siteserver.py.

The page served is real-sized (``bench/pages.py``). Prints pages/s with no delay
(the fetch layer's own cost: robots check, throttle, request, capped read), and
for a small delay d the pacing efficiency ``pages x d / wall time`` (goal >= 0.95)
with the smallest gap between request arrivals as the SERVER logged them (goal:
none below d).

    .venv/bin/python bench/bench_fetch.py [--pages N] [--delay D]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]

from pages import page_set  # noqa: E402  (bench/ is not a package)
from siteserver import serve  # noqa: E402

from scraper.fetch import Fetcher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--paced-pages", type=int, default=25)
    args = parser.parse_args()
    # A real-sized page (bench/pages.py: a corpus page, else a grown fixture), not a
    # small fixture: reading the body is part of the fetch layer's cost.
    body = page_set(1)[0].body
    with serve() as site:
        site.robots("User-agent: *\nDisallow: /private\n")
        for n in range(args.pages):
            site.page(f"/anime/{n}/X/reviews", body)
        with Fetcher(delay=0) as fetcher:
            started = time.perf_counter()
            for n in range(args.pages):
                fetcher.fetch(site.url(f"/anime/{n}/X/reviews"))
            wall = time.perf_counter() - started
        print(f"delay 0: {args.pages / wall:.0f} pages/s ({args.pages} pages of {len(body)} B)")
    with serve() as site:
        site.robots("User-agent: *\n")
        site.page("/p", body)
        count = args.paced_pages
        with Fetcher(delay=args.delay) as fetcher:
            fetcher.fetch(site.url("/p"))  # robots.txt and the first page: not timed
            started = time.perf_counter()
            for _ in range(count):
                fetcher.fetch(site.url("/p"))
            wall = time.perf_counter() - started
        gaps = site.log.gaps("/")
        print(
            f"delay {args.delay:g}: efficiency {count * args.delay / wall:.3f} "
            f"(pages x d / wall, {count} pages); smallest server-side gap {min(gaps):.4f} s"
        )


if __name__ == "__main__":
    main()
