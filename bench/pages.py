"""Real-sized review pages for the benchmarks: the shared corpus and our fixtures, grown.

Real MyAnimeList pages run to 180–290 KB with 20 long reviews each (about 5 KB of text
per review); our fixtures are 10–24 KB with two or three short ones, so figures measured
on them flatter every per-page cost. This module builds the page set the benchmarks
time:

- ``grow(source, copy)``: a fixture entry-reviews page (current or legacy layout) with
  its review elements repeated to ``REVIEWS_PER_PAGE``, each given several paragraphs of
  our own synthetic text (entities, non-ASCII, ``<br>`` lines and source indentation, as
  real bodies have) and page chrome (menus, links, a script) like a real page's;
- ``renumber(html, copy)``: any page (a grown fixture or a corpus page) with every review
  id and the entry id replaced by ones unique to *copy*, so each copy is a first capture
  of new reviews under its own URL;
- ``page_set(count)``: *count* such pages, round-robin over the sources; with
  ``recapture=True`` the same pages again, each with a small change (a new capture).

Corpus pages are read from ``../shared/corpus/mal/`` when present and never written
anywhere but a temporary folder. ``python bench/pages.py`` prints what the set holds.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "mal"
FIXTURES = REPO / "fixtures" / "mal"
#: Fixture pages that are one entry's reviews, one per layout and entry type.
GROWN_SOURCES = (
    "anime-reviews-current.html",
    "manga-reviews-current.html",
    "anime-reviews-legacy.html",
)
#: Reviews on a grown page (real entry pages show 20).
REVIEWS_PER_PAGE = 20
#: Ids of the copies start here: far above any id our fixtures or the corpus use.
_ID_BASE = 50_000_000

_REVIEW_ID = re.compile(r"reviews\.php\?id=(\d+)")
_ENTRY = re.compile(r"https://myanimelist\.net/(anime|manga)/(\d+)/")
_CURRENT_BODY = re.compile(r'<div class="text">')
_LEGACY_BODY = re.compile(r'<div class="[^"]*\btextReadability\b[^"]*"[^>]*>')
_BODY_OPEN = re.compile(r"<body[^>]*>")

_WORD_LIST = (
    "the crew station harbour signal lantern courier episode season arc pacing score "
    "soundtrack animation character cast finale opening villain mentor rival quiet "
    "storm ferry orbit market winter river engine letter promise memory journey road "
    "slowly honestly clearly rarely always never almost barely quite rather gently "
    "builds carries earns breaks turns lands holds drifts returns lingers stumbles "
    "bright tired warm cold strange familiar patient restless careful loud small vast"
)
_WORDS = tuple(_WORD_LIST.split())
_FLOURISHES = (
    "Black &amp; White",
    "&quot;cargo first&quot;",
    "it&rsquo;s",
    "café",
    "crème brûlée",
    "— and yet —",
    "星",
    "don’t",
    "5/10",
)


class Page(NamedTuple):
    """One benchmark page: a file name and its bytes."""

    name: str
    body: bytes


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 22))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), rng.choice(_FLOURISHES))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....!?")


def _paragraph(rng: random.Random) -> str:
    text = " ".join(_sentence(rng) for _ in range(rng.randint(3, 8)))
    if rng.random() < 0.3:  # source line breaks and indentation inside a paragraph
        cut = text.find(" ", len(text) // 2)
        text = text[:cut] + "\n          \n        " + text[cut + 1 :]
    return text


def review_text(rng: random.Random) -> str:
    """Return a long review body in HTML: paragraphs joined by ``<br />`` lines."""
    paragraphs = [_paragraph(rng) for _ in range(rng.randint(4, 14))]
    return "<br />\n<br />\n".join(paragraphs) + "<br />\n<br />\n"


def _chrome(rng: random.Random) -> str:
    """Return menus, a sidebar and a script like those around a real page's reviews."""
    links = "".join(
        f'<li class="menu-item"><a href="https://myanimelist.net/topanime.php?type={n}" '
        f'class="link ga-click" data-ga-click-type="menu-{n}">{rng.choice(_WORDS).title()} '
        f"{rng.choice(_WORDS)}</a></li>\n"
        for n in range(260)
    )
    sidebar = "".join(
        f'<div class="sidebar-entry"><div class="title"><a href="https://myanimelist.net/'
        f'anime/{n}/">{rng.choice(_WORDS).title()}</a></div><div class="info"><span '
        f'class="score">{rng.randint(5, 9)}.{rng.randint(0, 99):02d}</span></div></div>\n'
        for n in range(1, 80)
    )
    script = "\n".join(
        f"window.MAL.{rng.choice(_WORDS)}_{n} = {{ id: {n}, label: '{rng.choice(_WORDS)}' }};"
        for n in range(180)
    )
    return (
        f'<div id="headerSmall"><ul class="menu">\n{links}</ul></div>\n'
        f'<div id="sidebar">\n{sidebar}</div>\n'
        f'<script type="text/javascript">\n{script}\n</script>\n'
    )


