"""``reviews run`` and ``reviews runs`` from outside (subprocesses), against the
stand-in MAL site on 127.0.0.1, on a SQLite file and on PostgreSQL.

What a site owner would check is read from the server's own request log; what the
archive holds, from the database itself.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from standin import StandinServer, StandinSite, age_validators, serve_standin

from scraper.jobs.config import load_jobs
from scraper.jobs.history import last_started
from scraper.jobs.locks import JobLock
from scraper.jobs.loop import ChildRunner, Scheduler
from scraper.store.engine import open_engine

# Every test here runs `reviews` in a subprocess (a fresh interpreter each time).
pytestmark = pytest.mark.slow

REVIEWS = [sys.executable, "-m", "scraper"]
LISTING = "/anime/"


@pytest.fixture
def server() -> Iterator[StandinServer]:
    site = StandinSite()
    site.add_entry("anime", 1, "Space_Cowboys", "Space Cowboys", reviews=45)  # 3 pages
    site.add_entry("anime", 2, "Quiet_Harbor", "Quiet Harbor", reviews=25)  # 2 pages
    with serve_standin(site) as running:
        yield running


def write_jobs(tmp_path: Path, server: StandinServer, db_url: str, extra: str = "") -> Path:
    seeds = [server.standin.entry_url(server.base, "anime", mal_id) for mal_id in (1, 2)]
    path = tmp_path / "reviews.toml"
    path.write_text(
        f'[jobs.daily]\nseeds = {seeds!r}\nmode = "incremental"\ndelay = 0\n'
        f'refresh_after = "7d"\ndb = "{db_url}"\nschedule = "@daily"\n'
        f'log_file = "logs/daily.log"\n{extra}',
        encoding="utf-8",
    )
    return path


def reviews(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REVIEWS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def query(db_url: str, sql: str) -> list[sa.Row[tuple[object, ...]]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def review_ids(db_url: str) -> list[int]:
    return [int(row[0]) for row in query(db_url, "SELECT key FROM reviews")]


def requests_per_entry(server: StandinServer, since: int) -> dict[str, list[str]]:
    paths = server.log.paths(LISTING)[since:]
    return {
        entry: [path for path in paths if path.startswith(f"/anime/{entry}/")]
        for entry in ("1", "2")
    }


def test_consecutive_runs_find_new_reviews_cheaply_and_store_nothing_twice(
    db_url: str, server: StandinServer, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path, server, db_url)
    site = server.standin

    first = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(review_ids(db_url)) == sorted(site.review_ids())  # everything stored
    mark = len(server.log.paths(LISTING))
    assert mark == 5  # 3 + 2 pages, each once

    # Nothing changed: one conditional request per entry, for its newest page.
    second = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    later = server.log.all(LISTING)[mark:]
    assert len(later) == 2
    assert {item.path.split("/")[2] for item in later} == {"1", "2"}
    assert all("sort=newest" in item.path and "p=" not in item.path for item in later)
    assert all(item.header("If-None-Match") for item in later)
    assert len(review_ids(db_url)) == len(site.review_ids())

    # A new review: picked up; the other entry still costs one request.
    added = site.add_review("anime", 2)
    mark = len(server.log.paths(LISTING))
    third = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    ids = review_ids(db_url)
    assert added.id in ids and len(ids) == len(set(ids)) == len(site.review_ids())
    # One listing request per entry: page 1 held the new review next to stored ones.
    per_entry = requests_per_entry(server, mark)
    assert [len(per_entry["1"]), len(per_entry["2"])] == [1, 1]
    assert all("p=" not in paths[0] for paths in per_entry.values())

    # A week later: the seeds plus the stored pages beyond them, stale now, each
    # asked for once and conditionally, in one crawl; nothing is duplicated.
    age_validators(db_url, timedelta(days=8))
    mark = len(server.log.paths(LISTING))
    fourth = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert fourth.returncode == 0, fourth.stderr
    later = server.log.all(LISTING)[mark:]
    stored = {str(row[0]) for row in query(db_url, "SELECT url FROM url_validators")}
    assert len(stored) == 5
    assert len(later) == len(stored) == len({item.path for item in later})
    assert all(item.header("If-None-Match") for item in later)
    assert sorted(review_ids(db_url)) == sorted(site.review_ids())

    runs = reviews("runs", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    lines = runs.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "job", "started"]
    # Four job runs, one crawl each (the stale re-checks ride along in the fourth).
    assert len(lines) == 1 + 4
    assert all(" daily " in line and "success" in line for line in lines[1:])
    assert not any(line.startswith("!") for line in lines)
    log_text = (tmp_path / "logs" / "daily.log").read_text()
    assert log_text.count("reviews run daily") >= 4
    assert "re-checked 3 stale page(s) conditionally" in log_text


def test_a_second_concurrent_run_is_refused_with_exit_5(
    db_url: str, server: StandinServer, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path, server, db_url)
    engine = open_engine(db_url)
    try:
        with JobLock(engine, "daily", owner="elsewhere:4242:cafe"):
            refused = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    finally:
        engine.dispose()
    assert refused.returncode == 5
    assert "already running" in refused.stderr and "elsewhere:4242:cafe" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert server.log.paths(LISTING) == []  # the site never heard of the refused run
    assert "elsewhere:4242:cafe" in (tmp_path / "logs" / "daily.log").read_text()


def test_two_runs_started_together_one_is_refused(
    db_url: str, server: StandinServer, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path, server, db_url)
    command = [*REVIEWS, "run", "daily", "--jobs", str(jobs)]
    with subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) as first:
        # The first run waits on its first listing page until the second has tried:
        # however slowly the second starts, the first is still running (and locked).
        with server.holding(LISTING):
            deadline = time.monotonic() + 30
            while not server.log.paths(LISTING) and time.monotonic() < deadline:
                time.sleep(0.02)  # the first run holds the lock once it crawls
            second = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
        assert first.wait(timeout=60) == 0
    assert second.returncode == 5
    assert "job 'daily' is already running: lock held by" in second.stderr
    requested = server.log.paths(LISTING)
    assert len(requested) == len(set(requested)) == 5  # the refused run fetched nothing


def test_a_lock_left_by_a_killed_run_is_taken_over(
    sqlite_url: str, server: StandinServer, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path, server, sqlite_url)
    engine = open_engine(sqlite_url)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    JobLock(engine, "daily", owner="killed:1:dead", ttl=300, clock=lambda: long_ago).acquire()
    engine.dispose()
    done = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "took over the lock" in done.stderr and "killed:1:dead" in done.stderr
    assert query(sqlite_url, "SELECT owner FROM job_locks") == []  # released at the end
    assert len(review_ids(sqlite_url)) == len(server.standin.review_ids())


def test_sigterm_closes_the_run_as_interrupted_and_frees_the_lock(
    sqlite_url: str, server: StandinServer, tmp_path: Path
) -> None:
    jobs = write_jobs(tmp_path, server, sqlite_url, extra="")
    jobs.write_text(jobs.read_text().replace("delay = 0", "delay = 0.5"))
    with subprocess.Popen(
        [*REVIEWS, "run", "daily", "--jobs", str(jobs)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        deadline = time.monotonic() + 30
        while not server.log.paths(LISTING) and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 130
        assert child.stderr is not None
        stderr = child.stderr.read()
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert len(server.log.paths(LISTING)) < 5
    assert query(sqlite_url, "SELECT owner FROM job_locks") == []
    assert [row[0] for row in query(sqlite_url, "SELECT outcome FROM crawl_runs")] == [
        "interrupted"
    ]


def test_failed_runs_stand_out(sqlite_url: str, tmp_path: Path) -> None:
    with serve_standin(StandinSite()) as server:
        server.standin.add_entry("anime", 1, "A", "A", reviews=3)
        server.standin.add_entry("anime", 2, "B", "B", reviews=3)
        jobs = write_jobs(tmp_path, server, sqlite_url)
        server.standin.entries.pop(("anime", 2))  # its listing now answers 404
        done = reviews("run", "daily", "--jobs", str(jobs), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    runs = reviews("runs", "--db", sqlite_url, cwd=tmp_path)
    line = runs.stdout.splitlines()[1]
    assert line.startswith("!") and "page_errors" in line
    # On a terminal: a table, the failed run in bold red.
    on_terminal = on_a_terminal("runs", "--db", sqlite_url, cwd=tmp_path)
    assert "\x1b[1;31m" in on_terminal and "page_errors" in on_terminal
    assert "!" not in on_terminal.replace("\x1b", "")


def on_a_terminal(*args: str, cwd: Path) -> str:
    """Run ``reviews`` with its stdout on a pseudo-terminal; return what it showed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    with subprocess.Popen(
        [*REVIEWS, *args], cwd=cwd, stdout=follower, stderr=subprocess.PIPE, env=env
    ) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=60) == 0
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_unknown_job_and_missing_jobs_file_are_usage_errors(tmp_path: Path) -> None:
    missing = reviews("run", "daily", cwd=tmp_path)
    assert missing.returncode == 2 and "jobs file not found" in missing.stderr
    (tmp_path / "reviews.toml").write_text('[jobs.a]\nseeds = ["http://127.0.0.1:9/"]\n')
    unknown = reviews("run", "daily", cwd=tmp_path)
    assert unknown.returncode == 2 and "no job named 'daily' (jobs: a)" in unknown.stderr
    nowhere = reviews("runs", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert nowhere.returncode == 1 and "no database at" in nowhere.stderr
    assert not (tmp_path / "x.db").exists()  # reading the history creates nothing
    open_engine(f"sqlite:///{tmp_path / 'y.db'}").dispose()
    empty = reviews("runs", "--db", str(tmp_path / "y.db"), cwd=tmp_path)
    assert empty.returncode == 0 and "no runs recorded yet" in empty.stderr


def test_the_loop_runs_a_due_job_in_a_child_and_then_remembers_it(
    server: StandinServer, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'new.db'}"  # no database there yet
    jobs = load_jobs(write_jobs(tmp_path, server, sqlite_url))
    now = datetime.now().astimezone()
    assert last_started(sqlite_url, "daily") is None
    assert not (tmp_path / "new.db").exists()  # asking created no database
    loop = Scheduler(
        jobs,
        runner=ChildRunner(jobs),
        clock=lambda: now,
        last_start=lambda job: now - timedelta(days=2),
    )
    assert loop.tick() == [("daily", 0)]  # missed while down: caught up once
    assert len(review_ids(sqlite_url)) == len(server.standin.review_ids())
    started = last_started(sqlite_url, "daily")
    assert started is not None and abs((started - datetime.now(UTC)).total_seconds()) < 60
    # A loop started afterwards reads the last start from the database: nothing due.
    restarted = Scheduler(jobs, runner=ChildRunner(jobs), clock=lambda: now + timedelta(minutes=1))
    assert restarted.last["daily"] == started
    assert restarted.due(now + timedelta(minutes=1)) == []
