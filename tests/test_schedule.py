"""Schedules: crontab lines and systemd units checked against the jobs file, crontab
install/remove through a fake ``crontab`` program (never the real user crontab),
and the foreground loop's catch-up rule with a clock the test moves."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scraper.errors import ScraperError
from scraper.jobs.config import Job, load_jobs
from scraper.jobs.loop import Scheduler
from scraper.jobs.schedule import CrontabEditor, crontab_block, on_calendar, systemd_units

REVIEWS = [sys.executable, "-m", "scraper"]

JOBS = """\
db = "archive.db"

[jobs.daily]
seeds = ["https://myanimelist.net/anime/1/Cowboy_Bebop/reviews"]
schedule = "30 4 * * *"
log_file = "logs/daily.log"

[jobs.weekly]
seeds = ["https://myanimelist.net/anime/5/x/reviews"]
mode = "full"
schedule = "@weekly"

[jobs.by-hand]
seeds = ["https://myanimelist.net/anime/6/y/reviews"]
"""

FAKE_CRONTAB = """\
#!/bin/sh
# A stand-in for crontab(1): keeps "the crontab" in $FAKE_CRONTAB_FILE.
case "$1" in
  -l) if [ -f "$FAKE_CRONTAB_FILE" ]; then cat "$FAKE_CRONTAB_FILE";
      else echo "no crontab for tester" >&2; exit 1; fi ;;
  -) cat > "$FAKE_CRONTAB_FILE" ;;
  *) echo "fake crontab: unsupported arguments: $*" >&2; exit 2 ;;
