"""The real Datasette and sqlite-utils on an archive: search, facets, labels, sort.

Two archives, each named ``reviews.db`` (Datasette names a database after its file):
one built today from the three ``fixtures/history`` captures, one written at revision
0002 from the same captures (``test_migration_0003.build_0002``) and migrated by
``reviews datasette`` itself; schema.org pages are imported into both afterwards
(new rows on a migrated table: its FTS triggers must work too). Datasette runs in
process through its own test client with the metadata ``reviews datasette
--metadata-out`` writes, and once as the ``datasette serve`` process
``reviews datasette`` starts.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import HISTORY, SCHEMAORG_PAGES
from markupsafe import escape  # Datasette's pages are escaped with it
from test_migration_0003 import build_0002

from scraper.cli import main
from scraper.config import DATASETTE_TRUNCATE_CELLS

SCHEMAORG = [
    SCHEMAORG_PAGES / f"{name}.html"
    for name in (
        "product-reviews",
        "critic-rdfa",
        "local-business-microdata",
        "itemlist-reviews",
        "authors-html-body",
        "magento-microdata",
        "woocommerce-twice",
        "wprm-graph",
    )
]
#: Words found in reviews of several sites (and "slow" in MAL reviews only).
WORDS = ("slow", "the", "good")
#: What Datasette's search box is given: words (all must occur) and a phrase too.
SEARCHES = (*WORDS, "lantern festival", "the good", '"the second"')
NAME = "reviews"  # Datasette's name for reviews.db

#: Every test runs the real Datasette (or sqlite-utils) on archives built for the module.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["new", "migrated"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive (path) with the history captures and schema.org pages."""
    folder = tmp_path_factory.mktemp(request.param)
    db = folder / "reviews.db"
    if request.param == "new":
        assert main(["import", str(HISTORY), "--fetched-at-from", "name", "--db", str(db)]) == 0
    else:
        build_0002(f"sqlite:///{db}")
        # The read of a 0002 archive migrates it, as every read command does.
        assert main(["datasette", "--db", str(db), "--metadata-out", str(folder / "m.json")]) == 0
        assert _revision(db) != "0002"
    files = [str(path) for path in SCHEMAORG]
    assert main(["import", *files, "--fetched-at", "2026-03-01", "--db", str(db)]) == 0
    return db


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def _metadata(db: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = db.parent / "metadata.json"
    capsys.readouterr()
    assert main(["datasette", "--db", str(db), "--metadata-out", str(out), "--", "-p", "0"]) == 0
    command = capsys.readouterr().out.strip()
    assert command == (
        f"datasette serve {db} --metadata {out} "
        f"--setting truncate_cells_html {DATASETTE_TRUNCATE_CELLS} -p 0"
    )
    metadata: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return metadata


def _get(db: Path, metadata: dict[str, Any] | None, paths: list[str]) -> list[Any]:
    """GET each path from a Datasette serving *db* with *metadata*: JSON or HTML text."""
    from datasette.app import Datasette  # imported when used: a second of collection

    datasette = Datasette(
        [str(db)],
        metadata=metadata,
        settings={"truncate_cells_html": DATASETTE_TRUNCATE_CELLS},
    )

    async def fetch() -> list[Any]:
        answers = []
        for path in paths:
            response = await datasette.client.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            answers.append(response.json() if ".json" in path else response.text)
        return answers

    return asyncio.run(fetch())


def _query(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["query", "--db", str(db), "--format", "jsonl", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_search_box_and_search_find_what_reviews_query_finds(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = _metadata(archive, capsys)
    table_page, view_page = _get(archive, metadata, [f"/{NAME}/reviews", f"/{NAME}/reviews_view"])
    assert 'name="_search"' in table_page
    assert 'name="_search"' in view_page
    sites_found = set()
    for word in SEARCHES:
        expected = {(r["site"], r["id"]) for r in _query(archive, capsys, "--search", word)}
        assert expected, word
        sites_found |= {site for site, _ in expected}
        asked = f"_search={quote(word)}&_shape=array&_size=max&_col=site&_col=key"
        table, view = _get(
            archive,
            metadata,
            [f"/{NAME}/reviews.json?{asked}", f"/{NAME}/reviews_view.json?{asked}"],
        )
        assert {(row["site"], row["key"]) for row in table} == expected, word
        assert {(row["site"], row["key"]) for row in view} == expected, word
        assert len(table) == len(view) == len(expected)
    assert len(sites_found) > 3  # the words are found on MAL and schema.org sites


def test_the_table_is_searchable_without_metadata(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain ``datasette reviews.db`` finds the FTS table of ``reviews`` by itself."""
    expected = {(r["site"], r["id"]) for r in _query(archive, capsys, "--search", "the")}
    page, rows = _get(
        archive,
        None,
        [
            f"/{NAME}/reviews",
            f"/{NAME}/reviews.json?_search=the&_shape=array&_size=max&_col=site&_col=key",
        ],
    )
    assert 'name="_search"' in page
    assert {(row["site"], row["key"]) for row in rows} == expected
    import sqlite_utils

    database = sqlite_utils.Database(archive)
    try:
        assert database["reviews"].detect_fts() == "reviews_fts"
    finally:
        database.close()


def test_facets_count_per_tag_and_site(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = _metadata(archive, capsys)
    records = _query(archive, capsys)
    (view,) = _get(archive, metadata, [f"/{NAME}/reviews_view.json?_size=0"])
    facets = view["facet_results"]
    assert set(facets) == {"site", "item_type", "tags", "rating_value"}
    tags = collections.Counter(tag for record in records for tag in record["tags"])
    assert len(tags) >= 3
    assert {row["value"]: row["count"] for row in facets["tags"]["results"]} == tags
    sites = collections.Counter(record["site"] for record in records)
    assert {row["value"]: row["count"] for row in facets["site"]["results"]} == sites
    # Asked for in the URL, on a plain table too (tags are a JSON array there as well).
    (observations,) = _get(
        archive, metadata, [f"/{NAME}/review_observations.json?_facet_array=tags&_size=0"]
    )
    counted = {row["value"] for row in observations["facet_results"]["tags"]["results"]}
    assert counted == set(tags)


def test_every_foreign_key_shows_its_label(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = _metadata(archive, capsys)
    tables = metadata["databases"][NAME]["tables"]
    with sqlite3.connect(archive) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            )
        ]
        keys = {
            name: conn.execute(f"SELECT * FROM pragma_foreign_key_list('{name}')").fetchall()
            for name in names
        }
    checked = collections.Counter()
    for table, foreign_keys in keys.items():
        if not foreign_keys:
            continue
        (rows,) = _get(archive, metadata, [f"/{NAME}/{table}.json?_labels=on&_shape=array"])
        for key in foreign_keys:
            target, column, target_column = key[2], key[3], key[4]
            if target == "raw_bodies":  # keyed by its SHA-256 text: its own label
                bodies = [row[column] for row in rows if row[column] is not None]
                assert bodies and all(body["label"] == body["value"] for body in bodies)
                continue
            label = tables[target]["label_column"]
            with sqlite3.connect(archive) as conn:
                labels = dict(conn.execute(f"SELECT {target_column}, {label} FROM {target}"))
            for row in rows:
                if row[column] is None:
                    continue
                value = row[column]
                assert value == {"value": value["value"], "label": labels[value["value"]]}
                assert value["label"], (table, column, value)
                checked[table, column] += 1
    assert checked["reviews", "item_id"] == checked["reviews", "author_id"] > 20
    assert checked["review_observations", "review_id"] > 20
    assert checked["review_observations", "raw_page_id"] > 20
    assert checked["review_tags", "tag_id"] > 3
    # The reviews' item and author labels are the names reviews query prints.
    (reviews,) = _get(archive, metadata, [f"/{NAME}/reviews.json?_labels=on&_shape=array"])
    shown = {
        (row["site"], row["key"]): (row["item_id"]["label"], row["author_id"]["label"])
        for row in reviews
    }
    records = _query(archive, capsys)
    assert shown == {
        (r["site"], r["id"]): (r["item"]["name"], r["author"]["name"]) for r in records
    }


def test_newest_reviews_come_first(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = _metadata(archive, capsys)
    table, view = _get(
        archive,
        metadata,
        [
            f"/{NAME}/reviews.json?_shape=array&_col=date",
            f"/{NAME}/reviews_view.json?_shape=array&_col=date_utc",
        ],
    )
    dates = [row["date"] for row in table if row["date"] is not None]
    assert len(dates) > 20 and dates == sorted(dates, reverse=True)
    dates = [row["date_utc"] for row in view if row["date_utc"] is not None]
    assert len(dates) > 20 and dates == sorted(dates, reverse=True)


def test_sqlite_utils_search_finds_what_reviews_query_finds(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for word in WORDS:
        expected = {(r["site"], r["id"]) for r in _query(archive, capsys, "--search", word)}
        found = subprocess.run(
            [
                sys.executable,
                "-m",
                "sqlite_utils",
                "search",
                str(archive),
                "reviews",
                word,
                "-c",
                "site",
                "-c",
                "key",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows = json.loads(found.stdout)
        assert {(row["site"], row["key"]) for row in rows} == expected, word
        assert len(rows) == len(expected)


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
        return port


def test_reviews_datasette_serves_the_archive(archive: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "datasette.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scraper",
                "datasette",
                "--db",
                str(archive),
                "--",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    children: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}/{NAME}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/reviews?_search=slow", timeout=5) as answer:
                    page = answer.read().decode("utf-8")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(log.read_text(encoding="utf-8", errors="replace"))
                time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/reviews.json?_shape=array&_size=max") as answer:
            rows = json.loads(answer.read())
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert children  # Datasette runs as a child of `reviews datasette`
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Stopping `reviews datasette` stops Datasette too: no server is left behind.
    for child in children:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{child}").exists()
    assert 'name="_search"' in page and "Reviews" in page
    # Foreign keys shown by their labels: the item's and the authors' names.
    assert "Paper Lanterns of Kestrel Bay" in page and "Marrow-Finch" in page
    # Bodies longer than the setting are cut in the table (the longest MAL review).
    longest = max((row["body"] or "" for row in rows), key=len)
    assert len(longest) > DATASETTE_TRUNCATE_CELLS
    assert str(escape(longest[:DATASETTE_TRUNCATE_CELLS])) + "\u2026" in page
    assert str(escape(longest[-40:])) not in page


def test_reviews_datasette_refuses_what_datasette_cannot_read(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://someone@127.0.0.1/archive"
    assert main(["datasette", "--db", url, "--metadata-out", str(tmp_path / "m.json")]) == 2
    assert "SQLite files only" in capsys.readouterr().err
    assert main(["datasette", "--db", str(archive), "--metadata-out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"reviews datasette: error: --metadata-out: {tmp_path}: ")
    missing = tmp_path / "missing.db"
    assert main(["datasette", "--db", str(missing), "--metadata-out", "-"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no database there yet" in err
    assert not missing.exists()
