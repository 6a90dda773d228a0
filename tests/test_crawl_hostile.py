"""The crawl against hostile pages and servers: no URL can stop it, no server can hold
it, no answer can poison the host's schedule (issue 11).

Run on a real SQLite file and a real PostgreSQL schema; what the site received is
read from its own request log, what the crawl did from the database.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from conftest import HOSTILE
from siteserver import ARRIVAL_JITTER, Reply, serve
from standin import StandinServer, StandinSite, query, serve_standin, stored_review_ids

from scraper.cli import ExitCode, main
from scraper.config import CrawlSettings, FetchSettings
from scraper.crawl import CrawlReport, crawl
from scraper.errors import SiteBlocked

FAST = HOSTILE._replace(backoff_initial=0.05, backoff_max=0.2, max_attempts=2)
DELAY = 0.02


def entry(server: StandinServer, mal_id: int) -> str:
    return server.standin.entry_url(server.base, "anime", mal_id)


def run(
    db_url: str,
    urls: list[str],
    *,
    settings: CrawlSettings | None = None,
    fetch: FetchSettings = FAST,
) -> CrawlReport:
    chosen = settings or CrawlSettings(delay=DELAY)
    return crawl(db_url, urls, settings=chosen, fetch_settings=fetch)


def good_ids(server: StandinServer) -> set[int]:
    return server.standin.review_ids("anime", 1) | server.standin.review_ids("anime", 2)


# --- poison URLs ------------------------------------------------------------------------


@pytest.mark.slow
def test_poison_urls_end_themselves_and_every_good_url_is_archived(
    db_url: str, standin: StandinSite
) -> None:
    # A review id past 2**63 (SQLite's INTEGER), an entry id past 2**31 (a 32-bit
    # column on PostgreSQL), and redirects to URLs nobody can request.
    standin.add_entry("anime", 3, "Huge_Review", "Huge Review", reviews=0)
    standin.add_review("anime", 3, id=2**63 + 5)
    standin.add_entry("anime", 2**31 + 7, "Huge_Entry", "Huge Entry", reviews=2)
    with serve_standin(standin) as server:
        server.route("/go/script", Reply.redirect("javascript:alert(1)"))
        server.route("/go/idna", Reply.redirect("http://xn--/"))
        server.route("/go/port", Reply.redirect("http://[::1/"))
        poison = [entry(server, 3), entry(server, 2**31 + 7)]
        redirects = [server.url(path) for path in ("/go/script", "/go/idna", "/go/port")]
        seeds = [*poison, *redirects, entry(server, 1), entry(server, 2)]
        report = run(db_url, seeds)
        assert good_ids(server) <= stored_review_ids(db_url)
        # A re-run (a new crawl: the last one finished) ends as well.
        again = run(db_url, seeds)
        assert again.outcome == report.outcome
        for url in redirects:
            assert len(server.log.paths(url.removeprefix(server.base))) == 2  # once per run
    rows = {row.url: row for row in query(db_url, "SELECT url, state, attempts FROM frontier")}
    errors = query(db_url, "SELECT url, error, raw_page_id FROM fetch_errors")
    failed = {row.url for row in errors}
    assert report.outcome == "page_errors"
    for url in redirects:
        assert rows[url].state == "failed" and url in failed
    assert {row.error for row in errors if row.url in redirects} == {"BadURL"}
    for url, row in rows.items():
        assert row.state in ("done", "failed") and row.attempts == 1, url
        if row.state == "failed":
            assert url in failed
    # A page whose records the database refused is kept raw, named in its error.
    for row in errors:
        if row.url not in redirects:
            assert row.raw_page_id is not None and row.error == "URLFailed"
    assert len(report.failures) == report.errors and report.errors >= 3


@pytest.mark.slow
def test_failed_urls_are_each_named_on_stderr_and_the_exit_code_is_3(
    tmp_path: object, server: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.route("/go/script", Reply.redirect("javascript:alert(1)"))
    server.route("/gone", Reply.status(404))
    bad = [server.url("/go/script"), server.url("/gone")]
    args = ["crawl", *bad, entry(server, 2), "--db", f"{tmp_path}/r.db", "--delay", "0.01"]
    assert main(args) == ExitCode.PAGE_ERRORS
    err = capsys.readouterr().err.splitlines()
    for url in bad:
        named = [line for line in err if url in line]
        assert len(named) == 1 and named[0].startswith("reviews crawl: failed: "), err


@pytest.mark.slow
def test_a_url_leased_again_and_again_is_given_up_on_without_a_request(
    sqlite_url: str, server: StandinServer
) -> None:
    seeds = [entry(server, 2)]  # two pages
    first = run(sqlite_url, seeds, settings=CrawlSettings(delay=DELAY, max_pages=1))
    assert first.open_urls == 1
    # As if every run since had been killed on page 2 (kill -9, out of memory).
    import sqlalchemy as sa

    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE frontier SET attempts = 6 WHERE state = 'queued'"))
    engine.dispose()
    report = run(sqlite_url, seeds, settings=CrawlSettings(delay=DELAY, max_url_leases=6))
    assert not [path for path in server.log.paths("/anime/2/") if "p=2" in path]  # never asked
    assert report.errors == 1 and "given up after 6 attempts" in report.failures[0]
    rows = query(sqlite_url, "SELECT state FROM frontier ORDER BY id")
    assert [row.state for row in rows] == ["done", "failed"]
    assert query(sqlite_url, "SELECT error FROM fetch_errors")[0].error == "URLFailed"


# --- Retry-After and Crawl-delay -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", ["100000", "Fri, 01 Jan 2100 00:00:00 GMT"])
def test_a_far_future_retry_after_stops_the_crawl_and_is_never_stored(
    db_url: str, server: StandinServer, retry_after: str
) -> None:
    server.inject("/anime/1/Space_Cowboys/reviews", Reply.status(429, retry_after=retry_after))
    began = time.monotonic()
    with pytest.raises(SiteBlocked, match="more than the 600 s we wait"):
        run(db_url, [entry(server, 1), entry(server, 2)])
    assert time.monotonic() - began < 5.0  # nothing was waited for
    assert not server.log.paths("/anime/2/")
    horizon = time.time() + FAST.max_retry_after + 5
    hosts = query(db_url, "SELECT next_request_at FROM hosts")
    assert all(row.next_request_at <= horizon for row in hosts)
    for row in query(db_url, "SELECT not_before FROM frontier WHERE not_before IS NOT NULL"):
        when = row.not_before
        when = datetime.fromisoformat(when) if isinstance(when, str) else when
        assert when.replace(tzinfo=UTC).timestamp() <= horizon


@pytest.mark.slow
def test_a_far_future_retry_after_exits_with_code_4_and_says_why(
    tmp_path: object, server: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.inject("/anime/2/Quiet_Harbor/reviews", Reply.status(503, retry_after="100000"))
    args = ["crawl", entry(server, 2), "--db", f"{tmp_path}/r.db", "--delay", "0.01"]
    assert main(args) == ExitCode.SITE_BLOCKED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "asks us to wait 100000 s" in err[0]


@pytest.mark.slow
def test_an_absurd_next_request_time_stored_by_an_older_run_is_ignored(
    db_url: str, server: StandinServer
) -> None:
    run(db_url, [entry(server, 2)])
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the year 2100, as an older version could store it
        conn.execute(sa.text("UPDATE hosts SET next_request_at = 4102444800"))
    engine.dispose()
    began = time.monotonic()
    report = run(db_url, [entry(server, 2)])
    assert time.monotonic() - began < 5.0
    assert report.pages == 2
    stored = query(db_url, "SELECT next_request_at FROM hosts")
    assert all(row[0] < time.time() + 60 for row in stored)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_the_first_request_after_robots_txt_keeps_its_crawl_delay(
    db_url: str, standin: StandinSite, delay: float
) -> None:
    standin.robots_txt = "User-agent: *\nCrawl-delay: 0.4\n"
    with serve_standin(standin) as server:
        run(db_url, [entry(server, 2)], settings=CrawlSettings(delay=delay))
        gaps = server.log.gaps("/")
        assert server.log.paths()[0] == "/robots.txt"
    assert len(gaps) == 2 and min(gaps) >= 0.4 - ARRIVAL_JITTER


@pytest.mark.slow
def test_an_absurd_crawl_delay_is_capped(sqlite_url: str, standin: StandinSite) -> None:
    standin.robots_txt = "User-agent: *\nCrawl-delay: 100000\n"
    with serve_standin(standin) as server:
        began = time.monotonic()
        report = run(sqlite_url, [entry(server, 2)], fetch=FAST._replace(max_crawl_delay=0.3))
        assert time.monotonic() - began < 3.0
        assert min(server.log.gaps("/")) >= 0.3 - ARRIVAL_JITTER
    assert report.pages == 2


# --- stalls -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_crawl_against_a_closed_port_fails_quickly_and_clearly(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/anime/9/X/reviews"
        began = time.monotonic()
        code = main(["crawl", url, "--db", f"{tmp_path}/r.db", "--delay", "0.01"])
        elapsed = time.monotonic() - began
    assert code == ExitCode.PAGE_ERRORS
    assert elapsed < 5.0
    err = capsys.readouterr().err
    assert "connection refused" in err and "127.0.0.1" in err


@pytest.mark.slow
def test_servers_that_drip_or_hang_hold_their_url_only_for_its_deadlines(
    sqlite_url: str, server: StandinServer
) -> None:
    server.route("/drip", Reply.dripping_headers(every=0.05))
    server.route("/hang", Reply.html("<p>late</p>").slow(30.0))
    server.route("/trickle", Reply.trickling("<p>" + "x" * 400, every=0.05))
    bad = [server.url(path) for path in ("/drip", "/hang", "/trickle")]
    settings = CrawlSettings(delay=DELAY, max_url_attempts=2)
    began = time.monotonic()
    report = run(sqlite_url, [*bad, entry(server, 1)], settings=settings)
    # Each bad URL: 2 leases x 2 attempts x the 1 s deadline, plus short backoffs.
    assert time.monotonic() - began < 3 * 2 * 2 * 1.0 + 6
    assert server.standin.review_ids("anime", 1) <= stored_review_ids(sqlite_url)
    assert report.errors == 3
    states = {row.url: row.state for row in query(sqlite_url, "SELECT url, state FROM frontier")}
    assert all(states[url] == "failed" for url in bad)


# --- pacing with slow answers ---------------------------------------------------------------


class SlowStandin(StandinServer):
    """The stand-in site answering every listing after ``ANSWER`` seconds."""

    def _answer(self, path: str, headers: Mapping[str, str]) -> Reply:
        reply = super()._answer(path, headers)
        return reply.slow(ANSWER) if path.startswith("/anime/") else reply


ANSWER = 1.0


@pytest.mark.slow
def test_pages_are_stored_while_the_next_is_fetched_so_slow_answers_set_the_pace(
    sqlite_url: str, standin: StandinSite
) -> None:
    # Answers take as long as the delay: each page's parsing and storing must overlap
    # the next request, not add to it: the requests keep within max(d, answer) + 5 %
    # of each other, as the site sees them (before: answer + the page's processing).
    # SQLite only: on PostgreSQL the worker's three transactions a page, sharing the
    # GIL with the store of the page before, still add 4-8 % under load (README).
    server = SlowStandin(standin)
    server.robots(standin.robots_txt)
    with serve(server):
        settings = CrawlSettings(delay=ANSWER)
        patient = FAST._replace(timeouts=FAST.timeouts._replace(read=5.0, total=5.0))
        seeds = [entry(server, 1), entry(server, 2)]
        report = run(sqlite_url, seeds, settings=settings, fetch=patient)
        arrivals = [item.at for item in server.log.all("/anime/")]
        gaps = server.log.gaps("/")
    assert report.pages == 5
    assert min(gaps) >= ANSWER - ARRIVAL_JITTER
    span = arrivals[-1] - arrivals[0]
    assert span <= (len(arrivals) - 1) * ANSWER * 1.05


@pytest.mark.slow
def test_a_url_refused_every_time_is_given_up_on_and_the_crawl_goes_on(
    sqlite_url: str, server: StandinServer
) -> None:
    server.route("/always-busy", Reply.status(503))
    settings = CrawlSettings(delay=DELAY, max_url_attempts=2)
    report = run(sqlite_url, [server.url("/always-busy"), entry(server, 1)], settings=settings)
    assert server.standin.review_ids("anime", 1) <= stored_review_ids(sqlite_url)
    url = server.url("/always-busy")
    sql = f"SELECT state, attempts, last_error FROM frontier WHERE url = '{url}'"
    row = query(sqlite_url, sql)[0]
    assert (row.state, row.attempts) == ("failed", 2) and "given up" in row.last_error
    assert report.outcome == "page_errors" and report.errors == 1


@pytest.mark.slow
def test_an_absurd_retry_time_stored_on_a_queued_url_is_ignored_on_resume(
    db_url: str, server: StandinServer
) -> None:
    seeds = [entry(server, 2)]
    run(db_url, seeds, settings=CrawlSettings(delay=DELAY, max_pages=1))
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # as an older version stored a Retry-After of 2100
        conn.execute(
            sa.text("UPDATE frontier SET not_before = :when WHERE state = 'queued'"),
            {"when": datetime(2100, 1, 1, tzinfo=UTC)},
        )
    engine.dispose()
    began = time.monotonic()
    report = run(db_url, seeds)
    assert time.monotonic() - began < 5.0
    assert report.pages == 1 and report.open_urls == 0