def grow(source: str, copy: int) -> str:
    """Return fixture page *source* grown to a real page's size (same entry and ids).

    Its review elements are repeated to ``REVIEWS_PER_PAGE``, each with a long body of
    our own text put before its own; ``renumber`` then makes every review new.
    """
    from selectolax.lexbor import LexborHTMLParser

    from scraper.sites.mal import page_parts

    rng = random.Random(copy)
    tree = LexborHTMLParser(source)
    parts = page_parts(tree)
    if parts.layout is None or len(parts.reviews) < 2:
        raise ValueError("grow() needs a page with two or more review elements")
    html = tree.html or ""
    blocks = [element.html or "" for element in parts.reviews]
    first = html.find(blocks[0])
    second = html.find(blocks[1], first + len(blocks[0]))
    last = html.rfind(blocks[-1])
    if min(first, second, last) < 0:
        raise ValueError("review elements not found in the serialised page")
    between = html[first + len(blocks[0]) : second]
    body_open = _CURRENT_BODY if parts.layout == "current" else _LEGACY_BODY
    grown = []
    for number in range(REVIEWS_PER_PAGE):
        block = blocks[number % len(blocks)]
        old = _REVIEW_ID.search(block)
        if old is None:
            raise ValueError("a review element without a reviews.php?id= link")
        # A distinct id for each repeat; renumber() later makes it unique per copy.
        block = re.sub(rf"(?<!\d){old.group(1)}(?!\d)", str(900_000 + number), block)
        block = body_open.sub(lambda m: m.group(0) + review_text(rng), block, count=1)
        grown.append(block)
    page = html[:first] + between.join(grown) + html[last + len(blocks[-1]) :]
    return _BODY_OPEN.sub(lambda m: m.group(0) + _chrome(rng), page, count=1)


def renumber(html: str, copy: int) -> str:
    """Return *html* with its entry id and every review id unique to *copy*."""
    base = _ID_BASE + copy * 1_000
    ids = sorted(set(_REVIEW_ID.findall(html)), key=int)
    mapping = {old: str(base + offset) for offset, old in enumerate(ids)}
    if mapping:
        # Where a page names a review: ``id=N``, ``rhelpN``, ``score_N``, ``data-id="N"``
        # (never a bare number in text, such as a day of the month).
        pattern = re.compile(r"(?<=[=_A-Za-z\"])(" + "|".join(map(re.escape, ids)) + r")(?!\d)")
        html = pattern.sub(lambda m: mapping[m.group(1)], html)
    entry = _ENTRY.search(html)
    if entry is not None:
        kind, number = entry.groups()
        html = re.sub(
            rf"(/{kind}/){number}(?=[/\"?])", rf"\g<1>{_ID_BASE + copy}", html
        )  # every link to the page's own entry, the canonical URL included
    return html


def sources() -> list[tuple[str, str]]:
    """Return (name, html) of the pages copies are made from: corpus pages, then grown fixtures."""
    found = []
    if CORPUS.is_dir():
        for path in sorted(CORPUS.glob("*.html")):
            found.append((path.stem, path.read_text(encoding="utf-8")))
    for name in GROWN_SOURCES:
        text = (FIXTURES / name).read_text(encoding="utf-8")
        found.append((f"grown-{Path(name).stem}", grow(text, 0)))
    return found


def page_set(count: int, *, recapture: bool = False, only: str | None = None) -> list[Page]:
    """Return *count* real-sized pages, each a first capture of new reviews.

    With *recapture*, the same pages with a small change each (a second capture of
    the same URL). *only* keeps one set (``corpus`` or ``grown``) or the sources
    whose name starts with it (``anime-1``...).
    """
    chosen = [(name, html) for name, html in sources() if _chosen(name, only)]
    if not chosen:
        raise SystemExit(f"no benchmark source pages{f' named {only}*' if only else ''}")
    pages = []
    for copy in range(count):
        name, html = chosen[copy % len(chosen)]
        text = renumber(html, copy)
        if recapture:
            text = text.replace("</body>", f"<!-- capture {copy} recaptured -->\n</body>", 1)
        pages.append(Page(f"{copy:05d}-{name}.html", text.encode("utf-8")))
    return pages


def _chosen(name: str, only: str | None) -> bool:
    if only is None:
        return True
    if only == "corpus":
        return not name.startswith("grown-")
    return name.startswith(only)


def write(folder: Path, pages: list[Page]) -> None:
    """Save *pages* into *folder* under their names."""
    for page in pages:
        (folder / page.name).write_bytes(page.body)


def main() -> None:
    """Print each source's size and review count as the parser reads it."""
    sys.path.insert(0, str(REPO))
    from scraper.sites import parse_page

    for copy, (name, html) in enumerate(sources()):
        data = renumber(html, copy).encode("utf-8")
        result = parse_page(data)
        text = sum(len(review.body or "") for review in result.reviews)
        print(
            f"{name:40s} {len(data) / 1024:6.0f} KiB  {len(result.reviews):3d} reviews  "
            f"{text / max(1, len(result.reviews)) / 1024:4.1f} KiB text/review  "
            f"problem={result.problem}"
        )


if __name__ == "__main__":
    main()
