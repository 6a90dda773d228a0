"""WARC export and import: warcio check passes, and a re-import gives the same archive."""

from __future__ import annotations

import gzip
import subprocess
import sys
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_query_pages import PAGES, build_archive, page_of

from scraper.cli import ExitCode, main
from scraper.export.warc import export_warc, served_headers
from scraper.export.warcimport import import_warcs
from scraper.schema.tables import raw_pages as raw
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page
from scraper.store.read import iter_records

WARCIO = Path(sys.executable).with_name("warcio")


def warcio_check(*paths: Path) -> None:
    done = subprocess.run(
        [str(WARCIO), "check", "-v", *map(str, paths)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "digest pass" in done.stdout


def records(url: str) -> list[dict[str, Any]]:
    engine = open_engine(url)
    try:
        return list(iter_records(engine, history=True))
    finally:
        engine.dispose()


def raw_pages(url: str) -> list[tuple[Any, ...]]:
    """The raw pages as stored, minus what an import cannot know (ids, source)."""
    from scraper.schema.tables import raw_pages as table

    columns = [
        table.c[name]
        for name in (
            "requested_url",
            "final_url",
            "status",
            "headers",
            "request_headers",
            "fetched_at",
            "body_sha256",
            "page_kind",
            "review_count",
        )
    ]
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            statement = sa.select(*columns).order_by(table.c.fetched_at, table.c.final_url)
            return [tuple(row) for row in conn.execute(statement)]
    finally:
        engine.dispose()


def build_varied_archive(url: str) -> None:
    """The known archive, twice (revisits), plus pages that test the WARC's corners."""
    build_archive(url, captures=2).dispose()
    engine = open_engine(url)
    try:
        base = page_of(*PAGES[0])
        later = base.fetched_at.replace(year=2025)
        # A page saved from disk: no HTTP exchange behind it (a resource record).
        saved = replace(base, status=None, headers=(), request_headers=(), fetched_at=later)
        ingest_page(engine, saved, source="file")
        # Served gzipped and chunked: the archive keeps the decoded body.
        served = (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "123"),
        )
        moved = replace(
            page_of(*PAGES[1]),
            requested_url="https://myanimelist.net/anime/1002/Old_Name/reviews",
            headers=served,
            fetched_at=later.replace(month=2),
        )
        ingest_page(engine, moved)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_export_check_import_gives_an_identical_archive(db_url: str, tmp_path: Path) -> None:
    build_varied_archive(db_url)
    out = tmp_path / "archive.warc.gz"
    assert main(["export", "--db", db_url, "--format", "warc", "--out", str(out)]) == 0
    warcio_check(out)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["import-warc", "--db", fresh, str(out)]) == ExitCode.OK
    assert records(fresh) == records(db_url)
    assert raw_pages(fresh) == raw_pages(db_url)
    # The second import finds every page already stored and adds nothing.
    engine = open_engine(fresh)
    try:
        again = import_warcs(engine, [out])
    finally:
        engine.dispose()
    assert (again.pages, again.already_stored, again.errors) == (0, 8, [])
    assert raw_pages(fresh) == raw_pages(db_url)
    # Nor does importing it into the archive it came from.
    engine = open_engine(db_url)
    try:
        assert import_warcs(engine, [out]).already_stored == 8
    finally:
        engine.dispose()
    assert raw_pages(db_url) == raw_pages(fresh)


@pytest.mark.slow
def test_identical_bodies_become_revisits_and_files_roll_over(
    sqlite_url: str, tmp_path: Path
) -> None:
    build_varied_archive(sqlite_url)
    engine = open_engine(sqlite_url)
    try:
        report = export_warc(engine, tmp_path / "small.warc.gz", max_size=2500)
    finally:
        engine.dispose()
    # A body served again (even at another URL) is a revisit, across files too.
    assert (report.responses, report.revisits, report.resources) == (3, 4, 1)
    names = [path.name for path in report.files]
    assert names[:3] == ["small.warc.gz", "small-00001.warc.gz", "small-00002.warc.gz"]
    assert len(names) >= 4
    warcio_check(*report.files)
    from warcio.archiveiterator import ArchiveIterator

    responses, refers = {}, []
    for path in report.files:
        with path.open("rb") as stream:
            found = list(ArchiveIterator(stream))
        assert found[0].rec_type == "warcinfo"
        for record in found:
            headers = record.rec_headers
            if record.rec_type == "response":
                responses[headers.get_header("WARC-Record-ID")] = headers.get_header(
                    "WARC-Payload-Digest"
                )
            elif record.rec_type == "revisit":
                refers.append(
                    (
                        headers.get_header("WARC-Refers-To"),
                        headers.get_header("WARC-Payload-Digest"),
                    )
                )
    # Each revisit names a response written before it, with that response's digest.
    assert len(refers) == 4 and all(responses.get(ref) == digest for ref, digest in refers)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = open_engine(fresh)
    try:
        imported = import_warcs(engine, report.files)
    finally:
        engine.dispose()
    assert (imported.pages, imported.errors) == (8, [])
    assert records(fresh) == records(sqlite_url)


