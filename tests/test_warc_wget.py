"""A WARC made by real wget (``--warc-file``) of a local site imports with exit 0.

The site (tests/siteserver.py) has robots.txt, review pages, a page that is not a
review page, an image, a redirect to a review page and links that answer 404:
what a crawl of anyone's site holds. Only the review pages are stored; everything
else is counted as skipped, by reason.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from siteserver import Reply, Site, serve
from test_query_pages import PAGES, render_page
from test_warc import records

from scraper.cli import ExitCode, main
from scraper.schema.tables import raw_pages
from scraper.store.engine import open_engine

WGET = shutil.which("wget")
pytestmark = pytest.mark.skipif(WGET is None, reason="wget is not installed")


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as running:
        yield running


def _build(site: Site) -> list[str]:
    """Script the site; return the paths of its review pages."""
    site.robots("User-agent: *\nDisallow: /private/\n")
    paths = []
    for type_, mal_id, title, reviews in PAGES:
        url, body = render_page(type_, mal_id, title, reviews)
        path = url.removeprefix("https://myanimelist.net")
        site.route(path, Reply.html(body))
        paths.append(path)
    # The first review page is reached only through the redirect (fetched once); one
    # review-page address answers 404, as a deleted entry does.
    gone = "/anime/1999/Gone/reviews"
    links = [*paths[1:], "/missing/1", gone, "/old-name", "/about", "/logo.png"]
    index = "".join(f'<a href="{link}">{link}</a>\n' for link in links)
    site.route("/", Reply.html(f"<html><body><h1>Index</h1>{index}</body></html>"))
    site.route("/about", Reply.html("<html><body><p>About this site.</p></body></html>"))
    site.route("/logo.png", Reply.text(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"))
    site.route("/old-name", Reply.redirect(paths[0], code=301))
    return paths


@pytest.mark.slow
def test_a_wget_crawl_imports_its_review_pages_and_skips_the_rest(
    site: Site, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _build(site)
    assert WGET is not None
    done = subprocess.run(
        [WGET, "--recursive", "--level=2", "--no-verbose", "--warc-file=crawl", site.url("/")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 8, done.stderr  # 8: some links answered 404, as scripted
    warc = tmp_path / "crawl.warc.gz"
    assert site.log.count("/robots.txt") == 1 and site.log.count("/missing/1") == 1

    assert main(["import-warc", "--db", sqlite_url, str(warc)]) == ExitCode.OK
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    stored_reviews = sum(len(reviews) for *_, reviews in PAGES)
    assert summary.startswith(f"reviews import-warc: {len(PAGES)} page(s) stored with ")
    assert f"with {stored_reviews} review(s)" in summary
    # robots.txt; two 404s; the 301; the image and wget's arguments and log (resource
    # records); the index and /about.
    assert summary.endswith(
        "; 0 already stored; 9 response(s) skipped (2 error status, 3 not HTML, "
        "2 not a review page, 1 redirect, 1 robots.txt)"
    )
    assert sorted(r["mal_id"] for r in records(sqlite_url)) == sorted(
        review.id for *_, reviews in PAGES for review in reviews
    )
    engine = open_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            stored = sorted(conn.execute(sa.select(raw_pages.c.final_url)).scalars())
    finally:
        engine.dispose()
    assert stored == sorted(site.url(path) for path in paths)
    # A second import adds nothing.
    assert main(["import-warc", "--db", sqlite_url, str(warc)]) == ExitCode.OK
    assert f"0 page(s) stored with 0 review(s); {len(PAGES)} already stored" in (
        capsys.readouterr().err
    )
