"""How fast is ``reviews parse`` on real-sized pages? Whole processes, start-up included.

The page set comes from ``bench/pages.py``: the shared corpus pages (when present)
and our fixtures grown to a real page's size (180–300 KB, 20 long reviews), each
copy under its own entry and review ids, so every review is new. Two sets are
timed apart: first captures, and re-captures (the same pages with a small change).
For each, three programs run over a temporary folder of the pages:

1. ``reviews parse DIR`` (records to /dev/null), with ``--jobs 1`` (one process:
   its CPU time is the cost) and with one worker per CPU (the wall time a user
   with idle cores sees);
2. a bare ``selectolax.lexbor`` parse of every page plus one CSS query: the
   floor any selectolax-based parser stands on;
3. a BeautifulSoup(html.parser) extractor of the same fields, on a subset of
   the pages (it is slow), to compare per page.

Prints ms/page and pages/s for each, by wall clock and by CPU time (the latter
is what counts on a shared machine), and the ratios. The machine's load average
is printed: on a shared machine the wall figures are only as good as it allows.
Every program runs with its bytecode cached (in a temporary folder, even when
PYTHONDONTWRITEBYTECODE is set), as an installed program has it: each is run
once untimed first, to compile it.
Goals: (1) <= 2.0 x (2) by CPU time, and (1) at least 25 x faster per page than (3).

    .venv/bin/python bench/bench_parse.py [--pages 300] [--bs4-pages 40] [--runs 3]
        [--only grown|anime-1|...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from pages import page_set, write  # noqa: E402  (bench/ is not a package)

BARE = """
import sys
from pathlib import Path
from selectolax.lexbor import LexborHTMLParser
count = 0
for path in sorted(Path(sys.argv[1]).glob("*.html")):
    tree = LexborHTMLParser(path.read_bytes().decode("utf-8", "replace"))
    count += len(tree.css("div.review-element, div.borderDark"))
print(count)
"""


def bs4_extract(paths: list[str]) -> int:
    """Read the contract's main fields with BeautifulSoup(html.parser); return the count."""
    from bs4 import BeautifulSoup

    records: list[dict[str, Any]] = []
    for path in paths:
        soup = BeautifulSoup(Path(path).read_bytes().decode("utf-8", "replace"), "html.parser")
        for element in soup.select("div.review-element"):
            date = element.select_one("div.update_at")
            user = element.select_one("div.username a")
            score = element.select_one("div.rating span.num")
            text = element.select_one("div.text")
            permalink = element.select_one("div.open a")
            for marker in text.select("span.js-visible") if text else []:
                marker.decompose()
            records.append(
                {
                    "id": permalink["href"] if permalink else None,
                    "user": user.get_text(strip=True) if user else None,
                    "date": (date.get_text(strip=True), date.get("title")) if date else None,
                    "score": score.get_text(strip=True) if score else None,
                    "tags": [
                        t.find(string=True, recursive=False) for t in element.select("div.tag")
                    ],
                    "reactions": json.loads(element.get("data-reactions", "null")),
                    "review": " ".join(text.get_text(" ").split()) if text else "",
                }
            )
        for box in soup.select("div.borderDark"):
            body = box.select_one("div.textReadability")
            if body is None:
                continue
            for chrome in body.select('div[id^="score"], div[id^="revhelp_output_"], a'):
                chrome.decompose()
            meta = box.select_one("div.mb8")
            overall = re.search(r"Overall Rating\D*(\d+)", meta.get_text(" ") if meta else "")
            helpful = box.select_one('span[id^="rhelp"]')
            records.append(
                {
                    "score": overall.group(1) if overall else None,
                    "helpful": helpful.get_text(strip=True) if helpful else None,
                    "review": " ".join(body.get_text(" ").split()),
                }
            )
    return len(records)


