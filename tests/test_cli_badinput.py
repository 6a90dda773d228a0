"""Bad input from the command line: one line naming the argument, the documented exit
code, never a traceback, never a hang. Each case runs ``reviews`` as a real process
on real files, FIFOs and databases (issue 11's list, and a few more of each kind)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import HISTORY

from scraper.cli import main
from scraper.config import MAX_INPUT_FILE_BYTES

PAGE = HISTORY / "anime-91234-reviews-2026-02.html"
BAD_PORT = "postgresql+psycopg://me@localhost:abc/reviews"
HUGE = "99999999999999999999"
CLOSED = "http://127.0.0.1:9/anime/1/x/reviews"  # the discard port: nothing listens
GOOD_JOBS = f'[jobs.daily]\nseeds = ["{CLOSED}"]\ndb = "reviews.db"\n'


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    words: tuple[str, ...]  # each must appear in the one line on stderr


def case(code: int, words: str, *args: str) -> Case:
    return Case(tuple(args), code, tuple(words.split("|")) if words else ())


#: Every command that opens a database, with what it needs besides --db.
DB_COMMANDS: dict[str, tuple[str, ...]] = {
    "query": ("query",),
    "stats": ("stats",),
    "export": ("export",),
    "sql": ("sql", "SELECT 1"),
    "db-info": ("db", "info"),
    "db-upgrade": ("db", "upgrade"),
    "import": ("import", "page.html"),
    "import-warc": ("import-warc", "page.html"),
    "archive": ("archive", CLOSED),
    "crawl": ("crawl", CLOSED),
    "reparse": ("reparse",),
    "runs": ("runs",),
}

CASES: dict[str, Case] = {
    **{
        f"bad port: {name}": case(2, "--db|port", *command, "--db", BAD_PORT)
        for name, command in DB_COMMANDS.items()
    },
    **{
        f"corrupt database: {name}": case(1, "corrupt.db", *command, "--db", "corrupt.db")
        for name, command in DB_COMMANDS.items()
    },
    "huge --limit": case(2, "--limit", "query", "--db", "good.db", "--limit", HUGE),
    "huge runs --limit": case(2, "--limit|too large", "runs", "--db", "good.db", "--limit", HUGE),
    "huge import --jobs": case(2, "--jobs|too large", "import", "page.html", "--jobs", HUGE),
    # Item keys are text: an id past 64 bits matches nothing (it was an OverflowError).
    "huge --entry id": case(0, "", "query", "--db", "good.db", "--entry", f"anime:{HUGE}"),
    "huge export --entry id": case(
        0, "0 review(s) written", "export", "--db", "good.db", "--entry", f"manga:{HUGE}"
    ),
    "--until 9999-12-31": case(2, "--until", "query", "--db", "good.db", "--until", "9999-12-31"),
    "--since year 1 east of UTC": case(
        2, "--since", "query", "--db", "good.db", "--since", "0001-01-01T00:00:00+01:00"
    ),
    "--fetched-at year 1 east of UTC": case(
        2, "--fetched-at", "import", "page.html", "--fetched-at", "0001-01-01T00:00:00+01:00"
    ),
    "--fetched-at year 9999 west of UTC": case(
        2, "--fetched-at", "import", "page.html", "--fetched-at", "9999-12-31T23:59:59-01:00"
    ),
    "--url unclosed IPv6": case(2, "--url", "import", "page.html", "--url", "http://[::1"),
    "import /dev/zero": case(2, "/dev/zero|not a regular file", "import", "/dev/zero"),
    "import an oversized file": case(2, "big.html|larger than", "import", "big.html"),
    "import a FIFO": case(2, "fifo.html|not a regular file", "import", "fifo.html"),
    "import-warc a FIFO": case(2, "fifo.html|not a regular file", "import-warc", "fifo.html"),
    "jobs check a FIFO": case(2, "fifo.html|not a regular file", "jobs", "--jobs", "fifo.html"),
    "schedule show a FIFO": case(
        2, "fifo.html|not a regular file", "schedule", "show", "--jobs", "fifo.html"
    ),
    "run a FIFO": case(2, "fifo.html|not a regular file", "run", "daily", "--jobs", "fifo.html"),
    "runs a FIFO": case(2, "fifo.html|not a regular file", "runs", "--jobs", "fifo.html"),
    "jobs file nested 100k deep": case(2, "deep.toml|too deep", "jobs", "--jobs", "deep.toml"),
    "jobs file with a bad port": case(
        2, "badport.toml|'daily'|'db'|port", "jobs", "--jobs", "badport.toml"
    ),
    **{
        f"jobs file with {key} = {value}": case(
            2, f"{key}.toml|'daily'|'{key}'", "jobs", "check", "--jobs", f"{key}.toml"
        )
        for key, value in (("delay", "nan"), ("max_time", "inf"), ("refresh_after", "nan"))
    },
    "run a job with delay = nan": case(
        2, "delay.toml|'daily'|'delay'|finite", "run", "daily", "--jobs", "delay.toml"
    ),
    "run a job logging to a FIFO": case(
        2, "fifo.html|log file|not a regular file", "run", "daily", "--jobs", "fifolog.toml"
    ),
    "archive ftp://": case(
        2, "ftp://example.org/x", "archive", "--db", "good.db", "ftp://example.org/x"
    ),
    "query a missing database": case(1, "missing.db", "query", "--db", "missing.db"),
    "stats on a missing database": case(1, "missing.db", "stats", "--db", "missing.db"),
    "export from a missing database": case(1, "missing.db", "export", "--db", "missing.db"),
    "runs on a missing database": case(1, "missing.db", "runs", "--db", "missing.db"),
    "--jobs past the CPU count": case(
        0, "--jobs 48|CPUs", "import", "page.html", "--db", "jobs.db", "--jobs", "48"
    ),
    "a --db name too long to look up": case(1, "no database", "runs", "--db", "d" * 5000),
    "a jobs file name too long to look up": case(2, "too long", "jobs", "--jobs", "j" * 5000),
    "an import name too long to look up": case(2, "too long", "import", "i" * 5000),
    "--cdxj without warc": case(2, "--cdxj", "export", "--db", "good.db", "--cdxj"),
    "unterminated search quote": case(
        2, "--search|quote", "query", "--db", "good.db", "--search", '"unterminated'
    ),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with every input the cases name (made once: the good archive is slow)."""
    here = tmp_path_factory.mktemp("badinput")
    shutil.copy(PAGE, here / "page.html")
    (here / "corrupt.db").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    os.mkfifo(here / "fifo.html")
    with (here / "big.html").open("wb") as big:
        big.truncate(MAX_INPUT_FILE_BYTES + 1)  # sparse: no disk used
    (here / "deep.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    (here / "badport.toml").write_text(GOOD_JOBS.replace('"reviews.db"', f'"{BAD_PORT}"'))
    for key, value in (("delay", "nan"), ("max_time", "inf"), ("refresh_after", "nan")):
        (here / f"{key}.toml").write_text(GOOD_JOBS + f"{key} = {value}\n")
    (here / "fifolog.toml").write_text(GOOD_JOBS + 'log_file = "fifo.html"\n')
    # The good archive is made in this process: only the cases themselves need one each.
    assert main(["import", str(here / "page.html"), "--db", str(here / "good.db")]) == 0
    yield here


def reviews(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("REVIEWS_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "scraper", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,  # a FIFO read would block for ever: that is a failure, not a wait
        check=False,
    )


#: A few quick cases run in the fast tier; each case starts a ``reviews`` process (0.2
#: to 0.7 s), so the others (FIFOs, a corrupt database among them) are in the slow tier.
FAST_CASES = {
    "bad port: query",
    "query a missing database",
    "huge --limit",
    "jobs file nested 100k deep",
}
assert set(CASES) >= FAST_CASES, FAST_CASES - set(CASES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in FAST_CASES else pytest.mark.slow)
        for name in sorted(CASES)
    ],
)
def test_bad_input_is_one_line_naming_it(folder: Path, name: str) -> None:
    bad = CASES[name]
    done = reviews(folder, *bad.args)
    err = done.stderr
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("usage:")]
    lines = [line for line in lines if line.strip() and not line.startswith(" ")]
    if bad.code == 0 and not bad.words:
        assert lines == [], err  # a quiet success
        return
    assert len(lines) == 1, err
    assert done.returncode == bad.code, err
    for word in bad.words:
        assert word in lines[0], (word, lines[0])
    if "--delay" not in bad.args:
        assert "--delay" not in lines[0]  # a jobs file's delay is its key, not an option
    assert not (folder / "missing.db").exists()


