"""Turning a jobs file into schedules: crontab lines, systemd units, crontab editing.

The crontab lines of one jobs file sit between two marker comments naming the file,
so ``reviews schedule install`` can find and replace them (and ``remove`` can take
them out) without touching anything else in the user's crontab, and several jobs
files can be installed side by side.

Cron and systemd read schedules in the machine's local time zone; so does
``reviews schedule run``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scraper.errors import ScraperError
from scraper.jobs.config import Job, JobsFile

__all__ = [
    "CrontabEditor",
    "SystemdUnit",
    "crontab_block",
    "end_marker",
    "on_calendar",
    "remove_block",
    "replace_block",
    "reviews_command",
    "start_marker",
    "systemd_units",
]

MARKER = "review-archiver"

#: systemd's own names for the cron aliases.
_SYSTEMD_ALIASES = {
    "@hourly": "hourly",
    "@daily": "daily",
    "@midnight": "daily",
    "@weekly": "weekly",
    "@monthly": "monthly",
    "@yearly": "yearly",
    "@annually": "yearly",
}
_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
#: The largest value of each cron field (minute, hour, day of month, month).
_FIELD_MAX = (59, 23, 31, 12)


def reviews_command() -> list[str]:
    """Return the absolute command that runs ``reviews`` (cron's PATH is minimal).

    The ``reviews`` script next to this Python (a venv's bin folder) comes first,
    then one on PATH, then ``python -m scraper``.
    """
    beside = Path(sys.executable).parent / "reviews"
    if beside.is_file():
        return [str(beside.absolute())]
    found = shutil.which("reviews")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "scraper"]


def start_marker(jobs: JobsFile) -> str:
    """Return the comment line that opens the jobs file's block in a crontab."""
    return f"# BEGIN {MARKER} {jobs.path}"


def end_marker(jobs: JobsFile) -> str:
    """Return the comment line that closes the jobs file's block in a crontab."""
    return f"# END {MARKER} {jobs.path}"


def log_path(jobs: JobsFile, job: Job) -> Path:
    """Where scheduled output of *job* goes: its log_file, else ``NAME.log`` beside the
    jobs file."""
    return job.log_file or jobs.folder / f"{job.name}.log"


def crontab_block(jobs: JobsFile, command: Sequence[str] | None = None) -> str:
    """Return the marked crontab block (newline-terminated) running each scheduled job."""
    argv = list(command or reviews_command())
    lines = [
        start_marker(jobs),
        f"# Managed by `reviews schedule install`: edit {jobs.path.name} and reinstall.",
    ]
    for job in jobs.jobs:
        if job.schedule is None:
            lines.append(f"# job {job.name}: no schedule in the jobs file, not installed")
            continue
        log = log_path(jobs, job)
        # The shell opens the log before `reviews` starts, so its folder must exist.
        mkdir = [] if log.parent == jobs.folder else ["mkdir -p", shlex.quote(str(log.parent))]
        shell = " ".join(
            [
                "cd",
                shlex.quote(str(jobs.folder)),
                "&&",
                *([*mkdir, "&&"] if mkdir else []),
                *(shlex.quote(part) for part in argv),
                "run",
                shlex.quote(job.name),
                "--jobs",
                shlex.quote(str(jobs.path)),
                ">>",
                shlex.quote(str(log)),
                "2>&1",
            ]
        )
        # cron turns an unescaped % into a newline.
        lines.append(f"{job.schedule} {shell.replace('%', chr(92) + '%')}")
    lines.append(end_marker(jobs))
    return "\n".join(lines) + "\n"


def replace_block(crontab: str, jobs: JobsFile, block: str) -> str:
    """Return *crontab* with the jobs file's block replaced by *block* (or appended)."""
    kept = remove_block(crontab, jobs)
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return kept + block


def remove_block(crontab: str, jobs: JobsFile) -> str:
    """Return *crontab* without the jobs file's block; other lines stay as they were.

    Raises ScraperError when a start marker has no end marker (a hand-edited crontab
    we must not guess about).
    """
    start, end = start_marker(jobs), end_marker(jobs)
    kept: list[str] = []
    inside = False
    for line in crontab.splitlines(keepends=True):
        text = line.rstrip("\n")
        if text == start:
            inside = True
        elif text == end and inside:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ScraperError(
            f"the crontab has {start!r} without its {end!r} line: fix it with `crontab -e`"
        )
    return "".join(kept)


class CrontabEditor:
    """Reads and writes the user's crontab through the ``crontab`` program."""

    def __init__(self, program: str = "crontab") -> None:
        self.program = program

    def _run(self, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        path = shutil.which(self.program)
        if path is None:
            raise ScraperError(
                f"the {self.program!r} program was not found: install cron, or use "
                "`reviews schedule show --systemd` or `reviews schedule run`"
            )
        return subprocess.run(
            [path, *args], input=stdin, capture_output=True, text=True, check=False
        )

    def read(self) -> str:
        """Return the current crontab ('' when the user has none). Raises ScraperError."""
        done = self._run(["-l"])
        if done.returncode != 0:
            if "no crontab" in done.stderr.lower():
                return ""
            raise ScraperError(f"`crontab -l` failed: {done.stderr.strip()}")
        return done.stdout

    def write(self, text: str) -> None:
        """Replace the crontab with *text*. Raises ScraperError when crontab refuses it."""
        done = self._run(["-"], stdin=text)
        if done.returncode != 0:
            raise ScraperError(f"`crontab -` refused the new crontab: {done.stderr.strip()}")

    def install(self, jobs: JobsFile, command: Sequence[str] | None = None) -> str:
        """Install (or replace) the jobs file's block; return the block installed."""
        block = crontab_block(jobs, command)
        current = self.read()
        updated = replace_block(current, jobs, block)
        if updated != current:
            self.write(updated)
        return block

    def remove(self, jobs: JobsFile) -> bool:
        """Take the jobs file's block out; return False when it was not installed."""
        current = self.read()
        updated = remove_block(current, jobs)
        if updated == current:
            return False
        self.write(updated)
        return True


# --- systemd ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemdUnit:
    """One unit file: its name (``reviews-daily.timer``) and text."""

    name: str
    text: str


def on_calendar(schedule: str) -> str:
    """Return the systemd ``OnCalendar=`` value for a cron *schedule*.

    Raises ValueError saying why when systemd cannot express it (cron's "day of month
    OR day of week" rule, ``L``, ``#``).
    """
    if schedule.startswith("@"):
        return _SYSTEMD_ALIASES[schedule]
    from croniter import croniter

    fields, nth_weekday = croniter.expand(schedule)
    minute, hour, dom, month, dow = fields
    if nth_weekday or any(isinstance(value, str) and value != "*" for value in dom + dow):
        raise ValueError(f"{schedule!r}: 'L' and '#' have no OnCalendar equivalent")
    if dom != ["*"] and dow != ["*"]:
        raise ValueError(
            f"{schedule!r}: cron runs when the day of month OR the day of week matches; "
            "OnCalendar needs both to match"
        )
    days = "" if dow == ["*"] else _list({int(day) % 7 for day in dow}, _DAY_NAMES.__getitem__)
    date = f"*-{_field(month, 3)}-{_field(dom, 2)}"
    return f"{days}{' ' if days else ''}{date} {_field(hour, 1)}:{_field(minute, 0)}:00"


def _two_digits(number: int) -> str:
    return f"{number:02d}"


def _field(values: list[int | str], index: int) -> str:
    if values == ["*"]:
        return "*"
    numbers = sorted(int(value) for value in values)
    step = numbers[1] - numbers[0] if len(numbers) > 2 else 0
    if step > 1 and numbers == list(range(numbers[0], _FIELD_MAX[index] + 1, step)):
        return f"{numbers[0]:02d}/{step}"  # systemd's "start/repetition"
    return _list(set(numbers), _two_digits)


def _list(numbers: set[int], render: Callable[[int], str]) -> str:
    """Return a comma list of runs: ``01..05,07`` (``Mon..Fri`` for days)."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = []
    for run in runs:
        if len(run) > 2:
            parts.append(f"{render(run[0])}..{render(run[-1])}")
        else:
            parts.extend(render(number) for number in run)
    return ",".join(parts)


def _systemd_quote(word: str) -> str:
    escaped = word.replace("%", "%%")
    if any(char.isspace() or char in "\"'\\;" for char in escaped):
        return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def systemd_units(
    jobs: JobsFile, command: Sequence[str] | None = None
) -> tuple[list[SystemdUnit], list[str]]:
    """Return a service and a timer unit for each scheduled job, and one note per job
    whose schedule has no OnCalendar form (naming the job and why)."""
    base = list(command or reviews_command())
    units: list[SystemdUnit] = []
    notes: list[str] = []
    for job in jobs.jobs:
        if job.schedule is None:
            continue
        try:
            calendar = on_calendar(job.schedule)
        except ValueError as error:
            notes.append(f"job {job.name}: {error}; use cron or `reviews schedule run` for it")
            continue
        argv = [*base, "run", job.name, "--jobs", str(jobs.path)]
        exec_start = " ".join(_systemd_quote(word) for word in argv)
        units.append(SystemdUnit(f"reviews-{job.name}.service", _service(jobs, job, exec_start)))
        units.append(SystemdUnit(f"reviews-{job.name}.timer", _timer(jobs, job, calendar)))
    return units, notes


def _service(jobs: JobsFile, job: Job, exec_start: str) -> str:
    return (
        "[Unit]\n"
        f"Description=review-archiver: run job {job.name} of {jobs.path}\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_systemd_quote(str(jobs.folder))}\n"
        f"ExecStart={exec_start}\n"
        "# 5: the previous run still holds the job's lock; not a failure of this unit.\n"
        "SuccessExitStatus=5\n"
    )


def _timer(jobs: JobsFile, job: Job, calendar: str) -> str:
    return (
        "[Unit]\n"
        f"Description=review-archiver: schedule of job {job.name} ({job.schedule})\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "# After downtime, catch up one missed run (not every missed one).\n"
        "Persistent=true\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
