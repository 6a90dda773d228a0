"""WARC export: written aside and renamed only once whole; robots.txt answers kept by a
crawl go in; CDXJ digests carry their algorithm, as pywb writes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from siteserver import Reply, Site, serve
from test_ingest_cli import _many_pages
from test_query_pages import PAGES, render_page
from test_warc import build_varied_archive, warcio_check

from scraper.cli import ExitCode, main
from scraper.schema.tables import hosts, raw_bodies, raw_pages
from scraper.store.engine import open_engine

ROBOTS = "User-agent: *\nDisallow: /private/\n"


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as running:
        yield running


def _warc_records(path: Path) -> list[tuple[str, str, str | None, bytes]]:
    from warcio.archiveiterator import ArchiveIterator

    found = []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            status = record.http_headers.get_statuscode() if record.http_headers else None
            found.append(
                (
                    record.rec_type,
                    record.rec_headers.get_header("WARC-Target-URI") or "",
                    status if record.rec_type == "response" else None,
                    record.content_stream().read(),
                )
            )
    return found


@pytest.mark.slow
def test_robots_answers_of_a_crawl_go_into_the_export(
    site: Site, db_url: str, tmp_path: Path
) -> None:
    site.robots(ROBOTS)
    url, body = render_page(*PAGES[0])
    path = url.removeprefix("https://myanimelist.net")
    site.route(path, Reply.html(body))
    assert main(["crawl", site.url(path), "--db", db_url, "--delay", "0"]) == ExitCode.OK
    out = tmp_path / "crawl.warc.gz"
    argv = ["export", "--db", db_url, "--format", "warc", "--out", str(out), "--cdxj"]
    assert main(argv) == 0
    warcio_check(out)
    written = _warc_records(out)
    robots = [r for r in written if r[1] == site.url("/robots.txt")]
    assert robots == [("response", site.url("/robots.txt"), "200", ROBOTS.encode())]
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            fetched_at = conn.execute(sa.select(hosts.c.robots_fetched_at)).scalar_one()
            pages = set(conn.execute(sa.select(raw_pages.c.final_url)).scalars())
    finally:
        engine.dispose()
    from warcio.archiveiterator import ArchiveIterator

    with out.open("rb") as stream:
        dates = {
            r.rec_headers.get_header("WARC-Target-URI"): r.rec_headers.get_header("WARC-Date")
            for r in ArchiveIterator(stream)
        }
    expected = fetched_at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert dates[site.url("/robots.txt")] == expected
    lines = out.with_name("crawl.cdxj").read_text(encoding="utf-8").splitlines()
    index = [json.loads(line.split(" ", 2)[2]) for line in lines]
    assert {entry["url"] for entry in index} == {site.url("/robots.txt"), *pages}
    assert all(entry["digest"].startswith("sha1:") for entry in index)
    # Read back in, robots.txt is skipped, not stored as a page.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["import-warc", "--db", fresh, str(out)]) == ExitCode.OK


@pytest.mark.slow
def test_a_failed_warc_export_leaves_no_file(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_varied_archive(sqlite_url)
    engine = open_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            # One stored body no longer decompresses: the export fails on it mid-way.
            newest = sa.select(sa.func.max(raw_bodies.c.sha256)).scalar_subquery()
            conn.execute(
                sa.update(raw_bodies)
                .where(raw_bodies.c.sha256 == newest)
                .values(data=b"\x00" * 64, encoding="zstd")
            )
    finally:
        engine.dispose()
    out = tmp_path / "archive.warc.gz"
    argv = ["export", "--db", sqlite_url, "--format", "warc", "--out", str(out), "--cdxj"]
    assert main([*argv, "--max-size", "3000"]) != 0
    assert "cannot decompress" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if "warc" in p.name or "cdxj" in p.name) == []


@pytest.mark.slow  # kills an export process
def test_a_killed_warc_export_never_leaves_a_complete_looking_file(
    sqlite_url: str, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    _many_pages(pages, 150)
    assert main(["import", str(pages), "--db", sqlite_url]) == ExitCode.OK
    out = tmp_path / "archive.warc.gz"
    database = sqlite_url.removeprefix("sqlite:///")
    argv = ["export", "--format", "warc", "--db", database, "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-m", "scraper", *argv], stderr=subprocess.DEVNULL)
    partial = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 60
    # Killed once its first records are written (the file has grown past its warcinfo).
    while not (partial.exists() and partial.stat().st_size > 2000):
        assert child.poll() is None, "the export ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not out.exists()  # only the .partial, which no tool takes for an archive
    assert main(["export", "--format", "warc", "--db", sqlite_url, "--out", str(out)]) == 0
    assert out.exists() and not partial.exists()
    warcio_check(out)
