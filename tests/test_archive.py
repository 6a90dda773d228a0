"""``reviews archive`` end to end: a real local site, real SQLite files and the real
PostgreSQL server (``db_url``), checked by reading the database afterwards."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import FAST, HISTORY
from siteserver import ARRIVAL_JITTER, Reply, Site, serve

from scraper.api import Archive
from scraper.cli import ExitCode, main
from scraper.crawl import Archived
from scraper.errors import RobotsDisallowed

PAGE_2026 = HISTORY / "anime-91234-reviews-2026-02.html"
ENTRY_PATH = "/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
NOT_REVIEWS = "<html><head><title>Someone's profile</title></head><body><p>Hi.</p></body></html>"


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as running:
        running.robots("User-agent: *\nDisallow: /private\n")
        running.files({ENTRY_PATH: PAGE_2026})
        running.page("/profile/someone", NOT_REVIEWS)
        yield running


def archive(urls: list[str], *, db: str, **options: Any) -> Iterator[Archived]:
    """``Archive(db).archive(urls, ...)``, its engine closed when the URLs are done."""
    with Archive(db) as archived:
        yield from archived.archive(urls, **options)


def _count(db_url: str, table: str, where: str = "") -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()
            )
    finally:
        engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_archive_stores_pages_and_names_every_failure(
    site: Site, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site.route("/feed.json", Reply.text("{}", "application/json"))
    dead = f"http://127.0.0.1:{_closed_port()}/anime/1/X/reviews"
    urls = [
        site.url(ENTRY_PATH),
        site.url("/profile/someone"),
        site.url("/private/page"),
        site.url("/feed.json"),
        dead,
        site.url(ENTRY_PATH + "#again"),  # the same page: fetched once
    ]  # (an ftp:// URL is a usage error before anything is fetched: test_cli_badinput)
    code = main(["archive", *urls, "--db", db_url, "--delay", "0"])
    out, err = capsys.readouterr()
    assert code == ExitCode.PAGE_ERRORS
    assert f"{site.url(ENTRY_PATH)}: stored raw page" in out
    assert "3 reviews: 3 new, 0 updated, 0 unchanged" in out
    assert f"{site.url('/profile/someone')}: stored raw page" in out
    for failed in (
        site.url("/profile/someone"),
        site.url("/private/page"),
        site.url("/feed.json"),
        dead,
    ):
        assert failed in err, failed
    assert "robots.txt disallows" in err and "application/json" in err
    assert "4 of 5 URLs failed" in err
    assert "Traceback" not in err
    assert site.log.count(ENTRY_PATH) == 1
    assert site.log.count("/private/page") == 0
    assert _count(db_url, "raw_pages") == 2
    assert _count(db_url, "raw_pages", "WHERE parse_error IS NOT NULL") == 1
    assert _count(db_url, "reviews") == 3
    assert _count(db_url, "fetch_errors") == 3
    assert _count(db_url, "fetch_errors", "WHERE error = 'RobotsDisallowed'") == 1


@pytest.mark.slow
def test_archiving_twice_adds_observations_not_rows(site: Site, db_url: str) -> None:
    for _ in range(2):
        results = list(archive([site.url(ENTRY_PATH)], db=db_url, delay=0, settings=FAST))
        assert [item.error for item in results] == [None]
    second = results[0].report
    assert second is not None
    assert (second.reviews_new, second.reviews_unchanged) == (0, 3)
    assert _count(db_url, "reviews") == 3
    assert _count(db_url, "review_observations") == 6
    assert _count(db_url, "raw_pages") == 2


@pytest.mark.slow
def test_archive_retries_503_and_honours_retry_after(site: Site, sqlite_url: str) -> None:
    site.sequence(
        "/anime/5/Y/reviews",
        [Reply.status(503, retry_after=1), Reply(**_page_reply())],
    )
    results = list(archive([site.url("/anime/5/Y/reviews")], db=sqlite_url, delay=0, settings=FAST))
    assert results[0].report is not None and results[0].error is None
    first, second = site.log.all("/anime/5/Y/reviews")
    assert second.at - first.at >= 1.0 - ARRIVAL_JITTER
    assert _count(sqlite_url, "reviews") == 3


def _page_reply() -> dict[str, object]:
    reply = Reply.html(PAGE_2026.read_bytes())
    return {"code": reply.code, "headers": reply.headers, "body": reply.body}


@pytest.mark.slow
def test_archive_keeps_the_delay_between_requests(site: Site, sqlite_url: str) -> None:
    site.files({f"/anime/{n}/Z/reviews": PAGE_2026 for n in range(3)})
    urls = [site.url(f"/anime/{n}/Z/reviews") for n in range(3)]
    results = list(archive(urls, db=sqlite_url, delay=0.3, settings=FAST))
    assert all(item.error is None for item in results)
    # robots.txt and each page, from the server's view
    assert min(site.log.gaps("/")) >= 0.3 - ARRIVAL_JITTER


def test_user_agent_option_is_sent_and_used_for_robots(
    site: Site, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site.robots("User-agent: mybot\nDisallow: /anime\n")
    agent = "mybot/2.0 (+https://example.org/contact)"
    code = main(
        ["archive", site.url(ENTRY_PATH), "--db", sqlite_url, "--delay", "0", "--user-agent", agent]
    )
    assert code == ExitCode.PAGE_ERRORS
    assert "robots.txt disallows" in capsys.readouterr().err
    assert site.log.all("/robots.txt")[0].header("User-Agent") == agent


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("--user-agent", " "),
        ("--delay", "-1"),
        ("--delay", "soon"),
    ],
)
def test_bad_options_are_usage_errors(
    option: str, value: str, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["archive", "http://127.0.0.1:9/", "--db", sqlite_url, option, value])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("user agent" in err or "--delay" in err)


def test_api_yields_errors_in_order(site: Site, sqlite_url: str) -> None:
    results = list(archive([site.url("/private/a"), site.url(ENTRY_PATH)], db=sqlite_url, delay=0))
    assert isinstance(results[0].error, RobotsDisallowed)
    assert results[0].report is None
    assert results[1].report is not None and results[1].report.reviews_new == 3


def test_an_unusable_database_is_a_clean_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "reviews.db"
    code = main(["archive", "http://127.0.0.1:9/page", "--db", str(missing)])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILURE
    assert str(missing.parent) in err and "Traceback" not in err


@pytest.mark.slow
def test_archiving_again_is_a_conditional_request_and_each_run_is_recorded(
    site: Site, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/anime/77/Validated/reviews"
    site.page(
        path, PAGE_2026.read_bytes(), etag='"v1"', last_modified="Tue, 03 Feb 2026 10:00:00 GMT"
    )
    args = ["archive", site.url(path), site.url("/private/x"), "--db", db_url, "--delay", "0"]
    assert main(args) == ExitCode.PAGE_ERRORS  # the robots-disallowed URL
    assert main(args) == ExitCode.PAGE_ERRORS
    out = capsys.readouterr().out
    assert f"{site.url(path)}: not modified since raw page 1" in out
    served = site.log.all(path)
    assert [item.header("If-None-Match") for item in served] == [None, '"v1"']
    assert served[1].header("If-Modified-Since") == "Tue, 03 Feb 2026 10:00:00 GMT"
    assert _count(db_url, "raw_pages") == 1  # the 304 stored nothing again
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            runs = connection.execute(
                sa.text(
                    "SELECT command, outcome, pages, not_modified, reviews_new, robots_skipped,"
                    " errors, finished_at FROM crawl_runs ORDER BY id"
                )
            ).all()
            checked = connection.execute(
                sa.text("SELECT last_status, raw_page_id FROM url_validators")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(run)[:7] for run in runs] == [
        ("archive", "page_errors", 1, 0, 3, 1, 1),
        ("archive", "page_errors", 1, 1, 0, 1, 1),
    ]
    assert all(run.finished_at is not None for run in runs)
    assert [tuple(row) for row in checked] == [(304, 1)]


def test_a_page_whose_records_the_database_refuses_fails_alone(
    site: Site, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review ids past 2**63 (SQLite's INTEGER; PostgreSQL's bigint) on one copy of the page.
    huge = PAGE_2026.read_text(encoding="utf-8").replace("id=90000", "id=99999999999999999999")
    site.page("/anime/91235/Huge/reviews", huge)
    urls = [site.url("/anime/91235/Huge/reviews"), site.url(ENTRY_PATH)]
    code = main(["archive", *urls, "--db", db_url, "--delay", "0"])
    err = capsys.readouterr().err
    assert _count(db_url, "reviews") >= 3  # the good page, whatever became of the other
    assert "Traceback" not in err
    if code == ExitCode.PAGE_ERRORS:
        assert urls[0] in err
        assert _count(db_url, "fetch_errors", "WHERE error = 'URLFailed'") == 1
    else:  # a store that takes such ids as text keys
        assert code == ExitCode.OK


@pytest.mark.slow
def test_block_pages_are_refusals_that_stop_the_archive(
    site: Site, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The crawl's rule: a block page is stored raw and recorded, and a second one in a
    # row from the host stops the run before the next URL is asked for.
    from standin_html import BLOCK_PAGE

    for n in (1, 2):
        site.page(f"/anime/{n}/Blocked/reviews", BLOCK_PAGE)
    urls = [site.url(f"/anime/{n}/Blocked/reviews") for n in (1, 2)] + [site.url(ENTRY_PATH)]
    code = main(["archive", *urls, "--db", db_url, "--delay", "0"])
    err = capsys.readouterr().err
    assert code == ExitCode.SITE_BLOCKED
    assert "block page" in err and "Traceback" not in err
    assert site.log.count(ENTRY_PATH) == 0
    assert _count(db_url, "fetch_errors", "WHERE raw_page_id IS NOT NULL") == 2
    assert (
        _count(db_url, "crawl_runs", "WHERE command = 'archive' AND outcome = 'site_blocked'") == 1
    )


@pytest.mark.slow
def test_archive_keeps_robots_txt_and_the_host_budget_in_the_database(
    site: Site, db_url: str
) -> None:
    # The crawl's shared store: a second run (or another process) does not ask for
    # robots.txt again, and the host's next allowed request time is in ``hosts``.
    site.files({"/anime/8/Again/reviews": PAGE_2026})
    for path in (ENTRY_PATH, "/anime/8/Again/reviews"):
        assert [item.error for item in archive([site.url(path)], db=db_url, delay=0)] == [None]
    assert len(site.log.all("/robots.txt")) == 1
    assert _count(db_url, "hosts", "WHERE robots_txt IS NOT NULL") == 1


@pytest.mark.slow
def test_a_refused_url_is_asked_again_later_as_in_a_crawl(site: Site, sqlite_url: str) -> None:
    site.sequence("/anime/6/R/reviews", [Reply.status(403), Reply(**_page_reply())])
    results = list(archive([site.url("/anime/6/R/reviews")], db=sqlite_url, delay=0, settings=FAST))
    assert results[0].report is not None and results[0].error is None
    assert len(site.log.all("/anime/6/R/reviews")) == 2
    assert _count(sqlite_url, "fetch_errors") == 1  # the refusal, recorded
    assert _count(sqlite_url, "reviews") == 3
