"""The jobs file: a good file read in full, and every kind of mistake named by file,
job and key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scraper.config import USER_AGENT
from scraper.errors import ConfigError
from scraper.jobs.config import load_jobs, next_runs, parse_duration

GOOD = """\
db = "archive.db"

[jobs.daily]
seeds = ["https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"]
mode = "incremental"
delay = "3s"
max_pages = 200
max_time = "1h"
refresh_after = "7d"
schedule = "30 4 * * *"
log_file = "logs/daily.log"

[jobs.full-weekly]
seeds = ["https://myanimelist.net/reviews.php?t=anime", "http://127.0.0.1:8000/anime/1/x/reviews"]
mode = "full"
delay = 0
user_agent = "my-archiver/1.0 (+mailto:me@example.org)"
db = "postgresql+psycopg://me@db.example/reviews"
schedule = "@weekly"
"""


def write(tmp_path: Path, text: str, name: str = "reviews.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_good_file_is_read_in_full(tmp_path: Path) -> None:
    jobs = load_jobs(write(tmp_path, GOOD))
    assert [job.name for job in jobs.jobs] == ["daily", "full-weekly"]
    daily = jobs.get("daily")
    assert daily.seeds == ("https://myanimelist.net/anime/1/Cowboy_Bebop/reviews",)
    assert daily.mode == "incremental"
    assert (daily.delay, daily.max_pages, daily.max_time) == (3.0, 200, 3600.0)
    assert daily.refresh_after == 7 * 86400
    assert daily.schedule == "30 4 * * *"
    # Relative paths are read from the jobs file's folder, whatever the current folder.
    assert daily.db == f"sqlite:///{tmp_path / 'archive.db'}"
    assert daily.log_file == tmp_path / "logs" / "daily.log"
    assert daily.user_agent == USER_AGENT
    assert daily.crawl_settings().delay == 3.0 and daily.crawl_settings().max_pages == 200
    weekly = jobs.get("full-weekly")
    assert weekly.mode == "full" and weekly.delay == 0.0 and weekly.refresh_after is None
    assert weekly.db == "postgresql+psycopg://me@db.example/reviews"
    assert weekly.fetch_settings().user_agent.startswith("my-archiver/1.0")
    assert weekly.schedule == "@weekly" and weekly.log_file is None


@pytest.mark.slow
def test_jobs_check_says_what_each_job_does_without_the_password(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("me@db.example", "me:s3cret@db.example"))
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "jobs", "check", "--jobs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"{path}: 2 jobs, all valid")
    assert "job daily" in out and "job full-weekly" in out
    assert "incremental (newest first" in out and "full (every page" in out
    assert "at most 200 pages, at most 1h" in out
    assert "older than 1w are re-checked" in out
    assert f"database:   {tmp_path / 'archive.db'}" in out
    assert "s3cret" not in out and "me:***@db.example" in out
    assert "next runs:" in out and str(tmp_path / "logs" / "daily.log") in out
    listed = subprocess.run(
        [sys.executable, "-m", "scraper", "jobs", "list", "--jobs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert [line.split("\t")[:3] for line in listed.stdout.splitlines()] == [
        ["daily", "incremental", "30 4 * * *"],
        ["full-weekly", "full", "@weekly"],
    ]


def test_unknown_job_is_named_with_the_known_ones(tmp_path: Path) -> None:
    jobs = load_jobs(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no job named 'nightly' \(jobs: daily, full-weekly\)"):
        jobs.get("nightly")


@pytest.mark.parametrize(
    ("key_line", "job", "key", "why"),
    [
        ('seed = ["https://x.org/"]', "a", "seed", "unknown key"),
        ('mode = "fast"', "a", "mode", "'incremental' or 'full'"),
        ('delay = "soon"', "a", "delay", "duration"),
        ("delay = -1", "a", "delay", "positive"),
        ("max_pages = 0", "a", "max_pages", "positive whole number"),
        ("max_pages = 2.5", "a", "max_pages", "positive whole number"),
        ('max_time = "10 years"', "a", "max_time", "duration"),
        ('refresh_after = "0d"', "a", "refresh_after", "positive"),
        ('schedule = "61 * * * *"', "a", "schedule", "not a valid cron expression"),
        ('schedule = "* * *"', "a", "schedule", "expected 5 fields"),
        ('schedule = "@reboot"', "a", "schedule", "unknown alias"),
        ('user_agent = ""', "a", "user_agent", "non-empty string"),
        ('user_agent = "x\\ny"', "a", "user_agent", "control characters"),
        ("log_file = 3", "a", "log_file", "non-empty string"),
        ("db = 5", "a", "db", "non-empty string"),
    ],
)
def test_a_bad_value_names_file_job_and_key(
    tmp_path: Path, key_line: str, job: str, key: str, why: str
) -> None:
    path = write(tmp_path, f'[jobs.{job}]\nseeds = ["https://myanimelist.net/x"]\n{key_line}\n')
    with pytest.raises(ConfigError) as error:
        load_jobs(path)
    message = str(error.value)
    assert str(path) in message
    assert f"job {job!r}" in message
    assert repr(key) in message
    assert why in message


@pytest.mark.parametrize(
    ("seeds", "why"),
    [
        ("[]", "non-empty list"),
        ('"https://x.org/"', "non-empty list"),
        ('["ftp://x.org/a"]', "'ftp://x.org/a' is not an http(s) URL"),
        ('["myanimelist.net/anime/1"]', "is not an http(s) URL"),
        ("[3]", "3 is not an http(s) URL"),
    ],
)
def test_bad_seeds_are_named(tmp_path: Path, seeds: str, why: str) -> None:
    path = write(tmp_path, f"[jobs.daily]\nseeds = {seeds}\n")
    with pytest.raises(ConfigError, match=r"job 'daily', key 'seeds'") as error:
        load_jobs(path)
    assert why in str(error.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[jobs.daily]\nmode = 'full'\n", "job 'daily': key 'seeds' is required"),
        ('[jobs."two words"]\nseeds = ["https://x.org/"]\n', "job 'two words': a job name"),
        ("[jobs]\ndaily = 3\n", "job 'daily': expected a [jobs.daily] table"),
        ('dbs = "x.db"\n[jobs.a]\nseeds = ["https://x.org/"]\n', "unknown top-level key 'dbs'"),
        ('db = ""\n[jobs.a]\nseeds = ["https://x.org/"]\n', "top-level key 'db'"),
        ('db = "x.db"\n', "no jobs"),
        ("[jobs.daily\nseeds = 1\n", "not valid TOML"),
    ],
)
def test_a_broken_file_is_explained(tmp_path: Path, text: str, why: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_jobs(path)
    assert str(path) in str(error.value)
    assert why in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jobs file not found"):
        load_jobs(tmp_path / "nope.toml")


def test_db_defaults_to_reviews_db_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REVIEWS_DB", raising=False)
    monkeypatch.chdir("/")
    job = load_jobs(write(tmp_path, '[jobs.a]\nseeds = ["https://x.org/"]\n')).get("a")
    assert job.db == f"sqlite:///{tmp_path / 'reviews.db'}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "-1d", True, None, 0])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_next_runs_follow_the_schedule() -> None:
    start = datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    assert next_runs("30 4 * * *", start, 2) == [
        datetime(2026, 3, 2, 4, 30, tzinfo=UTC),
        datetime(2026, 3, 3, 4, 30, tzinfo=UTC),
    ]
    assert next_runs("@hourly", start, 1) == [datetime(2026, 3, 1, 5, 0, tzinfo=UTC)]
