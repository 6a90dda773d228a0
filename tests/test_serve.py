"""``reviews serve`` from outside: a real server subprocess on a real archive (SQLite
file; PostgreSQL where a server is configured), its pages, its errors and what it
never does (write, run archive text as markup)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from markupsafe import escape
from test_serve_support import (
    IMG_PAYLOAD,
    NAME_PAYLOAD,
    SCRIPT_PAYLOAD,
    TITLE_PAYLOAD,
    Server,
    build_archive,
    serving,
)

from scraper.errors import StoreError
from scraper.records import Author, Rating, Record, ReviewedItem
from scraper.serve.params import PARAMETERS
from scraper.serve.readonly import open_read_only


@pytest.fixture(scope="module")
def server(fixture_site: Server) -> Server:
    return fixture_site


@pytest.fixture
def archive(server: Server) -> str:
    return server.db_url


def _files(url: str) -> dict[str, str]:
    path = Path(sa.make_url(url).database or "")
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in path.parent.glob(path.name + "*")
        if p.is_file()
    }


@pytest.mark.slow
def test_first_line_is_the_url_on_loopback(server: Server) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+\n", server.first_line)
    assert not server.url.endswith(":0")
    assert server.get("/").status_code == 200


@pytest.mark.slow
def test_front_page_says_what_the_archive_holds(server: Server) -> None:
    page = server.get("/").text
    assert "myanimelist" in page
    assert re.search(r"<th>reviews</th><td>6</td>", page)
    assert re.search(r"<th>captures \(raw pages\)</th><td>4,", page)
    assert 'name="q"' in page


def test_search_marks_words_and_counts_facets(server: Server) -> None:
    page = server.get("/reviews", q="harbour").text
    assert '<strong id="total">4</strong>' in page  # 900001, 900003 and the two copies
    assert "<mark>harbour</mark>" in page
    assert re.search(r">Recommended</a> \(\d+\)", page)
    assert re.search(r">2021</a> \(\d+\)", page)
    narrowed = server.get("/reviews", q="harbour", author="Marrow-Finch").text
    assert '<strong id="total">2</strong>' in narrowed  # 900001 and its copy 910001
    assert "review 900001" in narrowed and "review 900003" not in narrowed


@pytest.mark.slow
def test_search_by_former_name_tag_score_and_dates(server: Server) -> None:
    assert "review 900001" in server.get("/reviews", author="MarrowFinch").text
    low = server.get("/reviews", min_score="1", max_score="6").text
    assert "review 900003" in low and "review 900001" not in low
    dated = server.get("/reviews", since="2026-01", until="2026-01").text
    assert '<strong id="total">2</strong>' in dated
    tagged = server.get("/reviews", tag="preliminary").text
    assert '<strong id="total">2</strong>' in tagged


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"min_score": "11"}, "min_score"),
        ({"min_score": "x"}, "min_score"),
        ({"since": "last tuesday"}, "since"),
        ({"tag": "Shiny"}, "tag"),
        ({"sort": "random"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page": "9" * 5000}, "page"),
        ({"min_score": "²"}, "min_score"),
        ({"q": "!!!"}, "q"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    server: Server, params: dict[str, str], named: str
) -> None:
    response = server.get("/reviews", **params)
    assert response.status_code == 400
    assert named in response.text
    assert "Traceback" not in response.text
    api = server.get("/api/reviews", **params)
    assert api.status_code == 400
    assert named in api.json()["error"]["message"]


@pytest.mark.parametrize("page", ["0", "x", "999999999999"])
def test_item_and_author_pages_take_the_search_s_page_numbers(server: Server, page: str) -> None:
    for path in ("/items/myanimelist/anime:91234", "/authors/myanimelist/7700101"):
        response = server.get(path, page=page)
        assert response.status_code == 400, path
        assert "page" in response.text and "Traceback" not in response.text


@pytest.mark.slow
def test_unknown_pages_are_404_without_a_traceback(server: Server) -> None:
    for path in (
        "/authors/myanimelist/²",
        "/reviews/myanimelist/1",
        "/reviews/elsewhere/900001",
        "/items/myanimelist/x",
        "/authors/myanimelist/999",
        "/nothing/here",
    ):
        response = server.get(path)
        assert response.status_code == 404, path
        assert "Traceback" not in response.text


def test_review_page_shows_every_capture_and_what_changed(server: Server) -> None:
    page = server.get("/reviews/myanimelist/900001").text
    for day in ("2021-03-10", "2022-05-20", "2026-02-14"):
        assert day in page
    assert "rating: 6 → 7" in page
    assert "author name: MarrowFinch → Marrow-Finch" in page
    assert "body edited" in page and 'class="add"' in page and 'class="del"' in page
    assert "helpful count: 12 → 40" in page
    assert "<polyline" in page and 'class="point"' in page
    assert 'href="https://myanimelist.net/reviews.php?id=900001"' in page


def test_item_and_author_pages(server: Server) -> None:
    item = server.get("/items/myanimelist/anime:91234").text
    assert item.count('class="bar"') >= 10  # the score distribution draws all ten scores
    assert "reviews per month" in item
    assert "review 900001" in item
    author = server.get("/authors/myanimelist/1").text
    names = re.search(r'<ul id="names">(.*?)</ul>', author, re.S)
    assert names and "MarrowFinch" in names.group(1) and "Marrow-Finch" in names.group(1)


def test_runs_page_lists_the_imports(server: Server) -> None:
    assert server.get("/runs").status_code == 200


@pytest.mark.slow
def test_archive_text_is_never_markup(server: Server) -> None:
    pages = [
        server.get("/reviews", q="hooked").text,
        server.get("/reviews/myanimelist/910003").text,
        server.get("/items/myanimelist/anime:91299").text,
        server.get("/reviews", author=NAME_PAYLOAD).text,
    ]
    for page in pages:
        assert "<script" not in page
        assert "<img" not in page
        assert "<b onmouseover" not in page
    review = pages[1]
    for payload in (SCRIPT_PAYLOAD, IMG_PAYLOAD, NAME_PAYLOAD, TITLE_PAYLOAD):
        assert str(escape(payload)) in review  # shown, as text
    csp = server.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp


@pytest.mark.slow  # starts a server process of its own
def test_the_server_writes_nothing(archive: str, tmp_path: Path) -> None:
    before = _files(archive)
    with serving(archive) as server:
        for path in (
            "/",
            "/reviews?q=harbour",
            "/reviews/myanimelist/900001",
            "/runs",
            "/v4/anime/91234/reviews",
            "/v4/reviews/900001/history",
            "/v4/anime/91234/reviews?as_of=2021-12-31",
            "/api/reviews",
        ):
            assert server.get(path).status_code == 200, path
    assert _files(archive) == before


@pytest.mark.slow
def test_the_engine_refuses_writes(db_url: str, tmp_path: Path) -> None:
    build_archive(db_url, tmp_path)
    engine = open_read_only(db_url)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match=r"read-?only"):
            conn.execute(sa.text("DELETE FROM reviews"))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_is_served(postgres_url: str, tmp_path: Path) -> None:
    build_archive(postgres_url, tmp_path)
    with serving(postgres_url) as server:
        page = server.json("/v4/anime/91234/reviews", preliminary="true")
        assert [r["mal_id"] for r in page["data"]] == [900003, 900002, 900001]
        assert "<mark>harbour</mark>" in server.get("/reviews", q="harbour").text
        history = server.json("/v4/reviews/900001/history")["data"]
        assert [c["score"] for c in history] == [6, 7, 7]


@pytest.mark.slow  # a `reviews serve` process
def test_a_missing_or_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "serve", "--db", str(missing), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no archive there" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(StoreError, match="reviews db upgrade"):
        open_read_only(f"sqlite:///{empty}")


@pytest.mark.slow  # two `reviews serve` processes
def test_bad_host_or_port_is_a_usage_error(archive: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "serve", "--db", archive, "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--port" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "serve", "--db", archive, "--host", "no.such.host."],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--host" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_other_commands_never_import_the_web_stack() -> None:
    code = (
        "import sys; from scraper.cli import build_parser; build_parser();"
        "bad = [m for m in ('starlette', 'uvicorn', 'jinja2') if m in sys.modules];"
        "sys.exit(str(bad) if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_a_missing_extra_says_how_to_install_it(archive: str) -> None:
    code = (
        "import sys; sys.modules['starlette'] = None; from scraper.cli import main;"
        f"sys.exit(main(['serve', '--db', {archive!r}, '--port', '0']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'review-archiver[serve]'" in done.stderr


def _generic_record(**changes: Any) -> Record:
    page = "https://bakery.example/recipes/rye-loaf"
    base = Record(
        site="bakery.example",
        id=f"{page}#review-1",
        url=page,
        item=ReviewedItem(name="Dark Rye Loaf", type="Recipe", url=page),
        author=Author(name=NAME_PAYLOAD, url="https://bakery.example/u/crumb"),
        date="2024-05-06",
        title=TITLE_PAYLOAD,
        rating=Rating(4, 5, 1),
        body=f"Proofed it overnight. {SCRIPT_PAYLOAD}",
        tags=("Made it",),
        reactions={"upvotes": 3},
        source="json-ld",
    )
    return base._replace(**changes)


def _store(url: str, at: datetime, *records: Record) -> None:
    from scraper.records import FetchedPage, PageKind, PageResult
    from scraper.store.engine import open_engine
    from scraper.store.ingest import ParseOutcome, ingest_page

    engine = open_engine(url)
    try:
        page = records[0].url
        result = PageResult(kind=PageKind.ENTRY_REVIEWS, url=page, reviews=records)
        fetched = FetchedPage(page, page, 200, (), f"<html>{at}</html>".encode(), at)
        assert ingest_page(engine, fetched, parsed=ParseOutcome(result, None)).error is None
    finally:
        engine.dispose()


@pytest.mark.slow  # a server process of its own
def test_any_site_is_served_but_only_myanimelist_through_jikan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    build_archive(url, tmp_path)
    _store(url, datetime(2024, 5, 7, tzinfo=UTC), _generic_record())
    edited = _generic_record(
        rating=Rating(5, 5, 1),
        reactions={"upvotes": 9},
        body=f"Proofed it overnight. Twice now. {SCRIPT_PAYLOAD}",
    )
    _store(url, datetime(2024, 6, 1, tzinfo=UTC), edited)
    key = "https://bakery.example/recipes/rye-loaf#review-1"
    with serving(url) as server:
        found = server.json("/api/reviews", site="bakery.example")["data"]
        assert [r["id"] for r in found] == [key]
        assert found[0]["rating"] == {"value": 5, "best": 5, "worst": 1}
        assert "mal_id" not in found[0] and "_links" not in found[0]
        one = server.json(f"/api/reviews/bakery.example/{quote(key, safe='')}")
        assert [o["rating"]["value"] for o in one["observations"]] == [4, 5]
        assert one["observations"][0]["body"] is None  # the stand-in page holds no review
        recent = server.json("/v4/reviews/anime", preliminary="true", spoilers="true")["data"]
        assert all(r["url"].startswith("https://myanimelist.net/") for r in recent)
        page = server.get(f"/reviews/bakery.example/{quote(key, safe='')}").text
        assert "rating: 4 → 5" in page and "reactions.upvotes: 3 → 9" in page
        assert "an earlier text could not be read back" in page
        assert "<script" not in page and "<img" not in page and "<b onmouseover" not in page
        assert str(escape(TITLE_PAYLOAD)) in page and str(escape(NAME_PAYLOAD)) in page
        search = server.get("/reviews", q="overnight").text
        assert '<strong id="total">1</strong>' in search and ">bakery.example</a> (1)" in search
        item = server.get(
            f"/items/bakery.example/{quote('https://bakery.example/recipes/rye-loaf', safe='')}"
        )
        assert item.status_code == 200 and "Dark Rye Loaf" in item.text
        tagged = server.get("/reviews", site="bakery.example", tag="Made it").text
        assert '<strong id="total">1</strong>' in tagged


def test_snippets_escape_first_then_mark_whole_words() -> None:
    from scraper.serve.charts import snippet

    marked = str(snippet("A <b>lantern</b> & lanterns; LANTERN_x <lt> lt", ["lantern", "lt"]))
    assert marked == (
        "A &lt;b&gt;<mark>lantern</mark>&lt;/b&gt; &amp; lanterns; <mark>LANTERN</mark>_x "
        "&lt;<mark>lt</mark>&gt; <mark>lt</mark>"
    )
    assert str(snippet("<script>alert(1)</script>", [])) == "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.slow
def test_only_http_links_are_rendered() -> None:
    from scraper.serve.pages import _http_url

    assert _http_url("https://myanimelist.net/reviews.php?id=1") is not None
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//x.y", None):
        assert _http_url(bad) is None


@pytest.mark.slow
def test_workers_share_one_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    build_archive(url, tmp_path)
    with serving(url, "--workers", "2") as server:
        for _ in range(6):
            assert server.json("/v4/anime/91234/reviews")["data"][0]["mal_id"] == 900002
        assert server.get("/reviews", q="harbour").status_code == 200


@pytest.mark.slow
def test_the_cache_answers_old_values_while_it_refreshes(tmp_path: Path) -> None:
    import threading
    import time

    from scraper.serve.state import TimedCache

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    cache = TimedCache(engine, seconds=1.0, size=256)
    made: list[int] = []
    release = threading.Event()

    def make(conn: sa.Connection) -> int:
        made.append(len(made))
        if len(made) > 1:
            release.wait(10)  # a slow refresh
        return len(made)

    with engine.connect() as conn:
        assert cache.get("k", conn, make) == 1
        time.sleep(1.1)
        assert cache.get("k", conn, make) == 1  # stale: answered at once, refresh started
        assert cache.get("k", conn, make) == 1  # one refresh at a time
        release.set()
        deadline = time.monotonic() + 10
        while cache.get("k", conn, make) == 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache.get("k", conn, make) == 2 and len(made) == 2
    engine.dispose()


HOSTILE = ("' OR 1=1 --", "\x00", "²", "%_\\", "x" * 5000, 'a" OR "b NEAR(', "2021-02-30", "🦀")


@pytest.mark.slow
def test_hostile_parameters_never_fail_the_server(server: Server) -> None:
    import httpx

    names = (*PARAMETERS, "per_page", "preliminary", "spoilers", "as_of")
    paths = (
        "/reviews",
        "/api/reviews",
        "/v4/anime/91234/reviews",
        "/v4/reviews/manga",
        "/v4/top/reviews",
        "/v4/users/MarrowFinch/reviews",
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for value in HOSTILE:
            for path in paths:
                for name in names:
                    response = http.get(path, params={name: value})
                    assert response.status_code in (200, 400), (path, name, response.text[:200])
                    assert "Traceback" not in response.text
            quoted = quote(value, safe="")
            for path in (
                f"/reviews/myanimelist/{quoted}",
                f"/items/myanimelist/{quoted}",
                f"/v4/users/{quoted}/reviews",
                f"/api/reviews/x/{quoted}",
            ):
                response = http.get(path)
                assert response.status_code in (200, 400, 404), (path, response.text[:200])


@pytest.mark.slow
def test_an_old_capture_is_read_in_the_charset_its_headers_named(engine: Any) -> None:
    """The history view reads a stored page as a reparse does: a page whose charset
    came only in its Content-Type header is not read as UTF-8."""
    from conftest import HISTORY, HISTORY_URL

    from scraper.records import FetchedPage
    from scraper.serve.history import PageBodies
    from scraper.store.ingest import ingest_page

    html = (HISTORY / "anime-91234-reviews-2026-02.html").read_text(encoding="utf-8")
    html = html.replace("’", "'").replace("Three episodes in", "Три серии спустя")
    page = FetchedPage(
        HISTORY_URL,
        HISTORY_URL,
        200,
        (("Content-Type", "text/html; charset=koi8-r"),),
        html.encode("koi8-r"),
        datetime(2026, 2, 14, tzinfo=UTC),
    )
    raw_page_id = ingest_page(engine, page).raw_page_id
    with engine.connect() as connection:
        body = PageBodies(4).body(connection, raw_page_id, "900003")
    assert body is not None and body.startswith("Три серии спустя")
