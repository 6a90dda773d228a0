"""Generate a large synthetic archive, straight into the tables (no parsing, no pages).

Reviews get made-up text (pseudo-words drawn with a Zipf-like law, plus a few real
words whose frequency is known, so searches of every selectivity exist), entries,
users, tags, one observation each and a raw page per 20 reviews. Rows go in with
executemany in large batches inside one transaction per table batch; the full-text
triggers of migration 0002 index the bodies as they go in, as they would in use.

    .venv/bin/python bench/synth.py --db /tmp/synth.db --reviews 1000000
    .venv/bin/python bench/synth.py --db postgresql+psycopg://... --reviews 100000

The same --seed gives the same archive.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scraper.config import database_url
from scraper.schema import tables as t
from scraper.sites.mal.v1 import REACTION_KINDS
from scraper.store.engine import open_engine

BATCH = 20_000
REVIEWS_PER_PAGE = 20
TAGS = ("Recommended", "Mixed Feelings", "Not Recommended", "Preliminary", "Spoiler")
EXTRA_TAGS = ("Funny", "Informative", "Well-written", "Creative")
#: Real words mixed into bodies with known probabilities per review (for searches).
MARKERS = {"lantern": 0.02, "festival": 0.05, "harbour": 0.001, "soundtrack": 0.2}
START = datetime(2008, 1, 1, tzinfo=UTC)
SPAN_DAYS = (datetime(2026, 1, 1, tzinfo=UTC) - START).days
CURRENT_LAYOUT_FROM = datetime(2022, 10, 1, tzinfo=UTC)


def vocabulary(rng: random.Random, size: int = 8000) -> list[str]:
    """Return *size* pronounceable pseudo-words."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        length = rng.randint(1, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(length)))
    return sorted(words)