@pytest.mark.parametrize("search", ['"unterminated', 'lantern "festival', '"a" "b'])
def test_an_unclosed_quote_is_malformed_on_both_engines(
    db_url: str, search: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_query_pages import build_archive

    from scraper.cli import main

    build_archive(db_url).dispose()
    assert main(["query", "--db", db_url, "--search", search]) == 2
    err = capsys.readouterr().err
    assert "--search" in err and "malformed" in err and "Traceback" not in err
    assert main(["query", "--db", db_url, "--search", search + '"', "--format", "jsonl"]) == 0


def test_sort_accepts_a_dash_value(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from test_query_pages import build_archive

    from scraper.cli import main

    build_archive(sqlite_url).dispose()
    runs = []
    for words in (["--sort", "-date"], ["--sort=-date"], ["--sort", "date"]):
        assert main(["query", "--db", sqlite_url, "--format", "jsonl", *words]) == 0
        out = capsys.readouterr().out
        runs.append([json.loads(line)["date"] for line in out.splitlines()])
    assert runs[0] == runs[1] == sorted(runs[2], reverse=True) and len(runs[0]) == 7


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, filled to the last block (needs root; skips otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    try:
        with (mount / "filler").open("wb", buffering=0) as filler:
            try:
                while filler.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_export_on_a_full_disk_fails_and_leaves_nothing(
    sqlite_url: str, full_disk: Path, format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_query_pages import build_archive

    from scraper.cli import main

    build_archive(sqlite_url).dispose()
    out = full_disk / f"reviews.{format}"
    code = main(["export", "--db", sqlite_url, "--format", format, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "--out" in err and "No space left" in err and "Traceback" not in err
    assert sorted(path.name for path in full_disk.iterdir()) == ["filler"]


@pytest.mark.parametrize(
    "args",
    [
        ["import-warc", "bad\x00name.warc"],
        ["import", "bad\x00name.html"],
        ["jobs", "--jobs", "bad\x00name.toml"],
        ["query", "--db", "bad\x00name.db"],
    ],
)
def test_a_nul_in_a_file_name_is_one_line(
    tmp_path: Path,
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A NUL cannot come through exec(), but it can through the API and $REVIEWS_DB."""
    from scraper.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own refusal
        code = int(stop.code or 0)
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err
    assert "NUL" in err or "null" in err


@pytest.mark.parametrize(
    "format",
    ["jsonl", "csv", "warc", pytest.param("parquet", marks=pytest.mark.slow)],  # pyarrow: 0.9 s
)
def test_export_to_a_device_writes_to_it_and_leaves_it_a_device(
    sqlite_url: str, tmp_path: Path, format: str
) -> None:
    """--out on a device must not rename a finished file over the device (it did so to
    /dev/null). A null device of our own: the system's is shared with other runs."""
    import stat

    from test_query_pages import build_archive

    from scraper.cli import main

    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as error:
        pytest.skip(f"cannot make a device node here: {error}")
    build_archive(sqlite_url).dispose()
    assert main(["export", "--db", sqlite_url, "--format", format, "--out", str(device)]) == 0
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["null", "reviews.db"]
