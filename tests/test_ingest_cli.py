"""``reviews import``, ``reviews reparse`` and ``reviews db``, and what a killed import leaves."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import HISTORY
from processes import descendants, still_running

from scraper.cli import ExitCode, main
from scraper.errors import ParseError
from scraper.records import FetchedPage
from scraper.schema.tables import raw_pages, review_observations
from scraper.store.engine import open_engine
from scraper.store.ingest import ParseOutcome, ingest_page

PAGE_URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"


def _scalar(url: str, query: str) -> int:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(query)).scalar_one())
    finally:
        engine.dispose()


def test_import_prints_what_it_stored_and_uses_the_canonical_url(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", str(HISTORY), "--db", db_url, "--fetched-at", "2026-02-14T08:05"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "stored 3 pages: 3 new" in out
    assert PAGE_URL in out
    assert _scalar(db_url, f"SELECT count(*) FROM raw_pages WHERE final_url = '{PAGE_URL}'") == 3
    assert _scalar(db_url, "SELECT count(*) FROM reviews") == 3


def test_a_page_that_fails_to_parse_is_stored_and_makes_exit_3(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "profile.html"
    page.write_text("<html><body><h1>Some profile</h1><p>No reviews.</p></body></html>")
    good = HISTORY / "anime-91234-reviews-2026-02.html"
    code = main(["import", str(page), str(good), "--db", db_url, "--url", PAGE_URL])
    captured = capsys.readouterr()
    assert code == ExitCode.PAGE_ERRORS
    assert "profile.html: stored raw, but:" in captured.err
    assert "stored 2 pages: 3 new" in captured.out
    assert _scalar(db_url, "SELECT count(*) FROM raw_pages WHERE parse_error IS NOT NULL") == 1


def test_empty_and_binary_files_are_stored_raw_and_reported(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.html").write_bytes(b"")
    (tmp_path / "noise.html").write_bytes(bytes(range(256)) * 40)
    code = main(["import", str(tmp_path), "--db", sqlite_url, "--fetched-at", "2026-01-01"])
    err = capsys.readouterr().err
    assert code == ExitCode.PAGE_ERRORS
    assert "empty.html: stored raw, but:" in err and "noise.html: stored raw, but:" in err
    assert "Traceback" not in err
    assert _scalar(sqlite_url, "SELECT count(*) FROM raw_pages WHERE parse_error IS NOT NULL") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fetched-at", "last tuesday"], "--fetched-at: 'last tuesday'"),
        (["no/such/page.html"], "no/such/page.html: no such file"),
        (["--url", "myanimelist.net/anime/1"], "--url: 'myanimelist.net/anime/1' is not"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_them(
    sqlite_url: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [] if argv[0].startswith("no/") else [str(HISTORY)]
    code = main(["import", *paths, *argv, "--db", sqlite_url])
    assert code == ExitCode.USAGE
    assert message in capsys.readouterr().err


def test_reparse_fixes_pages_and_is_idempotent(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = open_engine(db_url)
    name = "anime-91234-reviews-2026-02.html"
    page = FetchedPage(
        PAGE_URL, PAGE_URL, 200, (), (HISTORY / name).read_bytes(), datetime(2026, 2, 1, tzinfo=UTC)
    )
    # As an older parser would have left it: stored raw, with an error, no records.
    broken = ParseOutcome(None, ParseError("the parser failed: KeyError: 'x'", url=PAGE_URL))
    report = ingest_page(engine, page, parsed=broken)
    assert report.error is not None and report.raw_page_id > 0
    _read_by_older_parser(engine)
    engine.dispose()
    assert _scalar(db_url, "SELECT count(*) FROM reviews") == 0

    assert main(["reparse", "--db", db_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "reparsed 1 pages: 1 changed, 3 reviews new or changed, 0 new errors, 1 fixed" in out
    assert _scalar(db_url, "SELECT count(*) FROM review_observations") == 3
    assert _scalar(db_url, "SELECT count(*) FROM raw_pages WHERE parse_error IS NULL") == 1

    # The current parser read it now: skipped, unless --all.
    assert main(["reparse", "--db", db_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "reparsed 0 pages: 0 changed" in out and "1 pages skipped" in out
    assert main(["reparse", "--all", "--db", db_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "reparsed 1 pages: 0 changed, 0 reviews new or changed, 0 new errors, 0 fixed" in out
    assert "skipped" not in out
    assert _scalar(db_url, "SELECT count(*) FROM review_observations") == 3


def _read_by_older_parser(engine: sa.Engine) -> None:
    """Mark every raw page as read by a parser version older than this one."""
    with engine.begin() as connection:
        connection.execute(sa.update(raw_pages).values(parser_version="0.0.1"))


def test_reparse_counts_fixed_errors(db_url: str) -> None:
    from scraper.store.reparse import reparse

    engine = open_engine(db_url)
    try:
        page = FetchedPage(
            PAGE_URL,
            PAGE_URL,
            200,
            (),
            (HISTORY / "anime-91234-reviews-2021-03-legacy.html").read_bytes(),
            datetime(2021, 3, 2, tzinfo=UTC),
        )
        ingest_page(engine, page, parsed=ParseOutcome(None, ParseError("old parser bug")))
        # A second capture (the same one again would be the same raw page).
        ingest_page(engine, replace(page, fetched_at=datetime(2021, 3, 3, tzinfo=UTC)))
        _read_by_older_parser(engine)
        seen: list[tuple[int, int]] = []
        report = reparse(engine, progress=lambda done, total: seen.append((done, total)))
        assert (report.pages, report.fixed_errors, report.new_errors) == (2, 1, 0)
        assert seen == [(1, 2), (2, 2)]
    finally:
        engine.dispose()


def test_db_upgrade_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'new.db'}"  # no database there yet
    assert main(["db", "info", "--db", sqlite_url]) == ExitCode.FAILURE
    assert "no database there yet" in capsys.readouterr().err
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
    assert main(["db", "upgrade", "--db", sqlite_url]) == ExitCode.OK
    assert "migrated from empty" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", sqlite_url]) == ExitCode.OK
    assert "already at schema revision" in capsys.readouterr().out
    assert main(["db", "info", "--db", sqlite_url]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "reviews" in out and "out of date" not in out


def test_db_on_an_unreachable_server_is_a_clean_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["db", "info", "--db", "postgresql+psycopg://x@127.0.0.1:1/none"])
    assert code == ExitCode.FAILURE
    assert "127.0.0.1:1/none" in capsys.readouterr().err


def _many_pages(folder: Path, count: int) -> None:
    """Distinct copies of the history pages (distinct bodies, same reviews)."""
    sources = sorted(HISTORY.glob("*.html"))
    for number in range(count):
        source = sources[number % len(sources)]
        text = source.read_text(encoding="utf-8")
        (folder / f"{number:03d}-{source.name}").write_text(
            text.replace("</body>", f"<!-- copy {number} --></body>"), encoding="utf-8"
        )


@pytest.mark.slow
def test_parallel_parsing_stores_the_same_as_one_process(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    _many_pages(pages, 12)
    (pages / "999-broken.html").write_bytes(b"<html><body>nothing here</body></html>")
    argv = ["import", str(pages), "--db", db_url, "--fetched-at", "2026-03-01"]
    assert main([*argv, "--jobs", "3"]) == ExitCode.PAGE_ERRORS
    lines = capsys.readouterr().out.splitlines()
    # One line per file, in file order, whatever worker parsed it.
    assert [line.split(":")[0] for line in lines[:-1]] == [
        str(path) for path in sorted(pages.glob("*.html"))
    ]
    assert "stored 13 pages: 3 new" in lines[-1]
    assert _scalar(db_url, "SELECT count(*) FROM review_observations") == 4 * (2 + 2 + 3)
    assert _scalar(db_url, "SELECT count(*) FROM reviews") == 3


@pytest.mark.slow
def test_a_killed_import_never_leaves_half_a_page(db_url: str, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    _many_pages(pages, 400)
    open_engine(db_url).dispose()  # migrate first: kills should hit page writes
    stored_before = 0
    rng = random.Random(7)
    for jobs in ("1", "2", "1"):
        child = subprocess.Popen(
            [sys.executable, "-m", "scraper", "import", str(pages), "--db", db_url, "--jobs", jobs],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # Kill on observed progress, not after a guessed time (a fast import used to
        # finish first): each line is printed once its page is committed. Unread lines
        # fill the pipe after a few hundred pages, so the import cannot finish either.
        assert child.stdout is not None
        seen = rng.randint(1, 60)
        for _ in range(seen):
            assert child.stdout.readline().startswith(str(pages)), "import ended early"
        time.sleep(rng.uniform(0.0, 0.05))  # land anywhere in the next page's work
        workers = descendants(child.pid)  # the fork server and the workers it forked
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        # A deadline, not a wait: one still starting up on a loaded machine watches
        # its parent only once it has started.
        alive = still_running(workers, 20)
        assert alive == [], f"worker processes outlived the killed import: {alive}"
        half, stored = _half_and_stored(db_url)
        assert half == []
        # Each run starts again from the first file; what an earlier run stored is
        # recognised, never stored twice, and every reported page stayed committed.
        assert stored >= max(stored_before, seen)
        assert stored < 400  # the kill landed mid-import
        stored_before = stored
    # The re-run that finishes stores the rest, and each capture is there once.
    finished = subprocess.run(
        [sys.executable, "-m", "scraper", "import", str(pages), "--db", db_url, "--jobs", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == ExitCode.OK, finished.stderr
    assert f"; {stored_before} already stored" in finished.stdout.splitlines()[-1]
    assert _half_and_stored(db_url) == ([], 400)
    _assert_each_capture_once(db_url, pages=400)


def _assert_each_capture_once(db_url: str, *, pages: int) -> None:
    """`export --history` lists every capture of a review once: (time, body) distinct."""
    exported = subprocess.run(
        [sys.executable, "-m", "scraper", "export", "--history", "--db", db_url],
        capture_output=True,
        text=True,
        check=True,
    )
    captures = 0
    for line in exported.stdout.splitlines():
        observations = json.loads(line)["observations"]
        seen = [(o["observed_at"], o["review_sha256"]) for o in observations]
        assert len(seen) == len(set(seen)), seen
        captures += len(seen)
    per_source = (2, 2, 3)  # reviews on each history page, in _many_pages order
    assert captures == sum(per_source[number % 3] for number in range(pages))


def _half_and_stored(db_url: str) -> tuple[list[int], int]:
    """Raw pages whose observations are not all stored, and the raw page count."""
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            observed = (
                sa.select(sa.func.count())
                .where(review_observations.c.raw_page_id == raw_pages.c.id)
                .scalar_subquery()
            )
            half = connection.execute(
                sa.select(raw_pages.c.id).where(raw_pages.c.review_count != observed)
            ).all()
            stored = connection.execute(sa.select(sa.func.count()).select_from(raw_pages))
            if connection.dialect.name == "sqlite":
                check = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
                assert check == "ok"
            return [row.id for row in half], int(stored.scalar_one())
    finally:
        engine.dispose()


@pytest.mark.slow  # two import processes at once
def test_two_imports_of_the_same_files_at_once_store_each_capture_once(
    db_url: str, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    _many_pages(pages, 30)
    open_engine(db_url).dispose()
    argv = [sys.executable, "-m", "scraper", "import", str(pages), "--db", db_url]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [ExitCode.OK, ExitCode.OK]
    summaries = [output.splitlines()[-1] for output in outputs]
    stored = [int(line.split()[1]) for line in summaries]
    assert sum(stored) == 30, summaries  # each file stored by exactly one of them
    assert _half_and_stored(db_url) == ([], 30)
    _assert_each_capture_once(db_url, pages=30)


def _stored_captures(db_url: str) -> list[tuple[str, datetime, int | None]]:
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    raw_pages.c.final_url, raw_pages.c.fetched_at, raw_pages.c.status
                ).order_by(raw_pages.c.fetched_at)
            ).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _copied_history(folder: Path) -> list[Path]:
    """The history pages copied as a copy does: every file gets the copy's time."""
    folder.mkdir()
    copies = []
    for source in sorted(HISTORY.glob("*.html")):
        copy = folder / source.name
        copy.write_bytes(source.read_bytes())
        os.utime(copy, (1_700_000_000, 1_700_000_000))
        copies.append(copy)
    return copies


