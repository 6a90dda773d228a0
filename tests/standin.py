"""A stand-in MyAnimeList site for crawl tests, served on 127.0.0.1.

It generates current-layout entry review pages like the ones in ``fixtures/mal``
(``div.review-element`` with ``data-reactions``, tags, hidden text continuation,
permalinks, "More Reviews" chains, canonical links), with its own generated text,
so ``scraper.sites.parse_page`` reads them like real ones. The text is made from a
small word list of ours, seeded per review: the same site always serves the same
pages, byte for byte.

Like MAL, an entry's listing hides spoiler and preliminary reviews unless the URL
asks for them (``spoiler=on&preliminary=on``) and reads newest first with
``sort=newest``. ``add_review`` adds a review between two crawls (what an
incremental job must find).

Use::

    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=45)
    with serve_standin(site) as server:   # a siteserver.Site subclass
        seed = site.entry_url(server.base, "anime", 1)
        ...
        server.log                        # every request the server saw
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from siteserver import Reply, Site, serve
from standin_html import BLOCK_PAGE, StandinEntry, StandinReview, render_listing

__all__ = [
    "BLOCK_PAGE",
    "StandinEntry",
    "StandinReview",
    "StandinServer",
    "StandinSite",
    "age_validators",
    "query",
    "serve_standin",
    "stored_pages",
    "stored_review_ids",
]

# Our own vocabulary for generated review text.
_WORDS = [
    "orbit",
    "lantern",
    "harbor",
    "quiet",
    "engine",
    "river",
    "ledger",
    "copper",
    "signal",
    "meadow",
    "tunnel",
    "static",
    "canvas",
    "ember",
    "thread",
    "glacier",
    "compass",
    "velvet",
    "archive",
    "rhythm",
    "pylon",
    "saltwater",
    "cascade",
    "monsoon",
    "lattice",
    "beacon",
    "tempo",
    "quarry",
    "nebula",
    "garden",
    "cipher",
]

PER_PAGE = 20


class StandinSite:
    """Generated entries with reviews, and the pages that list them."""

    def __init__(
        self, *, seed: int = 7, per_page: int = PER_PAGE, shared_text: bool = False
    ) -> None:
        self.per_page = per_page
        #: All reviews reuse the first review's text: a site of 10,000 pages stays small.
        self.shared_text = shared_text
        self._text: tuple[str, ...] | None = None
        self.entries: dict[tuple[str, int], StandinEntry] = {}
        self.robots_txt = "User-agent: *\nDisallow: /forbidden/\n"
        self._rng = random.Random(seed)
        self._next_id = 1000
        self._clock = datetime(2023, 1, 5, 9, 30, tzinfo=UTC)
        #: Grows with every change of content (cached pages of older versions are stale).
        self.version = 0

    # --- content ------------------------------------------------------------------

    def add_entry(
        self, kind: str, mal_id: int, slug: str, title: str, *, reviews: int
    ) -> StandinEntry:
        """Add an entry with *reviews* generated reviews; return it."""
        entry = StandinEntry(kind, mal_id, slug, title)
        self.entries[(kind, mal_id)] = entry
        for _ in range(reviews):
            self.add_review(kind, mal_id)
        return entry

    def add_review(self, kind: str, mal_id: int, **overrides: object) -> StandinReview:
        """Add one new review (dated after every other) to an entry; return it."""
        entry = self.entries[(kind, mal_id)]
        rng = self._rng
        self._next_id += rng.randint(1, 40)
        self._clock += timedelta(hours=rng.randint(1, 90), minutes=rng.randint(0, 59))
        values: dict[str, object] = {
            "id": self._next_id,
            "kind": kind,
            "entry_id": mal_id,
            "username": f"{rng.choice(_WORDS).title()}{rng.randint(1, 999)}",
            "date": self._clock,
            "score": rng.randint(1, 10),
            "verdict": rng.choice(["recommended", "mixed-feelings", "not-recommended"]),
            "spoiler": rng.random() < 0.15,
            "preliminary": rng.randint(1, 11) if rng.random() < 0.15 else None,
            "reactions": tuple(rng.randint(0, 40) for _ in range(7)),
            "paragraphs": self._paragraphs(),
        }
        values.update(overrides)
        review = StandinReview(**values)  # type: ignore[arg-type]
        entry.reviews.append(review)
        self.version += 1
        return review

    def _paragraphs(self) -> tuple[str, ...]:
        if self.shared_text and self._text is not None:
            return self._text
        text = tuple(_paragraph(self._rng) for _ in range(self._rng.randint(2, 5)))
        self._text = self._text or text
        return text

    def review_ids(self, kind: str | None = None, mal_id: int | None = None) -> set[int]:
        """Return the ids of every review (of one entry when given)."""
        return {
            review.id
            for (entry_kind, entry_id), entry in self.entries.items()
            if (kind is None or kind == entry_kind) and (mal_id is None or mal_id == entry_id)
            for review in entry.reviews
        }

    # --- addresses ----------------------------------------------------------------

    def entry_url(self, base: str, kind: str, mal_id: int, **query: str) -> str:
        """Return an entry's review listing on the server at *base* (query optional)."""
        path = self.entries[(kind, mal_id)].path
        return f"{base}{path}" + (f"?{urlencode(query)}" if query else "")

    def chain_length(self, kind: str, mal_id: int) -> int:
        """Return how many pages the entry's full listing (nothing hidden) has."""
        count = len(self.entries[(kind, mal_id)].reviews)
        return max(1, -(-count // self.per_page))

    # --- pages --------------------------------------------------------------------

    def find_entry(self, path: str) -> StandinEntry | None:
        """Return the entry whose review listing lives at *path*, or None."""
        for entry in self.entries.values():
            if path.rstrip("/") == entry.path:
                return entry
        return None

    def listing(self, path: str, query: str) -> str | None:
        """Return the HTML of the listing at *path*?*query*, or None when there is none."""
        entry = self.find_entry(path)
        if entry is None:
            return None
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        page = int(params.get("p", "1")) if params.get("p", "1").isdigit() else 1
        shown = [
            review
            for review in entry.reviews
            if (params.get("spoiler") == "on" or not review.spoiler)
            and (params.get("preliminary") == "on" or review.preliminary is None)
        ]
        if params.get("sort") == "newest":
            shown.sort(key=lambda review: review.date, reverse=True)
        else:  # "most voted", MAL's default
            shown.sort(key=lambda review: (-sum(review.reactions), review.id))
        start = (page - 1) * self.per_page
        chunk = shown[start : start + self.per_page]
        next_query = None
        if start + self.per_page < len(shown):
            next_query = {
                "sort": params.get("sort", "mostvoted"),
                "filter_check": "",
                "filter_hide": "",
                "preliminary": params.get("preliminary", "off"),
                "spoiler": params.get("spoiler", "off"),
                "p": str(page + 1),
            }
        return render_listing(entry, chunk, next_query)


def _paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 5)):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 14))]
        sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "!", "?"]))
    return " ".join(sentences)


