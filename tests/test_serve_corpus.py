"""``reviews serve`` on real MyAnimeList captures (../shared/corpus, never committed;
skipped when absent): every entry's reviews come back page by page exactly as
stored, valid against Jikan's own schema and read by jikanpy-v4; a review seen in
two captures lists both; a search finds every review holding the word."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from conftest import CORPUS, CORPUS_ENV
from test_serve_support import (
    CORPUS_CAPTURES,
    Server,
    chromium,
    jikan_openapi,
    json_schema,
    navigate_by,
    serving,
)

from scraper.cli import main

#: The module imports the corpus and starts a ``reviews serve`` process over it.
pytestmark = pytest.mark.slow


def _corpus_server(
    factory: pytest.TempPathFactory, folder: str, imports: list[tuple[str, str]]
) -> Iterator[Server]:
    """Import (file name, capture time) pairs of ../shared/corpus/*folder* ("" for the
    whole folder) into a new archive and serve it; skip when the corpus is absent."""
    corpus = CORPUS / folder
    if not corpus.is_dir():
        pytest.skip(f"no shared corpus at {corpus} (set ${CORPUS_ENV} to its folder)")
    url = f"sqlite:///{factory.mktemp(folder) / 'reviews.db'}"
    for name, when in imports:
        assert main(["import", str(corpus / name), "--db", url, "--fetched-at", when]) == 0
    with serving(url) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _corpus_server(tmp_path_factory, "mal", list(CORPUS_CAPTURES))


def _export(db: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "export", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _pages(server: Server, path: str) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        body = server.json(path, page=page, preliminary="true", spoilers="true")
        found.append(body)
        if not body["pagination"]["has_next_page"]:
            return found
        page += 1


@pytest.mark.parametrize(("kind", "mal_id"), [("anime", 1), ("manga", 1)])
def test_every_entry_comes_back_as_stored_and_valid(server: Server, kind: str, mal_id: int) -> None:
    pages = _pages(server, f"/v4/{kind}/{mal_id}/reviews")
    served = [review for body in pages for review in body["data"]]
    stored = _export(server.db_url, "--entry", f"{kind}:{mal_id}", "--sort=-date")
    assert [r["mal_id"] for r in served] == [r["mal_id"] for r in stored]
    for review, record in zip(served, stored, strict=True):
        for key in (
            "url",
            "type",
            "date",
            "review",
            "score",
            "tags",
            "is_spoiler",
            "is_preliminary",
        ):
            assert review[key] == record[key], key
        assert review["reactions"] == (record["reactions"] or {})
        progress = "episodes_watched" if kind == "anime" else "chapters_read"
        assert review.get(progress) == record[progress]
        assert (progress in review) == (record[progress] is not None)
        assert review["user"]["username"] == record["user"]["username"]
        assert review["user"]["images"]["jpg"]["image_url"] == record["user"]["image_url"]
    spec = jikan_openapi()
    if spec is not None:
        schema = json_schema(spec, spec["components"]["schemas"][f"{kind}_reviews"])
        for body in pages:
            jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)


def test_jikanpy_reads_the_real_reviews(server: Server) -> None:
    from jikanpy import Jikan

    jikan = Jikan(selected_base=f"{server.url}/v4")
    for kind, read in (("anime", jikan.anime), ("manga", jikan.manga)):
        served, page = [], 1
        while True:
            body = read(1, extension="reviews", page=page)
            served += [review["mal_id"] for review in body["data"]]
            if not body["pagination"]["has_next_page"]:
                break
            page += 1
        stored = _export(server.db_url, "--entry", f"{kind}:1", "--sort=-date")
        shown = [r["mal_id"] for r in stored if not (r["is_preliminary"] or r["is_spoiler"])]
        assert served == shown and served


def test_a_review_in_two_captures_lists_both(server: Server) -> None:
    history = server.json("/v4/reviews/7406/history")["data"]
    assert [c["observed_at"][:10] for c in history] == ["2022-06-15", "2022-10-15"]
    page = server.get("/reviews/myanimelist/7406").text
    assert "2022-06-15" in page and "2022-10-15" in page


def test_a_search_lists_every_review_holding_the_word(server: Server) -> None:
    records = _export(server.db_url)
    word = "masterpiece"
    holding = {
        r["mal_id"]
        for r in records
        if re.search(rf"(?<![^\W_]){word}(?![^\W_])", r["review"], re.I)
    }
    assert holding
    found = server.json("/api/reviews", q=word, per_page=100)["data"]
    assert {int(r["id"]) for r in found} == holding
    page = server.get("/reviews", q=word).text
    assert f'<strong id="total">{len(holding)}</strong>' in page


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from chromium(tmp_path_factory)


def test_in_chromium_a_search_and_a_review_history(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    records = _export(server.db_url)
    word = "animation"
    holding = {
        str(r["mal_id"])
        for r in records
        if re.search(rf"(?<![^\W_]){word}(?![^\W_])", r["review"], re.I)
    }
    assert holding
    browser.get(f"{server.url}/reviews?q={word}&page=1")
    shown: set[str] = set()
    while True:
        links = browser.find_elements(By.CSS_SELECTOR, "#results article.hit .meta a:first-child")
        shown |= {link.text.removeprefix("review ") for link in links}
        following = browser.find_elements(By.CSS_SELECTOR, "a[rel=next]")
        if not following:
            break
        navigate_by(browser, following[0])
    assert shown == holding
    browser.get(f"{server.url}/reviews/myanimelist/7406")
    dates = [e.text[:10] for e in browser.find_elements(By.CSS_SELECTOR, ".captured-at")]
    assert dates == ["2022-06-15", "2022-10-15"]


@pytest.fixture(scope="module")
def schemaorg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _corpus_server(tmp_path_factory, "schemaorg", [("", "2026-02-01")])


def test_every_real_schemaorg_review_is_served(schemaorg_server: Server) -> None:
    from urllib.parse import quote

    server = schemaorg_server
    stored = _export(server.db_url)
    served = server.json("/api/reviews", per_page=100)["data"]
    assert len(served) == len(stored) > 0 and len({r["site"] for r in served}) > 1
    for record in served:
        site, key = quote(record["site"], safe=""), quote(record["id"], safe="")
        one = server.json(f"/api/reviews/{site}/{key}")
        assert {k: one[k] for k in record} == record
        page = server.get(f"/reviews/{site}/{key}")
        assert page.status_code == 200 and "<script" not in page.text
        links = re.findall(r'href="(/(?:items|authors)/[^"]+)"', page.text)
        assert links and all(server.get(link).status_code == 200 for link in links)
    assert "mal_id" not in served[0]
    assert server.json("/v4/reviews/anime")["data"] == []
