"""Benchmark ``reviews crawl`` end to end against the stand-in MAL site on loopback.

The site runs in its own process (so it does not share the crawler's interpreter)
and keeps the request log; gaps are measured from that log, as the site sees them.
Three figures, each against the goal of issue 4:

1. throughput with ``--delay 0`` into a fresh SQLite file (goal: >= 150 pages/s);
2. politeness with a delay d: pages x d / wall time (goal >= 0.95) and the smallest
   gap between two requests (goal: never below d);
3. memory over a long crawl: the crawler's RSS sampled as it goes (goal: flat,
   < 200 MB over 10,000 pages; ``--pages`` for a shorter run).

Run:  .venv/bin/python bench/bench_crawl.py [--pages 10000] [--delay 0.2 0.5]
      [--skip-memory]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from itertools import pairwise
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PER_ENTRY_PAGES = 20  # 400 reviews: a long "More Reviews" chain per entry


def _site_process(entries: int, pages_each: int, robots: str, pipe: Connection) -> None:
    from standin import StandinSite, serve_standin

    site = StandinSite(seed=3, shared_text=True)
    site.robots_txt = robots
    for mal_id in range(1, entries + 1):
        reviews = pages_each * site.per_page
        site.add_entry("anime", mal_id, f"Entry_{mal_id}", f"Entry {mal_id}", reviews=reviews)
    with serve_standin(site) as server:
        seeds = [site.entry_url(server.base, "anime", n) for n in range(1, entries + 1)]
        pipe.send(seeds)
        pipe.recv()  # "stop"
        pipe.send([(item.at, item.path) for item in server.log.all()])


class SiteProcess:
    """The stand-in site in a child process; ``stop()`` returns its request log."""

    def __init__(self, entries: int, pages_each: int, robots: str = "User-agent: *\n") -> None:
        context = mp.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_site_process, args=(entries, pages_each, robots, child), daemon=True
        )
        self._process.start()
        self.seeds: list[str] = self._pipe.recv()

    def stop(self) -> list[tuple[float, str]]:
        self._pipe.send("stop")
        log: list[tuple[float, str]] = self._pipe.recv()
        self._process.join(timeout=10)
        return log


def _crawl(db_url: str, seeds: list[str], delay: float) -> tuple[float, int]:
    from scraper.api import crawl
    from scraper.config import CrawlSettings, FetchSettings
    from scraper.store.engine import open_engine

    # The schema is created before the clock starts: a one-off cost of a new
    # archive, not part of crawling (a scheduled run finds it there).
    open_engine(db_url).dispose()
    began = time.perf_counter()
    report = crawl(
        db_url, seeds, settings=CrawlSettings(delay=delay), fetch_settings=FetchSettings()
    )
    return time.perf_counter() - began, report.pages


def throughput(folder: Path) -> None:
    site = SiteProcess(entries=10, pages_each=PER_ENTRY_PAGES)
    wall, pages = _crawl(f"sqlite:///{folder / 'throughput.db'}", site.seeds, 0.0)
    site.stop()
    print(
        f"throughput, --delay 0, SQLite: {pages} pages in {wall:.2f} s = "
        f"{pages / wall:.0f} pages/s (goal >= 150)"
    )


def politeness(folder: Path, delay: float) -> None:
    site = SiteProcess(entries=2, pages_each=15)
    folder.mkdir(exist_ok=True)
    wall, pages = _crawl(f"sqlite:///{folder / 'polite.db'}", site.seeds, delay)
    log = site.stop()
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(log)]
    # robots.txt is a request too: it takes its interval like any page.
    print(
        f"politeness, --delay {delay:g}: {pages} pages in {wall:.2f} s; "
        f"pages x d / wall = {pages * delay / wall:.3f} (goal >= 0.95; "
        f"requests x d / wall = {len(log) * delay / wall:.3f} with robots.txt); "
        f"smallest gap {min(gaps):.4f} s over {len(gaps)} gaps (goal >= {delay:g})"
    )


def memory(folder: Path, pages: int) -> None:
    entries = max(1, pages // PER_ENTRY_PAGES)
    site = SiteProcess(entries=entries, pages_each=PER_ENTRY_PAGES)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.perf_counter()
        while not done.wait(0.5):
            samples.append((time.perf_counter() - began, _rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    wall, crawled = _crawl(f"sqlite:///{folder / 'memory.db'}", site.seeds, 0.0)
    done.set()
    sampler.join()
    site.stop()
    marks = [samples[int(len(samples) * share) - 1] for share in (0.1, 0.25, 0.5, 0.75, 1.0)]
    shown = ", ".join(f"{at:.0f}s {mb:.0f} MB" for at, mb in marks)
    print(
        f"memory, {crawled} pages in {wall:.0f} s ({crawled / wall:.0f} pages/s): "
        f"RSS {shown}; max {max(mb for _, mb in samples):.0f} MB (goal: flat, < 200 MB)"
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000, help="pages of the memory run")
    parser.add_argument(
        "--delay", type=float, nargs="+", default=[0.2, 0.5], help="d of the politeness runs"
    )
    parser.add_argument("--skip-memory", action="store_true", help="leave out the long run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        throughput(Path(folder))
        for delay in args.delay:
            politeness(Path(folder) / f"{delay:g}", delay)
        if not args.skip_memory:
            memory(Path(folder), args.pages)


if __name__ == "__main__":
    main()
