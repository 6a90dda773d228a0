"""``reviews import --jobs N`` leaves no process behind: every child it started is reaped."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import HISTORY, ingest_history
from processes import children, descendants, still_running

from scraper.cli import ExitCode, main
from scraper.store.engine import open_engine

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or sys.platform != "linux",
    reason="lists child processes through Linux's /proc",
)


def _children() -> set[int]:
    """Return the ids of this process's children, running or exited but not reaped."""
    return set(children(os.getpid()))


def _copies(folder: Path, times: int) -> Path:
    """*folder*, made, holding *times* copies of the history pages (each its own file)."""
    folder.mkdir()
    for number in range(times):
        for source in sorted(HISTORY.glob("*.html")):
            shutil.copyfile(source, folder / f"{number}-{source.name}")
    return folder


@pytest.mark.slow  # starts a process pool
def test_import_with_workers_reaps_every_process_it_started(
    sqlite_url: str, tmp_path: Path
) -> None:
    pages = _copies(tmp_path / "pages", 6)
    before = _children()
    assert main(["import", str(pages), "--db", sqlite_url, "--jobs", "2"]) == ExitCode.OK
    # The workers' helpers (multiprocessing's resource tracker, the fork server) would
    # run on until this process exited, without being waited for: zombies for whoever
    # adopted them.
    assert _children() - before == set()


@pytest.mark.slow  # starts a process pool
def test_reparse_with_workers_reaps_every_process_it_started(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        ingest_history(engine, 40)  # more than one batch: the workers take part
    finally:
        engine.dispose()
    before = _children()
    assert main(["reparse", "--all", "--db", sqlite_url, "--jobs", "2"]) == ExitCode.OK
    assert _children() - before == set()


@pytest.mark.slow  # starts the command and its process pool
def test_import_workers_end_when_the_command_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of ``reviews import --jobs 2``: its fork server and the workers
    forked from it end by themselves (a worker watches the command, not its own
    parent, the server, which waits for its workers)."""
    import signal
    import subprocess
    import time

    pages = _copies(tmp_path / "pages", 150)
    command = Path(sys.executable).with_name("reviews")
    database = str(tmp_path / "killed.db")
    child = subprocess.Popen(
        [str(command), "import", str(pages), "--db", database, "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        under = descendants(child.pid)
        while len(under) < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the server, and the workers it forks
            under = descendants(child.pid)
        assert len(under) >= 3 and child.poll() is None, "no workers seen at work"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert still_running(under, 15) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.slow  # starts the fork server
def test_an_import_refused_after_the_server_started_leaves_no_process(tmp_path: Path) -> None:
    """The fork server starts as soon as the files are counted; an import that then
    stops (a capture time that is not one) stops it and reaps it."""
    from scraper.api import Archive
    from scraper.errors import UsageError

    for number in range(3):
        shutil.copyfile(sorted(HISTORY.glob("*.html"))[0], tmp_path / f"{number}.html")
    before = _children()
    with (
        Archive(str(tmp_path / "refused.db")) as archive,
        pytest.raises(UsageError, match="fetched_at"),
    ):
        list(archive.import_files([tmp_path], fetched_at="not a time", workers=2))
    assert _children() - before == set()


@pytest.mark.slow  # starts the command and its process pool
def test_import_workers_are_spawned_where_no_fork_server_can_start(tmp_path: Path) -> None:
    """A temporary folder whose path is too long for the fork server's socket (108
    bytes on Linux): the workers are spawned instead, and every page is stored."""
    import subprocess

    long = tmp_path / ("t" * 120)
    long.mkdir()
    pages = _copies(tmp_path / "pages", 10)
    database = tmp_path / "spawned.db"
    command = [sys.executable, "-m", "scraper", "import", str(pages), "--db", str(database)]
    done = subprocess.run(
        [*command, "--jobs", "2", "--fetched-at-from", "mtime"],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(long)},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 30 pages" in done.stdout, done.stdout


def _forked_workers(command: int) -> list[int]:
    """The workers of *command*'s pool: the children of its fork server."""
    for child in children(command):
        try:
            line = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.forkserver" in line:
            return children(child)
    return []


@pytest.mark.slow  # starts the command and its process pool
def test_an_import_whose_worker_is_killed_says_so_in_one_line(tmp_path: Path) -> None:
    """A worker killed mid-import (the OOM killer, ``kill -9``): the import stops with
    one line naming what happened and exit code 1, no traceback; what it reported is
    stored, the archive is sound, and a second run stores the rest once."""
    import signal
    import sqlite3
    import subprocess
    import time

    pages = _copies(tmp_path / "pages", 150)
    database = tmp_path / "lost.db"
    command = [sys.executable, "-m", "scraper", "import", str(pages), "--db", str(database)]
    arguments = [*command, "--jobs", "2", "--fetched-at-from", "mtime"]
    child = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert str(pages) in child.stdout.readline()  # a batch is committed
        deadline = time.monotonic() + 30
        while not (workers := _forked_workers(child.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers, "no worker seen"
        os.kill(workers[0], signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (
        "reviews import: error: a worker process ended abruptly (killed by a signal, or "
        "out of memory): stopped there; the pages reported are stored, and a second run "
        "skips them"
    ), err
    reported = 1 + out.count("raw page")
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = connection.execute("SELECT count(*) FROM raw_pages").fetchone()[0]
    assert reported <= stored < 450
    again = subprocess.run(arguments, capture_output=True, text=True, check=False, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"stored {450 - stored} pages" in again.stdout
    assert f"{stored} already stored" in again.stdout
