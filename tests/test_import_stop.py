"""``reviews import`` stopped by SIGTERM (systemd, ``docker stop``) or Ctrl-C (SIGINT to
the whole process group, workers included): exit 130 with one line, no traceback, every
page it reported stored, the archive intact, and the next run stores the rest once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # starts process pools

REVIEWS = [sys.executable, "-m", "scraper"]
sys.path.insert(0, str(REPO / "bench"))

from pages import page_set, write  # noqa: E402  (bench/ is not a package)


def captures(folder: Path, count: int) -> list[Path]:
    """*count* real-sized pages (our fixtures grown to 20 long reviews, 250 KB or so),
    each a first capture under its own URL: a real import's results, as big as theirs."""
    folder.mkdir()
    pages = page_set(count, only="grown")
    write(folder, pages)
    return [folder / page.name for page in pages]


def stored_pages(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(connection.execute("SELECT count(*) FROM raw_pages").fetchone()[0])


@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
def test_a_stopped_import_exits_130_and_the_next_run_stores_the_rest(
    tmp_path: Path, stop: str
) -> None:
    files = captures(tmp_path / "pages", 240)
    db = tmp_path / "archive.db"
    command = [*REVIEWS, "import", "--db", str(db), "--fetched-at", "2026-12-01T00:00:00Z"]
    subprocess.run([*REVIEWS, "db", "--db", str(db), "upgrade"], check=True, capture_output=True)
    with subprocess.Popen(
        [*command, str(tmp_path / "pages")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    ) as child:
        assert child.stdout is not None
        first = child.stdout.readline()  # a batch is committed: the import is under way
        assert "raw page" in first, first
        if stop == "sigterm":
            child.send_signal(signal.SIGTERM)
        else:
            os.killpg(child.pid, signal.SIGINT)  # the parent and its workers, as Ctrl-C
        out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "reviews: interrupted"
    for noise in ("Traceback", "Exception ignored", "leaked"):
        assert noise not in err
    reported = 1 + out.count("raw page")
    stored = stored_pages(db)
    assert reported <= stored < len(files)  # every page it named is there; it stopped early
    again = subprocess.run(
        [*command, str(tmp_path / "pages")], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    assert f"stored {len(files) - stored} pages" in again.stdout
    assert f"{stored} already stored" in again.stdout
    assert stored_pages(db) == len(files)
