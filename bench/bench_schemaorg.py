"""How fast is the schema.org reader? ms/page against the bare lexbor parse, and extruct.

Pages: the shared corpus's real schema.org pages (when present) and our own
fixtures under fixtures/schemaorg/, each grown to a real page's size (about
300 KB) with filler markup of the kind real pages carry (navigation, scripts,
paragraphs without markup), so that the parse is not measured on toy pages.

Three programs over the same pages, in this process, each page read from
memory (no disk in the timings), by CPU time, best of ``--runs``:

1. the bare ``selectolax.lexbor`` parse of the page plus one CSS query: the
   floor any lexbor-based reader stands on;
2. the reader: the same parse, then ``scraper.sites.schemaorg.read_reviews``
   (JSON-LD, microdata, RDFa, records built);
3. extruct alone (``extruct.extract`` of JSON-LD, microdata and RDFa), when
   it is installed: what a library-based reader would cost before building a
   single record.

Goal (issue 9): (2) ≤ 2.5 × (1), and (2) faster than (3). The last lines time
synthetic pages: one of 500 KB with 5 reviews (the parse dominates), and a
shop page with 200 reviews in JSON-LD only and marked up twice, where the
cost per review (about 25-40 µs in Python), not the parse, is what is measured.

    .venv/bin/python bench/bench_schemaorg.py [--runs 5] [--repeat 3]

``--check`` prints instead how right the reader is: recall, precision and
field accuracy in the contract's check form on the corpus and the fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from selectolax.lexbor import LexborHTMLParser  # noqa: E402

from scraper.sites._decode import decode_html  # noqa: E402
from scraper.sites.schemaorg import read_reviews  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "schemaorg"
FIXTURES = REPO / "fixtures" / "schemaorg"
#: What a fixture is grown to: the corpus pages are 230-680 KB.
REAL_SIZE = 300_000

FILLER = (
    '<nav class="menu"><ul>'
    + "".join(f'<li class="item"><a href="/category/{n}/">Category {n}</a></li>' for n in range(40))
    + "</ul></nav>"
    + "<script>window.dataLayer = window.dataLayer || []; function gtag(){{}}</script>"
    + "".join(
        f'<div class="post-teaser"><h3><a href="/post-{n}/">A post about soup {n}</a></h3>'
        f"<p>Soup is warm &amp; good. This paragraph has no markup that matters {n}.</p></div>"
        for n in range(30)
    )
)


def grown(html: str) -> str:
    """Return *html* with filler before ``</body>`` until it is about ``REAL_SIZE`` long."""
    copies = max(0, (REAL_SIZE - len(html)) // len(FILLER))
    filler = FILLER * copies
    at = html.lower().rfind("</body>")
    return html + filler if at < 0 else html[:at] + filler + html[at:]


def pages() -> dict[str, list[str]]:
    """Return the pages to time, by group: the real corpus, our fixtures grown to size."""
    groups: dict[str, list[str]] = {"corpus": [], "fixtures (grown)": []}
    if CORPUS.is_dir():
        for path in sorted(CORPUS.glob("*.html")):
            groups["corpus"].append(path.read_bytes().decode("utf-8", "replace"))
    for path in sorted(FIXTURES.glob("*.html")):
        groups["fixtures (grown)"].append(grown(decode_html(path.read_bytes())))
    groups["all"] = groups["corpus"] + groups["fixtures (grown)"]
    if not groups["all"]:
        raise SystemExit("no pages to benchmark")
    groups["one 500 KB page with 5 reviews"] = [huge_page(5)]
    groups["one shop page, 200 reviews in JSON-LD and again in microdata"] = [many_reviews(200)]
    groups["one shop page, 200 reviews in JSON-LD only"] = [many_reviews(200, microdata=False)]
    return groups


def huge_page(count: int) -> str:
    """Return a page of about 500 KB holding *count* reviews: the parse, not the reviews."""
    page = many_reviews(count, microdata=False)
    copies = max(0, (500_000 - len(page)) // len(FILLER))
    at = page.rfind("</body>")
    return page[:at] + FILLER * copies + page[at:]


def many_reviews(count: int, microdata: bool = True) -> str:
    """Return a page of *count* reviews marked up twice (or in JSON-LD only): the
    per-review cost, not the parse."""
    reviews = [
        {
            "@type": "Review",
            "author": {"@type": "Person", "name": f"Reader {n}"},
            "datePublished": f"2024-01-{n % 28 + 1:02d}",
            "reviewRating": {"@type": "Rating", "ratingValue": str(n % 5 + 1)},
            "reviewBody": f"Review {n}: it&#039;s sturdy, it arrived quickly. " * 4,
        }
        for n in range(count)
    ]
    block = json.dumps({"@context": "https://schema.org", "@type": "Product", "review": reviews})
    items = "".join(
        '<div itemprop="review" itemscope itemtype="https://schema.org/Review">'
        f'<span itemprop="author">Reader {n}</span>'
        f'<meta itemprop="datePublished" content="{review["datePublished"]}">'
        f'<p itemprop="reviewBody">{review["reviewBody"]}</p></div>'
        for n, review in enumerate(reviews)
        if microdata
    )
    return grown(
        f'<html><head><script type="application/ld+json">{block}</script></head><body>'
        f'<div itemscope itemtype="https://schema.org/Product">{items}</div></body></html>'
    )


def bare(html: str) -> int:
    return len(LexborHTMLParser(html).css('script[type="application/ld+json"]'))


def reader(html: str) -> int:
    return len(read_reviews(html, "https://example.org/page/"))


def extruct_alone() -> Callable[[str], int] | None:
    try:
        import extruct
    except ImportError:
        return None

    def run(html: str) -> int:
        data = extruct.extract(
            html,
            base_url="https://example.org/page/",
            syntaxes=["json-ld", "microdata", "rdfa"],
            uniform=True,
            errors="ignore",
        )
        return sum(len(items) for items in data.values())

    return run


def timed(program: Callable[[str], int], htmls: list[str], runs: int, repeat: int) -> float:
    """Return the best CPU ms/page of *program* over *runs* runs of *repeat* passes."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(repeat):
            for html in htmls:
                program(html)
        elapsed = time.process_time() - start
        best = min(best, elapsed * 1000 / (repeat * len(htmls)))
    return best


