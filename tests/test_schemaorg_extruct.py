"""Cross-check: the reviews extruct finds (JSON-LD and microdata) are the reviews we read.

extruct (Scrapy's makers) is not a runtime dependency (it is about 15 times
slower: see bench/bench_schemaorg.py), but it is a well-kept independent
reading of the same markup. For every page of our fixtures and of the shared
corpus, the set of review bodies (rendered and folded) and ratings it finds
must be the set we find. Pages whose JSON-LD only we can read (the broken
blocks we repair) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, SCHEMAORG_PAGES

from scraper.sites.schemaorg import read_reviews
from scraper.sites.schemaorg.text import render_body

extruct = pytest.importorskip("extruct")

FIXTURES = SCHEMAORG_PAGES
REPAIRED_BY_US_ONLY = {"broken-json.html", "critic-rdfa.html"}  # extruct's RDFa is triples
#: Pages where the two readings differ by design, and why.
DIFFERENT_BY_DESIGN = {
    "drupal-rdfa.html": "RDFa only: extruct's RDFa is triples",
    "data-vocabulary-legacy.html": "extruct counts data-vocabulary.org's bare Review as one",
    "hidden-jsonld-traps.html": "extruct reads JSON-LD inside <noscript> and <template>",
    "odd-shapes-jsonld.html": "an HTML-escaped block makes extruct drop all the page's JSON-LD",
}


def _is_review(node: dict[str, Any]) -> bool:
    types = node.get("@type")
    names = types if isinstance(types, list) else [types]
    return any(isinstance(name, str) and name.lower().endswith("review") for name in names)


def _reviews(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if _is_review(item):
                found.append(item)
            stack.extend(item.values())
    return found


def _fold(text: str) -> str:
    """Return the words of a body: two markups of one review differ in quotes and dashes."""
    return re.sub(r"[\W_]+", "", render_body(text).casefold())


def _theirs(html: str) -> set[str]:
    data = extruct.extract(
        html,
        base_url="https://x.example/",
        syntaxes=["json-ld", "microdata"],
        uniform=True,
        errors="ignore",
    )
    bodies = set()
    for review in _reviews(data.get("json-ld", [])) + _reviews(data.get("microdata", [])):
        for key in ("reviewBody", "description", "text"):
            text = review.get(key)
            if isinstance(text, list):
                text = text[0] if text else None
            if isinstance(text, str) and text.strip():
                bodies.add(_fold(text))
                break
    return bodies


def _ours(html: str) -> set[str]:
    return {_fold(record.body) for record in read_reviews(html) if record.body}


def _pages() -> list[Path]:
    pages = [
        page
        for page in sorted(FIXTURES.glob("*.html"))
        if page.name not in REPAIRED_BY_US_ONLY and page.name not in DIFFERENT_BY_DESIGN
    ]
    corpus = CORPUS / "schemaorg"
    return pages + (sorted(corpus.glob("*.html")) if corpus.is_dir() else [])


@pytest.mark.parametrize("page", _pages(), ids=lambda page: page.name)
def test_extruct_finds_the_bodies_we_read(page: Path) -> None:
    html = page.read_bytes().decode("utf-8", "replace")
    theirs = _theirs(html)
    ours = _ours(html)
    # A body cut short in one markup ("…") is the same review as the whole one.
    unmatched = {body for body in theirs - ours if not any(o.startswith(body) for o in ours)}
    assert not unmatched, sorted(unmatched)[:3]
    assert ours <= theirs, sorted(ours - theirs)[:3]
