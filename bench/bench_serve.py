"""Latency of ``reviews serve`` under 8 concurrent clients on a large synthetic archive.

Starts ``reviews serve --port 0`` as a real subprocess on the archive (made with
bench/synth.py when the file does not exist yet), warms it up, then lets
``--clients`` threads (one keep-alive connection each) send a fixed, seeded mix of
requests: the Jikan API (entry reviews, recent reviews, a user's reviews, top
reviews, ``as_of``), the generic API, and the search page (full text, filters,
facets). Prints p50 / p99 per kind and overall, the throughput, and the server's
resident memory after the warm-up and after each round. Searches draw from the
synthetic text's own words (46 of them, of every frequency), so the per-search
caches hold some and miss others, as a real mix would.

    .venv/bin/python bench/synth.py --db /tmp/synth.db --reviews 1000000   # once, minutes
    .venv/bin/python bench/bench_serve.py --db /tmp/synth.db

Goals: p50 < 20 ms and p99 < 100 ms for the API and the search page; memory flat.
"""

from __future__ import annotations

import argparse
import random
import selectors
import statistics
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import quote, urlsplit

import sqlalchemy as sa

SEARCH_WORDS = ("lantern", "harbour", "festival", "soundtrack festival", '"lantern festival"', "ka")


def _rss_mb(pid: int) -> float:
    """Return the resident memory of *pid* and all its descendants (the workers)."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) / 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += _rss_mb(int(child))
    return total


def _start(db: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "scraper",
        "serve",
        "--db",
        db,
        "--port",
        "0",
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=120):
        process.kill()
        raise SystemExit("reviews serve printed no URL within 120 s")
    line = process.stdout.readline().strip()
    if not line.startswith("http://"):
        process.kill()
        raise SystemExit(
            f"reviews serve failed: {line} {process.stderr.read() if process.stderr else ''}"
        )
    return process, line


def _vocabulary() -> list[str]:
    """bench/synth.py's pseudo-words, most frequent first (its default seed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import vocabulary

    return vocabulary(random.Random(1))


def _ready(url: str, limit: float = 300.0) -> float:
    """Wait until the server's start-up work (list counts, top rankings) is done: the
    lists it makes answer quickly from every worker. Return the seconds waited."""
    address = urlsplit(url)
    started = time.perf_counter()
    paths = [
        f"/v4/{where}?type={kind}" if where == "top/reviews" else f"/v4/reviews/{kind}"
        for where in ("top/reviews", "reviews")
        for kind in ("anime", "manga")
    ]
    quick = 0
    while quick < 16 and time.perf_counter() - started < limit:
        http = HTTPConnection(address.hostname, address.port, timeout=60)  # a new worker may answer
        path = paths[quick % len(paths)]
        begun = time.perf_counter()
        http.request("GET", path)
        http.getresponse().read()
        http.close()
        quick = quick + 1 if time.perf_counter() - begun < 0.2 else 0
    return time.perf_counter() - started


def _mix(db: str, count: int, seed: int) -> list[tuple[str, str]]:
    """Return *count* (kind, path) requests drawn from the archive's own ids and names."""
    engine = sa.create_engine(db if "://" in db else f"sqlite:///{db}")
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT key FROM items WHERE site = 'myanimelist'")).all()
        entries = [tuple(row[0].split(":")) for row in keys]
        names = [row[0] for row in conn.execute(sa.text("SELECT name FROM authors LIMIT 2000"))]
        reviews = [row[0] for row in conn.execute(sa.text("SELECT key FROM reviews LIMIT 2000"))]
    engine.dispose()
    rng = random.Random(seed)
    words = [*SEARCH_WORDS, *rng.sample(_vocabulary()[:2000], 40)]

    def pick() -> tuple[str, str]:
        roll = rng.random()
        kind, mal_id = rng.choice(entries)
        if roll < 0.25:
            page = rng.randint(1, 3)
            return "api", f"/v4/{kind}/{mal_id}/reviews?page={page}&preliminary=true"
        if roll < 0.35:
            return "api", f"/v4/reviews/{rng.choice(['anime', 'manga'])}?page={rng.randint(1, 50)}"
        if roll < 0.42:
            return "api", f"/v4/users/{quote(rng.choice(names))}/reviews"
        if roll < 0.47:
            return "api", f"/v4/top/reviews?type={kind}&page={rng.randint(1, 20)}"
        if roll < 0.52:
            return "api", f"/v4/{kind}/{mal_id}/reviews?as_of=2024-06-01"
        if roll < 0.58:
            word = rng.choice(words)
            return "api", f"/api/reviews?q={quote(word)}&page={rng.randint(1, 3)}"
        if roll < 0.62:
            return "api", f"/api/reviews/myanimelist/{rng.choice(reviews)}"
        if roll < 0.90:
            word = rng.choice(words)
            return "search", f"/reviews?q={quote(word)}&page={rng.randint(1, 3)}"
        filters = rng.choice(
            [
                f"item={kind}:{mal_id}&min_score=7",
                "tag=Recommended&since=2023&sort=-score",
                f"author={quote(rng.choice(names))}",
                "q=festival&min_score=9&type=manga",
            ]
        )
        return "search", f"/reviews?{filters}"

    return [pick() for _ in range(count)]