#: The environment every timed program runs in (see the module docstring).
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def best_of(runs: int, command: list[str]) -> tuple[float, float]:
    """Return the fastest (wall, CPU) seconds of *runs* runs of *command*.

    CPU time (user + system of the child) is printed beside wall time because
    the machine may be shared: it is what the program costs, whatever else runs.
    """
    walls, cpus = [], []
    subprocess.run(  # untimed: writes the bytecode the timed runs read
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV
    )
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def _time_set(label: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Time the programs over the pages in *folder*; return their (wall, CPU) by name."""
    pages = sorted(folder.glob("*.html"))
    size = sum(page.stat().st_size for page in pages) / len(pages)
    cpus = os.cpu_count() or 1
    parse = [sys.executable, "-m", "scraper", "parse"]
    times = {
        "reviews parse --jobs 1": best_of(args.runs, [*parse, "--jobs", "1", str(folder)]),
        f"reviews parse --jobs {cpus}": best_of(
            args.runs, [*parse, "--jobs", str(cpus), str(folder)]
        ),
        "bare selectolax + 1 CSS": best_of(args.runs, [sys.executable, "-c", BARE, str(folder)]),
    }
    print(f"{label}: {len(pages)} pages, {size / 1024:.0f} KiB average")
    heading = ("wall s", "ms/page", "pages/s", "CPU s", "ms/page")
    print(f"  {'':26s} " + " ".join(f"{word:>8s}" for word in heading))
    for name, (wall, cpu) in times.items():
        print(
            f"  {name:26s} {wall:8.3f} {wall * 1000 / len(pages):8.2f} {len(pages) / wall:8.1f} "
            f"{cpu:8.3f} {cpu * 1000 / len(pages):8.2f}"
        )
    return {"pages": len(pages), **times}


def main() -> None:
    """Run the benchmark and print its figures."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pages", type=int, default=300)
    options.add_argument("--bs4-pages", type=int, default=40)
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--only", default=None, help="sources whose name starts with this")
    options.add_argument("--bs4-worker", nargs="*", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.bs4_worker is not None:
        print(bs4_extract(args.bs4_worker))
        return
    results = {}
    with tempfile.TemporaryDirectory() as temporary:
        ENV["PYTHONPYCACHEPREFIX"] = str(Path(temporary) / "bytecode")
        for label, recapture in (("first captures", False), ("re-captures", True)):
            folder = Path(temporary) / label.replace(" ", "-")
            folder.mkdir()
            write(folder, page_set(args.pages, recapture=recapture, only=args.only))
            results[label] = _time_set(label, folder, args)
            if not recapture:
                subset = [str(page) for page in sorted(folder.glob("*.html"))[: args.bs4_pages]]
                # Fewer runs of the slow extractor; still its best of several.
                soup = best_of(
                    min(args.runs, 3), [sys.executable, __file__, "--bs4-worker", *subset]
                )
                print(
                    f"  {'bs4 html.parser':26s} {soup[0]:8.3f} "
                    f"{soup[0] * 1000 / len(subset):8.2f} {len(subset) / soup[0]:8.1f} "
                    f"{soup[1]:8.3f} {soup[1] * 1000 / len(subset):8.2f}  ({len(subset)} pages)"
                )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPUs: {os.cpu_count()}, load average at the end: {load:.2f}")
    for label, times in results.items():
        bare = times["bare selectolax + 1 CSS"]
        for name, run in times.items():
            if not name.startswith("reviews parse"):
                continue
            for index, unit in ((0, "wall"), (1, "CPU")):
                ratio = run[index] / bare[index]
                speedup = (soup[index] / len(subset)) / (run[index] / times["pages"])
                print(
                    f"{label:15s} {name[14:]:9s} {unit:4s}: reviews parse / bare = "
                    f"{ratio:.2f}x (goal <= 2.0x); bs4 / reviews parse = {speedup:.1f}x "
                    "per page (goal >= 25x)"
                )


if __name__ == "__main__":
    main()
