"""The crawl loop against the stand-in MAL site on 127.0.0.1 (tests/standin.py).

Politeness is asserted from the SERVER's request log (arrival times, paths, headers),
storage from the database itself: every page stored once, every review present.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FAST
from siteserver import Reply
from standin import (
    BLOCK_PAGE,
    StandinServer,
    StandinSite,
    age_validators,
    query,
    serve_standin,
    stored_pages,
    stored_review_ids,
)

from scraper.cli import ExitCode, main
from scraper.config import CrawlSettings
from scraper.crawl import CrawlReport, crawl
from scraper.errors import SiteBlocked, UsageError

DELAY = 0.05
LISTING = "/anime/"


def seeds(server: StandinServer, *ids: int) -> list[str]:
    return [server.standin.entry_url(server.base, "anime", mal_id) for mal_id in ids or (1, 2)]


def run(db_url: str, urls: list[str], *, delay: float = DELAY, **kwargs: object) -> CrawlReport:
    settings = CrawlSettings(delay=delay, max_refusals=kwargs.pop("max_refusals", 5))  # type: ignore[arg-type]
    for name in ("max_pages", "max_time", "concurrency", "mode", "refresh_after", "resume"):
        if name in kwargs:
            settings = settings._replace(**{name: kwargs.pop(name)})
    return crawl(db_url, urls, settings=settings, fetch_settings=FAST, **kwargs)  # type: ignore[arg-type]


def listing_requests(server: StandinServer) -> list[str]:
    return server.log.paths(LISTING)


@pytest.mark.slow
def test_every_page_of_every_chain_is_stored_once_with_every_review(
    db_url: str, server: StandinServer
) -> None:
    report = run(db_url, seeds(server))

    assert report.outcome == "success"
    assert report.pages == 5
    assert report.reviews_new == len(server.standin.review_ids()) == 70
    assert stored_review_ids(db_url) == server.standin.review_ids()
    stored = stored_pages(db_url)
    assert len(stored) == 5 and set(stored.values()) == {1}
    requested = listing_requests(server)
    assert len(requested) == len(set(requested)) == 5
    # Seeds were normalised: spoiler and preliminary reviews are never hidden.
    assert all("spoiler=on" in path and "preliminary=on" in path for path in requested)
    run_row = query(db_url, "SELECT outcome, pages, reviews_new, finished_at, pid FROM crawl_runs")
    assert [tuple(run_row[0])[:3]] == [("success", 5, 70)]
    assert run_row[0].finished_at is not None and run_row[0].pid > 0


@pytest.mark.slow
def test_robots_disallowed_urls_are_never_requested(sqlite_url: str, standin: StandinSite) -> None:
    standin.robots_txt = "User-agent: *\nDisallow: /anime/2/\n"
    with serve_standin(standin) as server:
        report = run(sqlite_url, seeds(server))
        assert not server.log.paths("/anime/2/")
        assert server.log.paths()[0] == "/robots.txt"  # before any other request
    assert report.robots_skipped == 1
    assert report.pages == 3
    errors = query(sqlite_url, "SELECT error, url FROM fetch_errors")
    assert [row.error for row in errors] == ["RobotsDisallowed"]
    assert "/anime/2/" in errors[0].url


@pytest.mark.slow
def test_an_unreadable_robots_txt_disallows_the_host_for_now(
    sqlite_url: str, server: StandinServer
) -> None:
    server.route("/robots.txt", Reply.status(503))
    report = run(sqlite_url, seeds(server, 1), max_time=1.0)
    assert server.log.paths() == ["/robots.txt"]  # nothing else was asked for
    assert report.open_urls == 1 and "--max-time" in (report.message or "")
    row = query(sqlite_url, "SELECT state, not_before, last_error FROM frontier")[0]
    assert row.state == "queued" and "robots.txt answered 503" in row.last_error
    # Asked again once the failure has run out, not at once (it would only fail again).
    retry_at = datetime.fromisoformat(str(row.not_before)).replace(tzinfo=UTC)
    assert retry_at > datetime.now(UTC) + timedelta(seconds=30)
    stored = query(sqlite_url, "SELECT robots_status, robots_txt FROM hosts")[0]
    assert (stored.robots_status, stored.robots_txt) == (503, None)  # never "allow all"


@pytest.mark.slow
def test_no_two_requests_closer_than_the_delay(sqlite_url: str, server: StandinServer) -> None:
    run(sqlite_url, seeds(server), delay=0.1)
    gaps = server.log.gaps()  # robots.txt included: it is a request to the host too
    assert len(gaps) == 5
    assert min(gaps) >= 0.1


@pytest.mark.slow
def test_the_delay_runs_between_request_starts_not_after_slow_answers(
    sqlite_url: str, server: StandinServer
) -> None:
    server.answer_delay = 0.25  # a far site: each page takes 250 ms to come back
    run(sqlite_url, seeds(server, 1), delay=0.3)
    gaps = server.log.gaps(LISTING)
    assert len(gaps) == 2
    assert min(gaps) >= 0.3
    # Counted from the starts, a gap is about 0.35 s (the delay, from at most the
    # transit allowance after the start); counted from the answers it would be 0.55 s:
    # idle time nobody asked for. The 0.2 s between them absorbs a loaded machine.
    assert max(gaps) < 0.3 + 0.25


@pytest.mark.slow
def test_worker_threads_share_the_frontier_and_the_host_budget(
    db_url: str, server: StandinServer
) -> None:
    report = run(db_url, seeds(server), delay=0.05, concurrency=3)
    assert report.pages == 5
    assert set(stored_pages(db_url).values()) == {1}
    assert stored_review_ids(db_url) == server.standin.review_ids()
    requested = listing_requests(server)
    assert len(requested) == len(set(requested)) == 5
    assert min(server.log.gaps()) >= 0.05


@pytest.mark.slow
def test_with_no_delay_threads_still_ask_a_host_one_request_at_a_time(
    db_url: str, server: StandinServer
) -> None:
    server.answer_delay = 0.03
    report = run(db_url, seeds(server), delay=0.0, concurrency=3)
    assert report.pages == 5 and set(stored_pages(db_url).values()) == {1}
    # Each request arrives only after the previous answer (30 ms) was sent.
    assert min(server.log.gaps(LISTING)) >= 0.03


@pytest.mark.slow
def test_crawl_delay_from_robots_txt_wins_over_a_shorter_delay(
    sqlite_url: str, standin: StandinSite
) -> None:
    standin.robots_txt = "User-agent: *\nCrawl-delay: 0.2\n"
    with serve_standin(standin) as server:
        run(sqlite_url, seeds(server, 2), delay=0.02)
        gaps = server.log.gaps(LISTING)
    assert len(gaps) == 1 and gaps[0] >= 0.2
    crawl_delay = query(sqlite_url, "SELECT crawl_delay FROM hosts")[0][0]
    assert crawl_delay == pytest.approx(0.2)


@pytest.mark.slow
def test_retry_after_is_honoured(sqlite_url: str, server: StandinServer) -> None:
    page2 = "/anime/1/Space_Cowboys/reviews"
    server.inject(page2, Reply.status(429, retry_after=1))
    first = seeds(server, 1)
    report = run(sqlite_url, first)
    log = server.log.all(LISTING)
    refused = next(i for i, item in enumerate(log) if item.path.startswith(page2))
    assert log[refused + 1].at - log[refused].at >= 1.0
    assert stored_review_ids(sqlite_url) == server.standin.review_ids("anime", 1)
    assert report.errors == 0


@pytest.mark.slow
def test_a_burst_of_503s_is_retried_with_backoff(sqlite_url: str, server: StandinServer) -> None:
    server.inject("/anime/2/Quiet_Harbor/reviews", *[Reply.status(503)] * 3)
    report = run(sqlite_url, seeds(server))
    assert stored_review_ids(sqlite_url) == server.standin.review_ids()
    assert set(stored_pages(sqlite_url).values()) == {1}
    assert min(server.log.gaps()) >= DELAY
    assert len(server.log.paths("/anime/2/")) == 2 + 3  # two pages, three refusals
    # The third 503 exhausted the Fetcher's attempts: recorded, then retried later.
    assert report.errors == 0
    assert [row.error for row in query(sqlite_url, "SELECT error FROM fetch_errors")] == [
        "RateLimited"
    ]


@pytest.mark.slow
def test_slow_and_truncated_responses_are_retried(sqlite_url: str, server: StandinServer) -> None:
    server.inject("/anime/1/Space_Cowboys/reviews", Reply.html("late", delay=1.0))
    server.inject("/anime/2/Quiet_Harbor/reviews", Reply.truncated("<html>cut", declared=5000))
    report = run(sqlite_url, seeds(server))
    assert report.outcome == "success"
    assert stored_review_ids(sqlite_url) == server.standin.review_ids()
    assert set(stored_pages(sqlite_url).values()) == {1}


@pytest.mark.slow
def test_redirect_loops_and_gzip_bombs_are_recorded_and_the_crawl_goes_on(
    sqlite_url: str, server: StandinServer
) -> None:
    server.route("/loop/a", Reply.redirect("/loop/b"))
    server.route("/loop/b", Reply.redirect("/loop/a"))
    server.route("/bomb", Reply.gzip_bomb())
    bad = [server.url("/loop/a"), server.url("/bomb")]
    report = run(sqlite_url, [*bad, *seeds(server)])
    assert report.outcome == "page_errors"
    assert report.errors == 2
    assert stored_review_ids(sqlite_url) == server.standin.review_ids()
    errors = {row.error for row in query(sqlite_url, "SELECT error FROM fetch_errors")}
    assert errors == {"TooManyRedirects", "BodyTooLarge"}


@contextmanager
def blocking(standin: StandinSite, *paths: str) -> Iterator[StandinServer]:
    """The stand-in site with a third entry, answering *paths* with block pages."""
    standin.add_entry("anime", 3, "Third", "Third", reviews=3)
    with serve_standin(standin) as server:
        for path in paths:
            server.inject(path, *[Reply.html(BLOCK_PAGE)] * 9)
        yield server


@pytest.mark.slow
def test_a_second_block_page_in_a_row_stops_the_crawl_and_no_blocked_url_is_asked_again(
    sqlite_url: str, standin: StandinSite
) -> None:
    paths = ("/anime/1/Space_Cowboys/reviews", "/anime/2/Quiet_Harbor/reviews")
    with blocking(standin, *paths) as server:
        with pytest.raises(SiteBlocked, match="served 2 block page"):
            run(sqlite_url, seeds(server, 1, 2, 3), delay=0.02)
        assert len(server.log.paths(LISTING)) == 2  # one block page each, then the stop
        assert not server.log.paths("/anime/3/")
        # The resumed crawl goes on with the third seed and never asks the blocked two.
        report = run(sqlite_url, seeds(server, 1, 2, 3), delay=0.02)
        assert len(server.log.paths("/anime/1/")) == len(server.log.paths("/anime/2/")) == 1
        assert len(server.log.paths("/anime/3/")) == 1
    assert report.pages == 1 and report.outcome == "success"
    rows = query(sqlite_url, "SELECT url, state, last_error FROM frontier ORDER BY id")
    assert [row.state for row in rows] == ["failed", "failed", "done"]
    assert all("block page" in row.last_error for row in rows[:2])
    errors = query(sqlite_url, "SELECT url, raw_page_id FROM fetch_errors ORDER BY id")
    assert len(errors) == 2 and all(row.raw_page_id is not None for row in errors)  # kept raw
    run_row = query(sqlite_url, "SELECT outcome FROM crawl_runs ORDER BY id")[0]
    assert run_row.outcome == "site_blocked"


@pytest.mark.slow
def test_block_pages_between_good_pages_fail_those_urls_only(
    sqlite_url: str, standin: StandinSite
) -> None:
    with blocking(standin, "/anime/1/Space_Cowboys/reviews", "/anime/3/Third/reviews") as server:
        report = run(sqlite_url, seeds(server, 1, 2, 3), delay=0.02, max_refusals=4)
        assert len(server.log.paths("/anime/1/")) == 1
    assert report.outcome == "page_errors" and report.errors == 2
    assert len(report.failures) == 2 and all("block page" in line for line in report.failures)
    states = [row.state for row in query(sqlite_url, "SELECT state FROM frontier ORDER BY id")]
    assert states == ["failed", "done", "failed", "done"]  # entry 2: both its pages


@pytest.mark.slow
def test_urls_leased_ahead_are_given_back_when_the_crawl_stops(
    sqlite_url: str, standin: StandinSite
) -> None:
    standin.add_entry("anime", 3, "Third", "Third", reviews=3)
    with serve_standin(standin) as server:
        for path in ("/anime/1/Space_Cowboys/reviews", "/anime/2/Quiet_Harbor/reviews"):
            server.inject(path, *[Reply.status(403)] * 5)
        # --delay 0 leases the three seeds at once; the second 403 stops the crawl.
        with pytest.raises(SiteBlocked):
            run(sqlite_url, seeds(server, 1, 2, 3), delay=0.0, max_refusals=2)
        assert not server.log.paths("/anime/3/")
    rows = query(sqlite_url, "SELECT url, state, attempts FROM frontier ORDER BY id")
    assert [row.state for row in rows] == ["queued"] * 3  # nothing left leased
    assert "/anime/3/" in rows[2].url and rows[2].attempts == 0  # its lease did not count


@pytest.mark.slow
def test_a_blocked_crawl_exits_with_code_4(
    tmp_path: Path, server: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every URL refused: five refusals in a row stop the crawl (one URL refused
    # again and again is given up on after max_url_attempts, with exit code 3).
    for path in ("/anime/1/Space_Cowboys/reviews", "/anime/2/Quiet_Harbor/reviews"):
        server.inject(path, *[Reply.status(403)] * 9)
    args = ["crawl", *seeds(server, 1, 2), "--db", str(tmp_path / "r.db"), "--delay", "0.01"]
    assert main(args) == ExitCode.SITE_BLOCKED
    assert "stopped by the site" in capsys.readouterr().err


@pytest.mark.slow
def test_unchanged_pages_come_back_as_304_and_are_not_stored_again(
    db_url: str, server: StandinServer
) -> None:
    run(db_url, seeds(server))
    before = stored_pages(db_url)
    second = run(db_url, seeds(server))
    assert second.not_modified == second.pages == 5
    assert second.reviews_new == second.reviews_unchanged == 0
    assert stored_pages(db_url) == before
    conditional = server.log.all(LISTING)[5:]
    assert len(conditional) == 5
    assert all(item.header("If-None-Match") for item in conditional)
    statuses = {row[0] for row in query(db_url, "SELECT last_status FROM url_validators")}
    assert statuses == {304}


@pytest.mark.slow
def test_incremental_mode_stops_at_the_first_page_holding_a_stored_review(
    sqlite_url: str, server: StandinServer
) -> None:
    run(sqlite_url, seeds(server, 1), mode="incremental", job="nightly")
    assert [row.job for row in query(sqlite_url, "SELECT job FROM crawl_runs")] == ["nightly"]
    assert len(listing_requests(server)) == 3
    added = server.standin.add_review("anime", 1)
    report = run(sqlite_url, seeds(server, 1), mode="incremental")
    assert report.reviews_new == 1
    assert added.id in stored_review_ids(sqlite_url)
    # Page 1 (newest first) held the new review next to stored ones: nothing older
    # can be new, so page 2 is never asked for.
    later = listing_requests(server)[3:]
    assert len(later) == 1
    assert "sort=newest" in later[0] and "p=" not in later[0]


@pytest.mark.slow
def test_incremental_mode_follows_the_chain_while_every_review_is_new(
    sqlite_url: str, server: StandinServer
) -> None:
    run(sqlite_url, seeds(server, 2), mode="incremental")
    assert len(listing_requests(server)) == 2
    for _ in range(site_page := server.standin.per_page):
        server.standin.add_review("anime", 2)
    report = run(sqlite_url, seeds(server, 2), mode="incremental")
    # Page 1 is all new: page 2 may hold more new ones and is read; it shows stored
    # reviews, so page 3 is not.
    assert report.reviews_new == site_page
    assert len(listing_requests(server)) == 2 + 2
    assert stored_review_ids(sqlite_url) == server.standin.review_ids("anime", 2)


@pytest.mark.slow
def test_incremental_mode_asks_for_its_seeds_and_rechecks_only_stale_pages(
    db_url: str, server: StandinServer
) -> None:
    run(db_url, seeds(server), mode="incremental")
    assert len(listing_requests(server)) == 5
    added = server.standin.add_review("anime", 2)
    # Checked a moment ago, yet the seeds are asked for (conditionally): a new
    # review is found at once, not a refresh period later.
    report = run(db_url, seeds(server), mode="incremental", refresh_after=3600.0)
    assert added.id in stored_review_ids(db_url) and report.rechecks == 0
    later = server.log.all(LISTING)[5:]
    assert len(later) == 2 and all("p=" not in item.path for item in later)
    assert all(item.header("If-None-Match") for item in later)

    # Once every stored page is stale, each is asked for once, conditionally, in
    # the same crawl; nothing is stored twice.
    age_validators(db_url, timedelta(days=2))
    mark = len(server.log.all(LISTING))
    report = run(db_url, seeds(server), mode="incremental", refresh_after=3600.0)
    stored_urls = query(db_url, "SELECT url FROM url_validators")
    assert report.rechecks == len(stored_urls) - 2 == 3
    later = server.log.all(LISTING)[mark:]
    assert len(later) == len({item.path for item in later}) == len(stored_urls)
    assert all(item.header("If-None-Match") for item in later)
    assert report.not_modified == 4  # all but entry 2's page 2 (its new review moved one)
    assert stored_review_ids(db_url) == server.standin.review_ids()
    runs = query(db_url, "SELECT COUNT(*) FROM crawl_runs")
    assert runs[0][0] == 3  # one run each, the re-checks included


@pytest.mark.slow
def test_refresh_after_leaves_recently_checked_pages_alone(
    sqlite_url: str, server: StandinServer
) -> None:
    run(sqlite_url, seeds(server))
    report = run(sqlite_url, seeds(server), refresh_after=3600.0)
    assert len(listing_requests(server)) == 5  # nothing asked again
    assert report.pages == 0
    skipped = query(sqlite_url, "SELECT state, last_error FROM frontier")
    assert len(skipped) == 5
    assert {row.state for row in skipped} == {"skipped"}


@pytest.mark.slow
def test_max_pages_stops_and_the_same_command_continues(
    sqlite_url: str, server: StandinServer
) -> None:
    first = run(sqlite_url, seeds(server), max_pages=2)
    assert first.pages == 2 and first.open_urls > 0
    assert "--max-pages" in (first.message or "")
    second = run(sqlite_url, seeds(server))
    assert second.pages == 3
    assert stored_review_ids(sqlite_url) == server.standin.review_ids()
    requested = listing_requests(server)
    assert len(requested) == len(set(requested)) == 5


def test_bad_seeds_and_settings_are_usage_errors(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=r"ftp://example\.org"):
        run(sqlite_url, ["ftp://example.org/x"])
    with pytest.raises(UsageError, match=r"^delay must be zero or more") as refused:
        run(sqlite_url, ["http://127.0.0.1:9/x"], delay=-1)
    assert refused.value.parameter == "delay"  # the CLI says --delay
    with pytest.raises(UsageError, match="mode"):
        run(sqlite_url, ["http://127.0.0.1:9/x"], mode="sideways")
    assert main(["crawl", "not a url", "--db", sqlite_url]) == ExitCode.USAGE
    assert "bad URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["crawl", "http://127.0.0.1:9/x", "--max-pages", "0"])
    assert info.value.code == ExitCode.USAGE


@pytest.mark.slow
def test_the_cli_crawls_and_prints_a_summary(
    tmp_path: Path, server: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    assert main(["crawl", *seeds(server), "--db", db, "--delay", "0.01"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.count("stored http://") == 5
    assert "5 pages" in out and "70 new" in out
    # --resume with no URL and nothing unfinished is a usage error, said plainly.
    assert main(["crawl", "--resume", "--db", db]) == ExitCode.USAGE
    assert "no unfinished crawl" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_without_urls_continues_the_last_unfinished_crawl(
    tmp_path: Path, server: StandinServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    first = ["crawl", *seeds(server), "--db", db, "--delay", "0.01", "--max-pages", "2"]
    assert main(first) == ExitCode.OK
    assert "URLs left: run the same command again" in capsys.readouterr().out
    assert main(["crawl", "--resume", "--db", db, "--delay", "0.01"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "resuming the crawl of 2 seed URL(s)" in captured.err
    assert "3 pages" in captured.out
    requested = listing_requests(server)
    assert len(requested) == len(set(requested)) == 5
    assert stored_review_ids(f"sqlite:///{db}") == server.standin.review_ids()