@pytest.mark.slow
def test_a_filtered_export_holds_the_pages_of_those_reviews(
    sqlite_url: str, tmp_path: Path
) -> None:
    build_archive(sqlite_url, captures=2).dispose()
    out = tmp_path / "one.warc.gz"
    argv = ["export", "--db", sqlite_url, "--format", "warc", "--out", str(out), "--entry", "1002"]
    assert main(argv) == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["import-warc", "--db", fresh, str(out)]) == 0
    assert [r["mal_id"] for r in records(fresh)] == [5004, 5005]


def _wget_style_warc(path: Path) -> bytes:
    """A WARC as another crawler writes it: robots.txt, an image, and a review page
    served gzipped and chunked, with request records and a metadata record."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    url, body = page_of(*PAGES[2]).final_url, page_of(*PAGES[2]).body
    zipped = gzip.compress(body)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(zipped), zipped)
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "Wget/1.21"}))
        exchanges = [
            ("https://myanimelist.net/robots.txt", "text/plain", [], b"User-agent: *\n"),
            ("https://cdn.myanimelist.net/images/a.jpg", "image/jpeg", [], b"\xff\xd8\xff"),
            (
                url,
                "text/html; charset=UTF-8",
                [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")],
                chunked,
            ),
        ]
        for target, kind, extra, payload in exchanges:
            headers = StatusAndHeaders("200 OK", [("Content-Type", kind), *extra], "HTTP/1.1")
            sent = StatusAndHeaders("GET / HTTP/1.1", [("Host", "x")], is_http_request=True)
            request = writer.create_warc_record(target, "request", http_headers=sent)
            writer.write_record(request)
            record = writer.create_warc_record(
                target,
                "response",
                payload=BytesIO(payload),
                length=len(payload),
                http_headers=headers,
                # Here the response names its request (our own files do the reverse).
                warc_headers_dict={
                    "WARC-Concurrent-To": request.rec_headers.get_header("WARC-Record-ID")
                },
            )
            writer.write_record(record)
        metadata = writer.create_warc_record(
            url,
            "metadata",
            payload=BytesIO(b"outlinks: none\n"),
            length=15,
            warc_content_type="text/plain",
        )
        writer.write_record(metadata)
    return body


def test_import_reads_review_pages_from_another_tools_warc(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wget.warc.gz"
    body = _wget_style_warc(path)
    assert main(["import-warc", "--db", db_url, str(path)]) == ExitCode.OK
    assert "1 page(s) stored with 2 review(s)" in capsys.readouterr().err
    assert [r["mal_id"] for r in records(db_url)] == [5006, 5007]
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(raw.c.source, raw.c.body_sha256, raw.c.request_headers, raw.c.headers)
            ).one()
    finally:
        engine.dispose()
    import hashlib

    assert tuple(stored[:3]) == ("warc", hashlib.sha256(body).hexdigest(), [["Host", "x"]])
    assert ["Content-Encoding", "gzip"] in stored.headers  # as served; the body is decoded


@pytest.mark.slow
def test_bad_warc_files_are_named_and_the_others_imported(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.warc.gz"
    _wget_style_warc(good)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a WARC file\n" * 10)
    missing = tmp_path / "missing.warc.gz"
    code = main(["import-warc", "--db", sqlite_url, str(text), str(missing), str(good)])
    err = capsys.readouterr().err
    assert code == ExitCode.PAGE_ERRORS
    assert "notes.txt: not a WARC file" in err and "missing.warc.gz: cannot read" in err
    assert "1 page(s) stored" in err and "Traceback" not in err
    assert [r["mal_id"] for r in records(sqlite_url)] == [5006, 5007]


def test_headers_are_made_true_to_the_decoded_body() -> None:
    headers = [
        ("Content-Type", "text/html"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "10"),
        ("Transfer-Encoding", "chunked"),
    ]
    assert served_headers(headers, 42) == [
        ("Content-Type", "text/html"),
        ("X-Archive-Orig-Content-Encoding", "gzip"),
        ("X-Archive-Orig-Content-Length", "10"),
        ("Content-Length", "42"),
        ("X-Archive-Orig-Transfer-Encoding", "chunked"),
    ]
    assert served_headers([("Content-Length", "42")], 42) == [("Content-Length", "42")]


def test_cdxj_index_points_at_each_capture(sqlite_url: str, tmp_path: Path) -> None:
    import json

    from warcio.archiveiterator import ArchiveIterator

    build_varied_archive(sqlite_url)
    out = tmp_path / "indexed.warc.gz"
    argv = ["export", "--db", sqlite_url, "--format", "warc", "--out", str(out), "--cdxj"]
    assert main([*argv, "--max-size", "4000"]) == 0
    indexes = sorted(tmp_path.glob("*.cdxj"))
    assert {p.name for p in indexes} == {
        p.name.replace(".warc.gz", ".cdxj") for p in tmp_path.glob("*.warc.gz")
    }
    assert len(indexes) > 1
    seen = []
    for index in indexes:
        lines = index.read_text(encoding="utf-8").splitlines()
        assert lines == sorted(lines)
        for line in lines:
            key, timestamp, fields = line.split(" ", 2)
            entry = json.loads(fields)
            with (tmp_path / entry["filename"]).open("rb") as stream:
                stream.seek(int(entry["offset"]))
                record = next(iter(ArchiveIterator(stream)))
            assert record.rec_headers.get_header("WARC-Target-URI") == entry["url"]
            assert key.startswith("net,myanimelist)/") and len(timestamp) == 14
            seen.append(record.rec_type)
    assert sorted(seen) == ["resource"] + ["response"] * 3 + ["revisit"] * 4


@pytest.mark.slow
def test_real_pages_survive_the_round_trip(
    corpus_dir: Path, sqlite_url: str, tmp_path: Path
) -> None:
    """Saved MAL pages (the shared corpus, never committed): ingest, export as WARC,
    re-import, and the records are what the parser read from the pages."""
    from datetime import UTC, datetime, timedelta

    from scraper.records import FetchedPage
    from scraper.sites import parse_page

    engine = open_engine(sqlite_url)
    expected: dict[int, dict[str, Any]] = {}
    try:
        pages = sorted((corpus_dir / "mal").glob("*.html"))
        assert pages
        for number, path in enumerate(pages):
            body = path.read_bytes()
            url = parse_page(body, charset="utf-8").url or f"https://myanimelist.net/{path.stem}"
            page = FetchedPage(
                requested_url=url,
                final_url=url,
                status=200,
                headers=(("Content-Type", "text/html; charset=utf-8"),),
                body=body,
                fetched_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number),
            )
            ingest_page(engine, page)
            for review in parse_page(body, url, charset="utf-8").reviews:
                expected[int(review.id)] = review.to_dict()  # later captures win
        report = export_warc(engine, tmp_path / "real.warc.gz")
    finally:
        engine.dispose()
    warcio_check(*report.files)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["import-warc", "--db", fresh, *map(str, report.files)]) == ExitCode.OK
    found = {record.pop("mal_id"): record for record in records(fresh)}
    assert len(found) == len(expected) > 40
    for review_id, record in found.items():
        record.pop("observations")
        assert {"mal_id": review_id, **record} == expected[review_id]


def test_a_page_the_database_refuses_is_named_and_the_others_imported(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_varied_archive(source)
    out = tmp_path / "archive.warc.gz"
    assert main(["export", "--db", source, "--format", "warc", "--out", str(out)]) == 0
    pages = raw_pages(source)
    refused = pages[0][1]  # every capture of its URL
    engine = open_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON raw_pages WHEN new.final_url = "
                f"'{refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    finally:
        engine.dispose()
    capsys.readouterr()
    assert main(["import-warc", "--db", sqlite_url, str(out)]) == ExitCode.PAGE_ERRORS
    err = capsys.readouterr().err
    assert f"{refused}: not stored: " in err and "refused" in err
    assert raw_pages(sqlite_url) == [page for page in pages if page[1] != refused]