class Maker:
    """Deterministic row factory for one archive of *n* reviews."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        # Zipf-like weights: a few words are everywhere, most are rare.
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        self.cum = list(_accumulate(self.weights))
        self.entries = max(10, n // 100)
        self.users = max(10, n // 10)
        self.pages = max(1, -(-n // REVIEWS_PER_PAGE))
        self.now = datetime(2026, 1, 15, tzinfo=UTC)

    def body(self) -> str:
        rng = self.rng
        count = rng.randint(40, 220)
        words = rng.choices(self.words, cum_weights=self.cum, k=count)
        for marker, chance in MARKERS.items():
            if rng.random() < chance:
                words.insert(rng.randrange(len(words)), marker)
        if rng.random() < 0.01:
            at = rng.randrange(len(words))
            words[at:at] = ["lantern", "festival"]
        text = " ".join(words)
        return text[:1].upper() + text[1:] + "."

    def entry_rows(self) -> Iterator[dict[str, Any]]:
        for i in range(1, self.entries + 1):
            kind = "anime" if i % 3 else "manga"
            title = f"{self.rng.choice(self.words).title()} {self.rng.choice(self.words).title()}"
            slug = title.replace(" ", "_")
            yield {
                "id": i,
                "site": "myanimelist",
                "key": f"{kind}:{i}",
                "type": kind,
                "name": f"{title} {i}",
                "url": f"https://myanimelist.net/{kind}/{i}/{slug}_{i}",
                "first_seen_at": self.now,
                "last_seen_at": self.now,
            }

    def user_rows(self) -> Iterator[dict[str, Any]]:
        for i in range(1, self.users + 1):
            name = f"{self.rng.choice(self.words).title()}{i}"
            yield {
                "id": i,
                "site": "myanimelist",
                "name": name,
                "url": f"https://myanimelist.net/profile/{name}",
                "image_url": None,
                "name_seen_at": self.now,
            }

    def review_rows(self, start: int, stop: int) -> tuple[list[dict[str, Any]], ...]:
        """Return (reviews, review_tags, observations) rows for review ids [start, stop)."""
        rng = self.rng
        reviews, links, observations = [], [], []
        for review_id in range(start, stop):
            entry = rng.randint(1, self.entries)
            kind = "anime" if entry % 3 else "manga"
            date = START + timedelta(days=rng.randrange(SPAN_DAYS), minutes=rng.randrange(1440))
            current = date >= CURRENT_LAYOUT_FROM
            labels = [rng.choice(TAGS[:3])] if current else []
            preliminary = rng.random() < 0.1
            if preliminary:
                labels.append("Preliminary")
            if current and rng.random() < 0.3:
                labels.append(rng.choice(EXTRA_TAGS))
            reactions = _reactions(rng) if current else dict.fromkeys(REACTION_KINDS)
            body = self.body()
            scores = None if current else _scores(rng, kind)
            any_reaction = any(value is not None for value in reactions.values())
            row = {
                "id": review_id,
                "site": "myanimelist",
                "key": str(review_id),
                "url": f"https://myanimelist.net/reviews.php?id={review_id}",
                "item_id": entry,
                "author_id": rng.randint(1, self.users),
                "item_type": kind,
                "date_text": date.isoformat(),
                "date": date,
                "title": None,
                "rating_value": rng.randint(1, 10),
                "rating_best": 10,
                "rating_worst": 1,
                "body": body,
                "body_sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
                "reactions": reactions if any_reaction else None,
                "source": "mal-current" if current else "mal-legacy",
                "extra": {
                    "is_spoiler": rng.random() < 0.05,
                    "is_preliminary": preliminary,
                    "episodes_watched": rng.randint(1, 12)
                    if preliminary and kind == "anime"
                    else None,
                    "chapters_read": rng.randint(1, 60)
                    if preliminary and kind == "manga"
                    else None,
                    "helpful_count": None if current else rng.randint(0, 2000),
                    "scores": scores,
                    "layout": "current" if current else "legacy",
                },
                "first_seen_at": self.now,
                "last_seen_at": self.now,
                "last_raw_page_id": (review_id - 1) // REVIEWS_PER_PAGE + 1,
            }
            reviews.append(row)
            for position, label in enumerate(labels):
                links.append(
                    {"review_id": review_id, "tag_id": _TAG_IDS[label], "position": position}
                )
            observations.append(_observation(row, labels))
        return reviews, links, observations


_TAG_IDS = {name: i for i, name in enumerate(TAGS + EXTRA_TAGS, start=1)}


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _reactions(rng: random.Random) -> dict[str, int]:
    counts = [int(rng.paretovariate(1.5)) - 1 for _ in REACTION_KINDS[1:]]
    return dict(zip(REACTION_KINDS, [sum(counts), *counts], strict=True))


def _scores(rng: random.Random, kind: str) -> dict[str, int]:
    keys = ("overall", "story", "animation", "sound", "character", "enjoyment")
    if kind == "manga":
        keys = ("overall", "story", "art", "character", "enjoyment")
    return {key: rng.randint(1, 10) for key in keys}


def _observation(row: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    return {
        "review_id": row["id"],
        "raw_page_id": row["last_raw_page_id"],
        "observed_at": row["last_seen_at"],
        "author_name": "",  # filled by the caller (needs the author's name)
        "rating_value": row["rating_value"],
        "reactions": row["reactions"],
        "tags": labels,
        "body_sha256": row["body_sha256"],
        "extra": {key: row["extra"][key] for key in ("helpful_count", "scores")},
    }


def _fixed_rows(conn: sa.Connection, maker: Maker) -> dict[int, str]:
    """Insert tags, entries, users, the raw body and pages; return user id -> name."""
    conn.execute(sa.insert(t.tags), [{"id": i, "name": n} for n, i in _TAG_IDS.items()])
    conn.execute(sa.insert(t.items), list(maker.entry_rows()))
    users = list(maker.user_rows())
    conn.execute(sa.insert(t.authors), users)
    conn.execute(
        sa.insert(t.author_names),
        [
            {
                "author_id": u["id"],
                "name": u["name"],
                "first_seen_at": maker.now,
                "last_seen_at": maker.now,
            }
            for u in users
        ],
    )
    body = b"<html><body>synthetic page</body></html>"
    sha = hashlib.sha256(body).hexdigest()
    conn.execute(
        sa.insert(t.raw_bodies),
        [{"sha256": sha, "size": len(body), "encoding": "none", "data": body}],
    )
    for first in range(1, maker.pages + 1, BATCH):
        conn.execute(
            sa.insert(t.raw_pages),
            [
                {
                    "id": page,
                    "requested_url": f"https://myanimelist.net/synthetic/{page}/reviews",
                    "final_url": f"https://myanimelist.net/synthetic/{page}/reviews",
                    "status": 200,
                    "headers": [["Content-Type", "text/html; charset=utf-8"]],
                    "fetched_at": maker.now,
                    "body_sha256": sha,
                    "source": "synthetic",
                    "review_count": REVIEWS_PER_PAGE,
                }
                for page in range(first, min(first + BATCH, maker.pages + 1))
            ],
        )
    return {u["id"]: u["name"] for u in users}


def generate(url: str, n: int, seed: int = 1, *, quiet: bool = False) -> float:
    """Fill the empty database at *url* with *n* reviews; return the seconds it took."""
    engine = open_engine(url)
    started = time.perf_counter()
    maker = Maker(n, seed)
    try:
        with engine.begin() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(t.reviews)).scalar_one():
                raise SystemExit(f"synth: {url} already holds reviews: give an empty database")
            names = _fixed_rows(conn, maker)
        for first in range(1, n + 1, BATCH):
            reviews, links, observations = maker.review_rows(first, min(first + BATCH, n + 1))
            for row, observation in zip(reviews, observations, strict=True):
                observation["author_name"] = names[row["author_id"]]
            with engine.begin() as conn:
                conn.execute(sa.insert(t.reviews), reviews)
                if links:
                    conn.execute(sa.insert(t.review_tags), links)
                conn.execute(sa.insert(t.review_observations), observations)
            if not quiet:
                done = first + len(reviews) - 1
                rate = done / (time.perf_counter() - started)
                print(f"\r{done:,} reviews ({rate:,.0f}/s)", end="", file=sys.stderr)
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(sa.text("COMMIT"))
                conn.execute(sa.text("ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    if not quiet:
        print(file=sys.stderr)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite path or database URL (empty)")
    parser.add_argument("--reviews", type=int, default=1_000_000, help="how many reviews")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    seconds = generate(database_url(args.db), args.reviews, args.seed)
    print(f"synth: {args.reviews:,} reviews in {seconds:.1f} s ({args.reviews / seconds:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
