"""``reviews parse`` with worker processes that write their own chunks, in order
(``scraper.cli._inturn``): the same bytes as one process, and clean ends when the
reader leaves, a worker dies, Ctrl-C comes or the parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import MAL
from processes import children, running

from scraper.cli import main

#: Above ``CliSettings.parse_parallel_from``, and more output than a pipe holds.
COPIES = 60


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of every MAL fixture page, the bad ones included (so there are warnings)."""
    pages = sorted(MAL.glob("*.html"))
    where = tmp_path_factory.mktemp("many")
    for number in range(COPIES):
        page = pages[number % len(pages)]
        (where / f"{number:03d}-{page.name}").write_bytes(page.read_bytes())
    return where


def _reviews(*args: str, **options: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "scraper", *args], **options
    )


def _run(tmp_path: Path, *args: str) -> tuple[int, bytes, bytes]:
    """Run ``reviews`` with stdout and stderr in real files; return (code, out, err)."""
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        code = _reviews(*args, stdout=stdout, stderr=stderr).wait(timeout=120)
    return code, out.read_bytes(), err.read_bytes()


@pytest.mark.parametrize("form", ["jsonl", "json"])
def test_workers_write_the_bytes_one_process_writes(
    folder: Path, tmp_path: Path, form: str
) -> None:
    alone = _run(tmp_path, "parse", "--format", form, "--jobs", "1", str(folder))
    workers = _run(tmp_path, "parse", "--format", form, "--jobs", "2", str(folder))
    assert alone[0] == workers[0] == 3  # some fixtures hold no reviews
    assert workers[1] == alone[1] and workers[1].count(b"\n") > COPIES
    assert workers[2] == alone[2] and workers[2].count(b"reviews parse: ") >= COPIES // 13


def test_workers_write_into_the_callers_file_descriptors(
    folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", "--jobs", "1", str(folder)]) == 3
    alone = capfd.readouterr()
    assert main(["parse", "--jobs", "2", str(folder)]) == 3
    workers = capfd.readouterr()
    assert workers.out == alone.out and workers.err == alone.err
    assert workers_of(os.getpid()) == []


def test_a_json_array_without_records_is_still_one_array(tmp_path: Path) -> None:
    blocked = MAL / "blocked-access-denied.html"
    for number in range(COPIES):
        (tmp_path / f"{number:03d}.html").write_bytes(blocked.read_bytes())
    code, out, err = _run(tmp_path, "parse", "--format", "json", "--jobs", "2", str(tmp_path))
    assert (code, out) == (3, b"[]\n")
    assert err.count(b"blocked page") == COPIES


def test_a_non_blocking_pipe_that_fills_loses_nothing(folder: Path, tmp_path: Path) -> None:
    # A parent that made its pipe non-blocking (as some runtimes do) and reads slowly:
    # the workers' writes meet EAGAIN and wait for room.
    expected = _run(tmp_path, "parse", "--jobs", "1", str(folder))[1]
    read, write = os.pipe()
    os.set_blocking(write, False)
    command = _reviews("parse", "--jobs", "2", str(folder), stdout=write, stderr=subprocess.DEVNULL)
    os.close(write)
    time.sleep(0.5)  # the pipe fills meanwhile
    with os.fdopen(read, "rb") as output:
        got = output.read()
    assert command.wait(timeout=60) == 3
    assert got == expected


def test_a_reader_that_leaves_ends_the_workers_quietly(folder: Path) -> None:
    command = _reviews(
        "parse", "--jobs", "2", str(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None and command.stderr is not None
    assert command.stdout.read(1000)
    command.stdout.close()  # `reviews parse DIR | head -c 1000`
    assert command.wait(timeout=60) == 0
    with command.stderr:
        assert b"Traceback" not in command.stderr.read()


def workers_of(parent: int) -> list[int]:
    """The running processes whose parent is *parent*."""
    return children(parent, zombies=False)


def _blocked_on_its_pipe(folder: Path, **options: object) -> subprocess.Popen[bytes]:
    """A ``reviews parse`` whose workers have started and wait for the pipe to drain."""
    command = _reviews(
        "parse",
        "--jobs",
        "2",
        str(folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **options,
    )
    assert command.stdout is not None
    assert command.stdout.read(1)  # a worker has written: both are running
    deadline = time.monotonic() + 10
    while len(workers_of(command.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return command


def _finish(command: subprocess.Popen[bytes]) -> tuple[int, list[str]]:
    """Read what is left of its output; return its exit code and its lines on stderr."""
    with command:
        _, err = command.communicate(timeout=60)
    lines = err.decode().splitlines()
    return command.returncode, lines


def test_a_worker_that_dies_is_named_and_stops_the_others(folder: Path) -> None:
    command = _blocked_on_its_pipe(folder)
    workers = workers_of(command.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    code, lines = _finish(command)
    assert code == 1
    assert lines[-1] == (
        "reviews parse: error: a parse worker was killed by SIGKILL: "
        "the records stop after the last pages it wrote"
    )
    assert not any("Traceback" in line for line in lines)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_ctrl_c_stops_the_workers_with_one_line(folder: Path) -> None:
    command = _blocked_on_its_pipe(folder, start_new_session=True)
    workers = workers_of(command.pid)
    os.killpg(command.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
    code, lines = _finish(command)
    assert code == 130
    assert lines[-1] == "reviews: interrupted"
    assert not any("Traceback" in line for line in lines)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_end_when_their_parent_is_killed(folder: Path) -> None:
    command = _blocked_on_its_pipe(folder)
    workers = workers_of(command.pid)
    command.kill()
    command.wait(timeout=10)
    # The one blocked on the full pipe holds the output; the other, waiting for its
    # turn, sees its parent gone and ends.
    deadline = time.monotonic() + 10
    while sum(map(running, workers)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(map(running, workers)) == 1
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()  # the one blocked on the pipe gets EPIPE
    command.stderr.close()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in workers)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_page_that_breaks_the_parser_is_named_and_the_others_run(
    folder: Path,
    tmp_path: Path,
    jobs: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug a site's parser meets on one page (any exception, not a ParseError) must
    # not stop the run: the page is named on stderr, every other page is printed.
    from scraper.sites.mal.site import MalSite

    parse = MalSite.parse

    def broken_on_marked(self: MalSite, tree: Any, url: str | None) -> Any:
        if "parser-bug-here" in tree.html:
            raise RuntimeError("a bug met on this page")
        return parse(self, tree, url)

    assert main(["parse", "--jobs", "1", str(folder)]) == 3
    expected = capfd.readouterr().out
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for page in sorted(folder.iterdir()):
        (mixed / page.name).write_bytes(page.read_bytes())
    a_mal_page = next(folder.glob("*-anime-reviews-current.html")).read_bytes()
    marked = a_mal_page.replace(b"</body>", b"<p>parser-bug-here</p></body>", 1)
    assert marked != a_mal_page
    (mixed / "030-broken.html").write_bytes(marked)
    monkeypatch.setattr(MalSite, "parse", broken_on_marked)
    assert main(["parse", "--jobs", jobs, str(mixed)]) == 3
    out, err = capfd.readouterr()
    assert out == expected
    assert (
        f"reviews parse: {mixed / '030-broken.html'}: unreadable page: the parser failed: "
        "RuntimeError: a bug met on this page\n"
    ) in err
    assert "Traceback" not in err