def _run(url: str, work: list[tuple[str, str]], clients: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"api": [], "search": []}
    routes: dict[str, list[float]] = {}
    lock = threading.Lock()
    failures: list[str] = []

    address = urlsplit(url)

    def client(share: list[tuple[str, str]]) -> None:
        # http.client, not httpx: the clients share the machine's cores with the
        # server, so the lighter the client, the less the figures measure it.
        http = HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            for kind, path in share:
                started = time.perf_counter()
                http.request("GET", path)
                response = http.getresponse()
                response.read()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status != 200:
                        failures.append(f"{response.status} {path}")
                    timings[kind].append(elapsed)
                    routes.setdefault(_route(path), []).append(elapsed)
        finally:
            http.close()

    threads = [threading.Thread(target=client, args=(work[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    ROUTES.append(routes)
    return timings


#: Per-route timings of every timed round (printed with --routes).
ROUTES: list[dict[str, list[float]]] = []


def _route(path: str) -> str:
    """Name a request's route: its path with ids and names replaced, and its parameter names."""
    where, _, query = path.partition("?")
    parts = ["{}" if part.isdigit() or ":" in part else part for part in where.split("/")]
    if where.startswith("/v4/users/"):
        parts[3] = "{name}"
    if where.startswith("/api/reviews/"):
        parts = [*parts[:3], "{site}", "{id}"]
    names = sorted({pair.split("=")[0] for pair in query.split("&") if pair} - {"page"})
    return "/".join(parts) + (f"?{'&'.join(names)}" if names else "")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/review-archiver-synth.db")
    parser.add_argument("--reviews", type=int, default=1_000_000, help="size if made here")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000, help="timed requests in all")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed rounds (memory is read after each)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="server processes (one per core)")
    parser.add_argument("--routes", action="store_true", help="also print figures per route")
    args = parser.parse_args(argv)
    if "://" not in args.db and not Path(args.db).exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from synth import generate

        print(f"making a synthetic archive of {args.reviews:,} reviews in {args.db} ...")
        generate(f"sqlite:///{args.db}", args.reviews)
    process, url = _start(args.db, args.workers)
    try:
        engine = sa.create_engine(args.db if "://" in args.db else f"sqlite:///{args.db}")
        with engine.connect() as conn:
            total = conn.execute(sa.text("SELECT max(id) FROM reviews")).scalar_one()
        engine.dispose()
        print(f"serving {args.db} at {url} (~{total:,} reviews); {args.clients} clients")
        print(f"server start-up work done after {_ready(url):.1f} s")
        _run(url, _mix(args.db, 400, args.seed), args.clients)  # warm-up: caches, pages
        rss = [_rss_mb(process.pid)]
        print(f"after warm-up: server RSS {rss[0]:.0f} MB")
        timings: dict[str, list[float]] = {"api": [], "search": []}
        started = time.perf_counter()
        for round_ in range(args.rounds):
            work = _mix(args.db, args.requests // args.rounds, args.seed + round_ + 1)
            for kind, values in _run(url, work, args.clients).items():
                timings[kind].extend(values)
            rss.append(_rss_mb(process.pid))
            print(f"  round {round_ + 1}: server RSS {rss[-1]:.0f} MB")
        seconds = time.perf_counter() - started
        every = timings["api"] + timings["search"]
        for kind, values in (
            ("API", timings["api"]),
            ("search page", timings["search"]),
            ("all", every),
        ):
            print(
                f"{kind:12} {len(values):5} requests  p50 {_pct(values, 0.5):6.1f} ms  "
                f"p99 {_pct(values, 0.99):6.1f} ms  mean {statistics.fmean(values):6.1f} ms  "
                f"(goal p50 < 20, p99 < 100)"
            )
        print(f"throughput {len(every) / seconds:,.0f} requests/s with {args.clients} clients")
        if args.routes:
            merged: dict[str, list[float]] = {}
            for routes in ROUTES[1:]:  # the warm-up's are left out
                for name, values in routes.items():
                    merged.setdefault(name, []).extend(values)
            for name, values in sorted(merged.items()):
                print(
                    f"  {name:48} {len(values):5}  p50 {_pct(values, 0.5):6.1f}  "
                    f"p99 {_pct(values, 0.99):6.1f} ms"
                )
        print(
            f"server RSS after warm-up {rss[0]:.0f} MB, per round "
            f"{', '.join(f'{m:.0f}' for m in rss[1:])} MB "
            f"(growth {rss[-1] - rss[0]:+.0f} MB)"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