FIELDS = ("item", "author", "date", "rating", "title", "body")


def check_form(record: dict[str, Any]) -> dict[str, Any]:
    """Return a record (or an expected line) in the contract's check form."""
    rating = record["rating"]
    if isinstance(rating, dict):
        rating = (rating["value"] - rating["worst"]) / (rating["best"] - rating["worst"])
    author = record["author"]
    return {
        "item": {"name": record["item"]["name"], "type": record["item"]["type"]},
        "author": author["name"] if isinstance(author, dict) else author,
        "date": record["date"][:10] if record["date"] else None,
        "rating": None if rating is None else round(rating, 6),
        "title": record["title"],
        "body": " ".join(record["body"].split()) if record["body"] else None,
    }


def _agreeing(mine: dict[str, Any], theirs: dict[str, Any]) -> int:
    return sum(mine[field] == theirs[field] for field in FIELDS)


def check(label: str, folder: Path) -> None:
    """Print recall, precision and field accuracy of the reader on *folder*'s pages,
    judged in the contract's check form against each page's ``.expected.jsonl``."""
    found = wanted = matched = 0
    right = dict.fromkeys(FIELDS, 0)
    empty_with_records = 0
    pages = sorted(folder.glob("*.html"))
    for path in pages:
        lines = path.with_name(path.name.replace(".html", ".expected.jsonl")).read_text("utf-8")
        want = [check_form(json.loads(line)) for line in lines.splitlines() if line.strip()]
        got = [check_form(record.to_dict()) for record in read_reviews(path.read_bytes())]
        found, wanted = found + len(got), wanted + len(want)
        empty_with_records += bool(got and not want)
        for record in want:  # each expected review against its closest unclaimed record
            best = max(got, key=lambda mine: _agreeing(mine, record), default=None)
            if best is None or _agreeing(best, record) < 3:
                continue
            got.remove(best)
            matched += 1
            for field in FIELDS:
                right[field] += best[field] == record[field]
    fields = " ".join(f"{field} {right[field] / max(1, matched):.1%}" for field in FIELDS)
    print(
        f"{label}: {len(pages)} pages, {wanted} reviews | recall {matched / max(1, wanted):.1%}"
        f" precision {matched / max(1, found):.1%} | {fields}"
        f" | review-less pages with records: {empty_with_records}"
    )


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=5)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument(
        "--check", action="store_true", help="print recall/precision/field accuracy instead"
    )
    args = options.parse_args()
    if args.check:
        for label, folder in (("corpus", CORPUS), ("fixtures", FIXTURES)):
            if folder.is_dir():
                check(label, folder)
        return
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    groups = pages()
    extruct_run = extruct_alone()
    for label, htmls in groups.items():
        if not htmls:
            continue
        for html in htmls:  # warm up: compile regexes, fill caches
            reader(html)
        size = sum(len(html) for html in htmls) / len(htmls) / 1000
        floor = timed(bare, htmls, args.runs, args.repeat)
        ours = timed(reader, htmls, args.runs, args.repeat)
        line = (
            f"{label}: {len(htmls)} pages, {size:.0f} KB avg | bare lexbor {floor:.2f} ms/page"
            f" | reader {ours:.2f} ms/page = {ours / floor:.2f}x bare (goal <= 2.5x)"
        )
        if extruct_run is not None:
            theirs = timed(extruct_run, htmls, max(1, args.runs // 2), 1)
            line += f" | extruct alone {theirs:.2f} ms/page (reader {theirs / ours:.1f}x faster)"
        print(line)
    if extruct_run is None:
        print("extruct is not installed: pip install extruct to compare")


if __name__ == "__main__":
    main()
