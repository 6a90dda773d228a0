"""``reviews import --jobs N`` leaves no process behind: every child it started is reaped."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from conftest import HISTORY, ingest_history

from scraper.cli import ExitCode, main
from scraper.store.engine import open_engine

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or sys.platform != "linux",
    reason="lists child processes through Linux's /proc",
)


def _children() -> set[int]:
    """Return the ids of this process's children, running or exited but not reaped."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:  # a thread that ended while being listed
            continue
    return found


@pytest.mark.slow  # starts a process pool
def test_import_with_workers_reaps_every_process_it_started(
    sqlite_url: str, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for number in range(6):
        for source in sorted(HISTORY.glob("*.html")):
            shutil.copyfile(source, pages / f"{number}-{source.name}")
    before = _children()
    assert main(["import", str(pages), "--db", sqlite_url, "--jobs", "2"]) == ExitCode.OK
    # The spawn workers' helper (multiprocessing's resource tracker) used to run on
    # until this process exited, without being waited for: a zombie for whoever
    # adopted it.
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
