"""Benchmark ``reviews crawl`` end to end on loopback.

The site runs in its own process (so it does not share the crawler's interpreter)
and keeps the request log; gaps are measured from that log, as the site sees them.

Pages are real-sized (issue 13): the MAL pages of the shared corpus (224-274 KB, 20
long reviews each) when ``/work/shared/corpus/mal`` is there, each copy served under
its own URL with its review ids shifted, so every review of every page is new and
each page's "More Reviews" link leads to the next copy. Without the corpus (or with
``--small``) the stand-in site's small generated pages are used, and said so.

Figures, each against its goal:

1. throughput with ``--delay 0`` into a fresh SQLite file (goal: >= 150 pages/s);
2. politeness with a delay d and answers taking a (``--answer``): wall time against
   pages x max(d, a) (goal: at most 5 % more) and the smallest gap between two
   requests (goal: never below d);
3. memory over a long crawl: the crawler's RSS sampled as it goes (goal: flat,
   < 200 MB over 10,000 pages; ``--pages`` for a shorter run).

Run:  .venv/bin/python bench/bench_crawl.py [--pages 10000] [--delay 0.2 0.5]
      [--answer 0 0.3] [--skip-memory] [--small] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import re
import sys
import tempfile
import threading
import time
from itertools import pairwise
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PER_ENTRY_PAGES = 20  # 400 reviews: a long "More Reviews" chain per entry
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "mal"
#: Real pages' "More Reviews" link (to page 2), rewritten to the next copy here.
_NEXT_LINK = re.compile(r'https://myanimelist\.net/(?:anime|manga)/\d+/[^/"]+/reviews\?[^"]*p=2')
_REVIEW_ID = re.compile(r"reviews\.php\?id=(\d+)")
_LISTING = re.compile(r"^/anime/(\d+)/Copy/reviews$")


def corpus_pages() -> list[str]:
    """The real MAL pages of the shared corpus (empty when it is not there)."""
    return [file.read_text(encoding="utf-8") for file in sorted(CORPUS.glob("*.html"))]


def _copy(templates: list[str], entry: int, page: int, pages_each: int) -> bytes:
    """Copy *page* of chain *entry*: a corpus page, its review ids moved out of every
    other copy's way, its "More Reviews" link pointing at the chain's next copy."""
    index = entry * pages_each + page
    shift = index * 10_000_000
    text = _REVIEW_ID.sub(
        lambda m: f"reviews.php?id={int(m.group(1)) + shift}", templates[index % len(templates)]
    )
    following = f"/anime/{entry}/Copy/reviews?p={page + 2}" if page + 1 < pages_each else "#"
    return _NEXT_LINK.sub(following, text).encode("utf-8")


def _site_process(
    entries: int, pages_each: int, robots: str, answer: float, small: bool, pipe: Connection
) -> None:
    from siteserver import Reply, Site, serve

    if small or not corpus_pages():
        _standin_process(entries, pages_each, robots, pipe)
        return
    templates = corpus_pages()
    bodies = {
        (entry, page): _copy(templates, entry, page, pages_each)
        for entry in range(1, entries + 1)
        for page in range(pages_each)
    }

    class CorpusSite(Site):
        def _answer(self, path: str, headers: object) -> Reply:  # type: ignore[override]
            bare, _, query = path.partition("?")
            match = _LISTING.match(bare)
            if bare == "/robots.txt":
                return Reply.text(robots, "text/plain")
            if match is None:
                return Reply.status(404)
            page = int(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("p", 1))
            body = bodies.get((int(match.group(1)), page - 1))
            return Reply.status(404) if body is None else Reply.html(body, delay=answer)

    with serve(CorpusSite()) as server:
        seeds = [f"{server.base}/anime/{n}/Copy/reviews" for n in range(1, entries + 1)]
        sizes = sorted(len(body) for body in bodies.values())
        pipe.send((seeds, f"corpus pages of {sizes[0] // 1024}-{sizes[-1] // 1024} KB"))
        pipe.recv()  # "stop"
        pipe.send([(item.at, item.path) for item in server.log.all()])


def _standin_process(entries: int, pages_each: int, robots: str, pipe: Connection) -> None:
    from standin import StandinSite, serve_standin

    site = StandinSite(seed=3, shared_text=True)
    site.robots_txt = robots
    for mal_id in range(1, entries + 1):
        reviews = pages_each * site.per_page
        site.add_entry("anime", mal_id, f"Entry_{mal_id}", f"Entry {mal_id}", reviews=reviews)
    with serve_standin(site) as server:
        seeds = [site.entry_url(server.base, "anime", n) for n in range(1, entries + 1)]
        pipe.send((seeds, "SMALL stand-in pages (not real-sized)"))
        pipe.recv()  # "stop"
        pipe.send([(item.at, item.path) for item in server.log.all()])


class SiteProcess:
    """The site in a child process; ``stop()`` returns its request log."""

    small = False

    def __init__(
        self,
        entries: int,
        pages_each: int,
        robots: str = "User-agent: *\n",
        answer: float = 0.0,
    ) -> None:
        context = mp.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_site_process,
            args=(entries, pages_each, robots, answer, self.small, child),
            daemon=True,
        )
        self._process.start()
        self.seeds: list[str]
        self.seeds, self.pages = self._pipe.recv()

    def stop(self) -> list[tuple[float, str]]:
        self._pipe.send("stop")
        log: list[tuple[float, str]] = self._pipe.recv()
        self._process.join(timeout=10)
        return log


def _crawl(
    db_url: str, seeds: list[str], delay: float, profile: str | None = None
) -> tuple[float, int]:
    from scraper.api import Archive
    from scraper.config import CrawlSettings
    from scraper.store.engine import open_engine

    # The schema is created before the clock starts: a one-off cost of a new
    # archive, not part of crawling (a scheduled run finds it there). So are the
    # crawler's modules imported: the process's start-up, about 1 s on a loaded
    # machine, paid by whichever run comes first (it has a figure of its own).
    open_engine(db_url).dispose()
    import scraper.crawl
    import scraper.fetch.client  # noqa: F401

    profiler = cProfile.Profile() if profile else None
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    with Archive(db_url) as archive:
        report = archive.crawl(seeds, settings=CrawlSettings(delay=delay))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    return time.perf_counter() - began, report.pages


def throughput(folder: Path, profile: str | None) -> None:
    site = SiteProcess(entries=10, pages_each=PER_ENTRY_PAGES)
    cpu = time.process_time()
    wall, pages = _crawl(f"sqlite:///{folder / 'throughput.db'}", site.seeds, 0.0, profile)
    cpu = time.process_time() - cpu
    site.stop()
    print(
        f"throughput, --delay 0, SQLite, {site.pages}: {pages} pages in {wall:.2f} s = "
        f"{pages / wall:.0f} pages/s (goal >= 150); crawler CPU {cpu / pages * 1000:.1f} ms/page"
    )


def politeness(folder: Path, delay: float, answer: float) -> None:
    site = SiteProcess(entries=2, pages_each=15, answer=answer)
    folder.mkdir(exist_ok=True)
    wall, pages = _crawl(f"sqlite:///{folder / 'polite.db'}", site.seeds, delay)
    log = site.stop()
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(log)]
    # robots.txt is a request too: it takes its interval like any page.
    bound = len(log) * max(delay, answer)
    # The gaps alone, without the run's start (before robots.txt) and end (the last
    # page's store, closing the run): what each page costs beyond max(d, a).
    mean_gap = sum(gaps) / len(gaps)
    print(
        f"politeness, --delay {delay:g}, answers {answer:g} s, {site.pages}: {pages} pages "
        f"(+ robots.txt) in {wall:.2f} s = {wall / bound:.3f} x requests x max(d, a) "
        f"(goal <= 1.05); smallest gap {min(gaps):.4f} s over {len(gaps)} gaps "
        f"(goal >= {delay:g}); mean gap {mean_gap:.4f} s = "
        f"{mean_gap / max(delay, answer):.3f} x max(d, a)"
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
    parser.add_argument(
        "--answer",
        type=float,
        nargs="+",
        default=[0.0],
        help="answer times a of the politeness runs",
    )
    parser.add_argument("--skip-memory", action="store_true", help="leave out the long run")
    parser.add_argument("--small", action="store_true", help="the stand-in's small pages")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the throughput crawl")
    parser.add_argument("--only", choices=["throughput", "politeness", "memory"])
    args = parser.parse_args()
    SiteProcess.small = args.small
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "throughput"):
            throughput(Path(folder), args.profile)
        for delay in args.delay if args.only in (None, "politeness") else []:
            for answer in args.answer:
                politeness(Path(folder) / f"{delay:g}-{answer:g}", delay, answer)
        if not args.skip_memory and args.only in (None, "memory"):
            memory(Path(folder), args.pages)


if __name__ == "__main__":
    main()