esac
"""

FOREIGN = "MAILTO=me@example.org\n# my backups\n15 1 * * * /usr/local/bin/backup --all\n"


def write_jobs(folder: Path, text: str = JOBS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reviews.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake ``crontab`` first on PATH; return the file it stores the crontab in."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "crontab"
    script.write_text(FAKE_CRONTAB)
    script.chmod(0o755)
    store = tmp_path / "crontab.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(store))
    return store


def reviews(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REVIEWS, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# --- crontab lines --------------------------------------------------------------------


@pytest.mark.slow
def test_crontab_lines_follow_the_jobs_file(tmp_path: Path) -> None:
    path = write_jobs(tmp_path / "archive dir")  # a space, to check the quoting
    done = reviews("schedule", "show", "--cron", "--jobs", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"# BEGIN review-archiver {path}"
    assert lines[-1] == f"# END review-archiver {path}"
    entries = [line for line in lines if not line.startswith("#")]
    assert len(entries) == 2  # by-hand has no schedule
    assert any("job by-hand: no schedule" in line for line in lines)
    jobs = load_jobs(path)
    for job, line in zip([jobs.get("daily"), jobs.get("weekly")], entries, strict=True):
        assert job.schedule is not None and line.startswith(job.schedule + " ")
        words = shlex.split(line[len(job.schedule) :])
        assert words[:3] == ["cd", str(path.parent), "&&"]
        run = words.index("run")
        assert Path(words[run - 1]).is_absolute()  # cron's PATH is minimal
        assert words[run : run + 4] == ["run", job.name, "--jobs", str(path)]
        log = job.log_file or path.parent / f"{job.name}.log"
        assert words[-3:] == [">>", str(log), "2>&1"]
    assert "mkdir -p" in entries[0] and "mkdir -p" not in entries[1]


def test_percent_signs_are_escaped_for_cron(tmp_path: Path) -> None:
    jobs = load_jobs(write_jobs(tmp_path / "100%"))
    block = crontab_block(jobs, ["/opt/reviews"])
    for line in block.splitlines():
        if not line.startswith("#"):
            assert re.search(r"(?<!\\)%", line) is None


# --- systemd ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("30 4 * * *", "*-*-* 04:30:00"),
        ("*/15 * * * *", "*-*-* *:00/15:00"),
        ("5 */6 * * *", "*-*-* 00/6:05:00"),
        ("0 9-17 * * mon-fri", "Mon..Fri *-*-* 09..17:00:00"),
        ("0 3 * * 7", "Sun *-*-* 03:00:00"),
        ("0 3 1,15 1-3 *", "*-01..03-01,15 03:00:00"),
        ("@daily", "daily"),
        ("@annually", "yearly"),
    ],
)
def test_cron_expressions_become_oncalendar(cron: str, calendar: str) -> None:
    assert on_calendar(cron) == calendar


@pytest.mark.parametrize(
    ("cron", "why"), [("0 3 1 * 1", "OR the day of week"), ("0 3 L * *", "'L' and '#'")]
)
def test_inexpressible_schedules_are_said(cron: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        on_calendar(cron)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize(
    "cron", ["30 4 * * *", "*/15 * * * *", "5 */6 * * *", "0 9-17 * * mon-fri", "0 3 1,15 1-3 *"]
)
def test_systemd_agrees_on_the_fire_times(cron: str) -> None:
    from croniter import croniter

    base = datetime(2026, 3, 1, 12, 7, tzinfo=UTC)
    done = subprocess.run(
        [
            "systemd-analyze",
            "calendar",
            "--iterations=6",
            f"--base-time={base:%F %T} UTC",
            on_calendar(cron),
        ],
        env={**os.environ, "TZ": "UTC"},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", done.stdout)
    systemd_times = [datetime.fromisoformat(f"{text}+00:00") for text in found]
    iterator = croniter(cron, base)
    assert systemd_times == [iterator.get_next(datetime) for _ in range(6)]


def test_units_name_the_job_and_the_jobs_file(tmp_path: Path) -> None:
    jobs = load_jobs(
        write_jobs(
            tmp_path, JOBS + '[jobs.odd]\nseeds = ["https://x.org/"]\n\nschedule = "0 3 1 * 1"\n'
        )
    )
    units, notes = systemd_units(jobs, ["/opt/venv/bin/reviews"])
    assert [unit.name for unit in units] == [
        "reviews-daily.service",
        "reviews-daily.timer",
        "reviews-weekly.service",
        "reviews-weekly.timer",
    ]
    assert f"ExecStart=/opt/venv/bin/reviews run daily --jobs {jobs.path}\n" in units[0].text
    assert "OnCalendar=*-*-* 04:30:00\n" in units[1].text
    assert "OnCalendar=weekly\n" in units[3].text
    assert len(notes) == 1 and notes[0].startswith("job odd:")


# --- crontab install / remove ---------------------------------------------------------


@pytest.mark.slow
def test_install_and_remove_are_idempotent_and_keep_foreign_lines(
    tmp_path: Path, fake_crontab: Path
) -> None:
    fake_crontab.write_text(FOREIGN)
    path = write_jobs(tmp_path / "a")
    first = reviews("schedule", "install", "--jobs", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    installed = fake_crontab.read_text()
    assert installed.startswith(FOREIGN)
    assert installed[len(FOREIGN) :] == first.stdout  # the block printed is the one installed
    assert reviews("schedule", "install", "--jobs", str(path), cwd=tmp_path).returncode == 0
    assert fake_crontab.read_text() == installed  # twice = once

    # A second jobs file sits beside the first; changing a schedule replaces in place.
    other = write_jobs(tmp_path / "b", JOBS.replace("30 4 * * *", "0 2 * * *"))
    assert reviews("schedule", "install", "--jobs", str(other), cwd=tmp_path).returncode == 0
    write_jobs(tmp_path / "a", JOBS.replace("30 4 * * *", "45 5 * * *"))
    assert reviews("schedule", "install", "--jobs", str(path), cwd=tmp_path).returncode == 0
    both = fake_crontab.read_text()
    assert both.count("# BEGIN review-archiver") == 2
    assert "45 5 * * * cd" in both and "0 2 * * * cd" in both and "30 4 * * *" not in both

    assert reviews("schedule", "remove", "--jobs", str(other), cwd=tmp_path).returncode == 0
    assert reviews("schedule", "remove", "--jobs", str(path), cwd=tmp_path).returncode == 0
    assert fake_crontab.read_text() == FOREIGN
    again = reviews("schedule", "remove", "--jobs", str(path), cwd=tmp_path)
    assert again.returncode == 0 and "nothing to remove" in again.stderr
    assert fake_crontab.read_text() == FOREIGN


def test_install_into_an_empty_crontab(tmp_path: Path, fake_crontab: Path) -> None:
    jobs = load_jobs(write_jobs(tmp_path))
    block = CrontabEditor().install(jobs)
    assert fake_crontab.read_text() == block
    assert CrontabEditor().remove(jobs) is True
    assert fake_crontab.read_text() == ""


@pytest.mark.slow
def test_a_damaged_block_is_not_guessed_at(tmp_path: Path, fake_crontab: Path) -> None:
    path = write_jobs(tmp_path)
    damaged = FOREIGN + f"# BEGIN review-archiver {path}\n30 4 * * * something\n"
    fake_crontab.write_text(damaged)
    done = reviews("schedule", "install", "--jobs", str(path), cwd=tmp_path)
    assert done.returncode == 1
    assert "without its '# END review-archiver" in done.stderr and "Traceback" not in done.stderr
    assert fake_crontab.read_text() == damaged


def test_missing_crontab_program_is_explained(tmp_path: Path) -> None:
    jobs = load_jobs(write_jobs(tmp_path))
    with pytest.raises(ScraperError, match="'no-such-crontab' program was not found"):
        CrontabEditor("no-such-crontab").install(jobs)


def test_nothing_to_install_without_schedules(tmp_path: Path, fake_crontab: Path) -> None:
    path = write_jobs(tmp_path, '[jobs.a]\nseeds = ["https://x.org/"]\n')
    done = reviews("schedule", "install", "--jobs", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "no job has a schedule" in done.stderr
    assert not fake_crontab.exists()


# --- the foreground loop ----------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def loop_for(
    tmp_path: Path, clock: Clock, last: datetime | None, runs: list[str], run_minutes: int = 5
) -> Scheduler:
    jobs = load_jobs(
        write_jobs(tmp_path, '[jobs.hourly]\nseeds = ["https://x.org/"]\nschedule = "@hourly"\n')
    )

    def runner(job: Job) -> int:
        runs.append(f"{job.name}@{clock.now:%H:%M}")
        clock.now += timedelta(minutes=run_minutes)  # a run takes time
        return 0

    return Scheduler(jobs, runner=runner, clock=clock, last_start=lambda job: last)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, tzinfo=UTC)


def test_after_downtime_one_missed_run_is_caught_up_not_all(tmp_path: Path) -> None:
    clock, runs = Clock(at(5, 30)), []
    loop = loop_for(tmp_path, clock, at(1, 10), runs)  # four fire times missed
    assert loop.tick() == [("hourly", 0)]
    assert runs == ["hourly@05:30"]
    clock.now = at(5, 59)
    assert loop.tick() == [] and loop.seconds_to_next() == 60.0
    clock.now = at(6, 0)
    loop.tick()
    assert runs == ["hourly@05:30", "hourly@06:00"]


def test_a_job_never_run_waits_for_its_first_fire_time(tmp_path: Path) -> None:
    clock, runs = Clock(at(5, 30)), []
    loop = loop_for(tmp_path, clock, None, runs)
    assert loop.tick() == []
    assert loop.seconds_to_next() == 60.0  # capped; the fire time is 30 min away
    clock.now = at(
        6,
        0,
    )
    loop.tick()
    assert runs == ["hourly@06:00"]


def test_a_run_longer_than_the_interval_is_followed_by_one_run_only(tmp_path: Path) -> None:
    clock, runs = Clock(at(6, 0)), []
    loop = loop_for(tmp_path, clock, at(5, 0), runs, run_minutes=150)
    assert len(loop.tick()) == 1  # 06:00 → 08:30: fire times 07:00 and 08:00 pass meanwhile
    assert len(loop.tick()) == 1  # one catch-up for both, 08:30 → 11:00
    clock.now = at(11, 30)
    assert len(loop.tick()) == 1  # 09:00, 10:00 and 11:00 missed during it: one run
    assert runs == ["hourly@06:00", "hourly@08:30", "hourly@11:30"]


def test_a_changed_jobs_file_is_taken_and_a_broken_one_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, runs = Clock(at(5, 30)), []
    loop = loop_for(tmp_path, clock, at(1, 10), runs)
    loop.tick()
    path = tmp_path / "reviews.toml"
    assert loop.reload_if_changed() is False
    path.write_text(
        path.read_text() + '[jobs.daily]\nseeds = ["https://x.org/"]\nschedule = "@daily"\n'
    )
    assert loop.reload_if_changed() is True
    assert [job.name for job in loop.jobs] == ["hourly", "daily"]
    assert loop.last["hourly"] == at(5, 30)  # the run already made is remembered
    path.write_text(path.read_text() + "mode = 3\n")
    assert loop.reload_if_changed() is False
    assert "broken, keeping the jobs in use" in caplog.text and "key 'mode'" in caplog.text
    assert [job.name for job in loop.jobs] == ["hourly", "daily"]


@pytest.mark.slow  # starts a scheduler process and waits for it to stop
def test_the_loop_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    path = write_jobs(tmp_path, '[jobs.yearly]\nseeds = ["https://x.org/"]\nschedule = "@yearly"\n')
    child = subprocess.Popen(
        [*REVIEWS, "schedule", "run", "--jobs", str(path)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    with child:
        try:
            first = child.stderr.readline()
            assert "job yearly (@yearly): next run at" in first
            child.send_signal(signal.SIGTERM)
            rest = child.stderr.read()
            assert child.wait(timeout=20) == 0
        finally:
            child.kill()
    assert "received SIGTERM" in rest and "reviews schedule: stopped" in rest
    assert "Traceback" not in rest


@pytest.mark.slow
def test_broken_jobs_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write_jobs(tmp_path, textwrap.dedent('[jobs.a]\nseeds = ["https://x.org/"]\nmode = 3\n'))
    for args in (["jobs", "check"], ["schedule", "show"], ["schedule", "run"]):
        done = reviews(*args, "--jobs", str(path), cwd=tmp_path)
        assert done.returncode == 2, args
        assert "job 'a', key 'mode'" in done.stderr and "Traceback" not in done.stderr