class StandinServer(Site):
    """A ``siteserver.Site`` that serves a ``StandinSite``'s listings (with ETags).

    Scripted routes (``route``/``sequence``/``page``) still win over generated
    pages; ``inject(path, *replies)`` plays one-off replies (a 429, a block page)
    to the next requests for *path* (with or without its query) before the real
    page is served again.
    """

    def __init__(self, standin: StandinSite) -> None:
        super().__init__()
        self.standin = standin
        self._injected: dict[str, deque[Reply]] = {}
        self._pages: dict[tuple[int, str, str], tuple[bytes, str]] = {}
        #: Seconds each generated page takes to answer (a far or busy site).
        self.answer_delay = 0.0

    def inject(self, path: str, *replies: Reply) -> None:
        """Answer the next ``len(replies)`` requests for *path* with *replies*."""
        with self._lock:
            self._injected.setdefault(path, deque()).extend(replies)

    def _answer(self, path: str, headers: Mapping[str, str]) -> Reply:
        bare, _, query = path.partition("?")
        with self._lock:
            for key in (path, bare):
                queue = self._injected.get(key)
                if queue:
                    return queue.popleft()
        if self._lookup(path) is not None:
            return super()._answer(path, headers)
        rendered = self._render(bare, query)
        if rendered is None:
            return super()._answer(path, headers)
        body, etag = rendered
        if headers.get("if-none-match") == etag:
            return Reply(code=304, headers=(("ETag", etag),), delay=self.answer_delay)
        return Reply.html(body, ETag=etag, delay=self.answer_delay)

    def _render(self, path: str, query: str) -> tuple[bytes, str] | None:
        # Pages are cached until the content changes, so the site answers as fast as a
        # real one's cache would and benchmarks time the crawler, not the generator.
        key = (self.standin.version, path, query)
        with self._lock:
            cached = self._pages.get(key)
        if cached is not None:
            return cached
        page = self.standin.listing(path, query)
        if page is None:
            return None
        body = page.encode("utf-8")
        rendered = (body, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
        with self._lock:
            if len(self._pages) > 50_000:
                self._pages.clear()
            self._pages[key] = rendered
        return rendered


@contextmanager
def serve_standin(standin: StandinSite, *, robots: bool = True) -> Iterator[StandinServer]:
    """Run *standin* on 127.0.0.1 until the block ends (with its robots.txt)."""
    server = StandinServer(standin)
    if robots:
        server.robots(standin.robots_txt)
    with serve(server) as running:
        assert isinstance(running, StandinServer)
        yield running


# --- checking what a crawl of the stand-in stored ---------------------------------


def query(db_url: str, sql: str) -> list[Any]:
    """Return the rows of one SQL statement run on *db_url* (a fresh engine, closed)."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def stored_pages(db_url: str) -> dict[str, int]:
    """Return requested URL → how many raw pages were stored for it."""
    rows = query(db_url, "SELECT requested_url, COUNT(*) FROM raw_pages GROUP BY requested_url")
    return {str(url): int(count) for url, count in rows}


def stored_review_ids(db_url: str) -> set[int]:
    """Return the ids of the reviews in the archive at *db_url*."""
    return {int(row[0]) for row in query(db_url, "SELECT key FROM reviews")}


def age_validators(db_url: str, age: timedelta) -> None:
    """Make every page stored at *db_url* look last checked *age* ago."""
    import sqlalchemy as sa

    from scraper.schema.tables import url_validators

    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(url_validators).values(last_checked_at=datetime.now(UTC) - age))
    finally:
        engine.dispose()