def test_copied_files_keep_the_dates_in_their_names(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _copied_history(tmp_path / "copies")
    argv = ["import", str(tmp_path / "copies"), "--db", db_url, "--fetched-at-from", "name"]
    assert main(argv) == ExitCode.OK
    assert "nearly the same modification time" not in capsys.readouterr().err
    assert [moment for _, moment, _ in _stored_captures(db_url)] == [
        datetime(2021, 3, 1, tzinfo=UTC),
        datetime(2022, 5, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    ]
    # The newest values are the 2026 capture's, whatever order the files came in.
    exported = {}
    for record in json.loads("[" + ",".join(_export_lines(db_url)) + "]"):
        exported[record["mal_id"]] = (record["user"]["username"], record["score"])
    assert exported[900001] == ("Marrow-Finch", 7)


def _export_lines(db_url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "export", "--db", db_url],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_a_folder_of_copies_is_warned_about_and_a_name_without_a_date_refused(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = _copied_history(tmp_path / "copies")
    assert main(["import", str(tmp_path / "copies"), "--db", sqlite_url]) == ExitCode.OK
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the 3 files of" in err
    assert "all carry nearly the same modification time, as copies do" in err
    moment = datetime.fromtimestamp(1_700_000_000, UTC)
    assert [m for _, m, _ in _stored_captures(sqlite_url)] == [moment] * 3
    # --fetched-at-from name with a file whose name holds no date: nothing is stored.
    undated = copies[0].with_name("saved-page.html")
    copies[0].rename(undated)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    argv = ["import", str(tmp_path / "copies"), "--db", other, "--fetched-at-from", "name"]
    assert main(argv) == ExitCode.USAGE
    assert "saved-page.html: --fetched-at-from name: no date in the file name" in (
        capsys.readouterr().err
    )
    assert _scalar(other, "SELECT count(*) FROM raw_pages") == 0


def test_a_page_saved_with_its_http_head_keeps_the_servers_date(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from siteserver import Reply, serve

    wget = shutil.which("wget")
    if wget is None:
        pytest.skip("wget is not installed")
    page = HISTORY / "anime-91234-reviews-2022-05-legacy.html"
    saved = tmp_path / "saved.html"
    with serve() as site:
        site.route("/anime/91234/x/reviews", Reply.html(page.read_bytes()))
        subprocess.run(
            [
                wget,
                "--quiet",
                "--save-headers",
                "-O",
                str(saved),
                site.url("/anime/91234/x/reviews"),
            ],
            check=True,
            timeout=60,
        )
    head, _, body = saved.read_bytes().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and body == page.read_bytes()
    date = next(line for line in head.decode().splitlines() if line.startswith("Date:"))
    served = parsedate_to_datetime(date.removeprefix("Date:").strip())
    os.utime(saved, (1_000_000_000, 1_000_000_000))  # a copy's time, to be ignored
    assert main(["import", str(saved), "--db", db_url]) == ExitCode.OK
    assert "raw page 1 (entry_reviews" in capsys.readouterr().out
    assert _stored_captures(db_url) == [(PAGE_URL, served, 200)]
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(raw_pages.c.headers, raw_pages.c.body_sha256)
            ).one()
    finally:
        engine.dispose()
    assert ["Content-Type", "text/html; charset=utf-8"] in stored.headers
    assert stored.body_sha256 == hashlib.sha256(body).hexdigest()  # the body after the head


@pytest.mark.slow
@pytest.mark.parametrize(
    ("note", "url", "captured"),
    [
        (
            "<!--\n Page saved with SingleFile \n url: {url} \n"
            " saved date: Tue Mar 04 2025 16:31:24 GMT+0100 (Central European Standard Time)\n-->",
            PAGE_URL + "?p=2",
            datetime(2025, 3, 4, 15, 31, 24, tzinfo=UTC),
        ),
        (
            '<meta name="savepage-url" content="{url}">\n'
            '<meta name="savepage-date" content="Sat Nov 01 2025 08:00:00 GMT-0500 (EST)">',
            PAGE_URL + "?p=3",
            datetime(2025, 11, 1, 13, 0, 0, tzinfo=UTC),
        ),
        ("<!-- saved from url=(0071){url} -->", PAGE_URL + "?p=4", None),
    ],
)
def test_a_saving_tools_note_gives_the_url_and_capture_time(
    sqlite_url: str, tmp_path: Path, note: str, url: str, captured: datetime | None
) -> None:
    text = (HISTORY / "anime-91234-reviews-2026-02.html").read_text(encoding="utf-8")
    saved = tmp_path / "saved.html"
    saved.write_text(text.replace("<head>", "<head>" + note.format(url=url), 1), encoding="utf-8")
    os.utime(saved, (1_000_000_000, 1_000_000_000))
    assert main(["import", str(saved), "--db", sqlite_url]) == ExitCode.OK
    mtime = datetime.fromtimestamp(1_000_000_000, UTC)
    assert _stored_captures(sqlite_url) == [(url, captured or mtime, None)]
    # --fetched-at-from mtime ignores what the file says; --fetched-at overrides all.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["import", str(saved), "--db", other, "--fetched-at-from", "mtime"]) == 0
    given = f"sqlite:///{tmp_path / 'given.db'}"
    argv = ["import", str(saved), "--db", given, "--fetched-at", "2020-01-01T00:00:00Z"]
    assert main([*argv, "--fetched-at-from", "name"]) == 0
    assert _stored_captures(other) == [(url, mtime, None)]
    assert _stored_captures(given) == [(url, datetime(2020, 1, 1, tzinfo=UTC), None)]
