"""``reviews parse``: output, exit codes and messages, through the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MAL

from scraper.cli import main

GOOD = MAL / "anime-reviews-current.html"


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_page_prints_its_records_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(GOOD)]) == 0
    out, err = capsys.readouterr()
    expected = (MAL / "anime-reviews-current.expected.jsonl").read_text(encoding="utf-8")
    assert _lines(out) == _lines(expected)
    assert err == ""


def test_json_format_prints_one_array(capsys: pytest.CaptureFixture[str]) -> None:
    manga = MAL / "manga-reviews-current.html"
    assert main(["parse", "--format", "json", str(GOOD), str(manga)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["mal_id"] for r in records] == [880001, 880002, 880003, 880101, 880102]


def test_folder_runs_every_page_and_names_the_bad_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["parse", str(MAL)]) == 3
    out, err = capsys.readouterr()
    expected = sum(
        len(path.read_text(encoding="utf-8").splitlines()) for path in MAL.glob("*.expected.jsonl")
    )
    assert len(out.splitlines()) == expected
    lines = err.splitlines()
    assert any("blocked-access-denied.html" in line and "block" in line for line in lines)
    assert any("not-a-review-page.html" in line and "not a review page" in line for line in lines)
    assert any("unrecognised-layout.html" in line and "not recognised" in line for line in lines)
    assert any("malformed.html" in line and "skipped" in line for line in lines)
    assert len(lines) == 4


def test_url_option_moves_nothing_in_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--url", "http://127.0.0.1:1/x", str(GOOD)]) == 0
    for record in _lines(capsys.readouterr().out):
        assert str(record["url"]).startswith("https://myanimelist.net/")


def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.html"
    assert main(["parse", str(GOOD), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(missing) in err and "no such file" in err
    assert "Traceback" not in err


def test_empty_folder_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["parse", str(tmp_path)]) == 2
    assert "no *.html" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    locked = tmp_path / "locked.html"
    shutil.copy(GOOD, locked)
    locked.chmod(0)
    assert main(["parse", str(locked)]) == 2
    assert "not readable" in capsys.readouterr().err


def test_binary_garbage_is_reported_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.html"
    junk.write_bytes(bytes(range(256)) * 8)
    assert main(["parse", str(junk), str(GOOD)]) == 3
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert "junk.html" in err


def test_real_process_stays_light_and_exits_3() -> None:
    # The whole command in its own interpreter: the exit code the shell sees,
    # and proof that parsing never imports the database or HTTP stacks.
    probe = (
        "import sys; from scraper.cli import main; code = main(sys.argv[1:]); "
        "heavy = sorted(m for m in ('sqlalchemy', 'httpx', 'rich', 'alembic', 'warcio') "
        "if m in sys.modules); print('HEAVY', heavy, file=sys.stderr); raise SystemExit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "parse", str(MAL)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "HEAVY []" in done.stderr
    assert "Traceback" not in done.stderr


def test_many_pages_into_in_memory_streams_keep_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Workers write into real file descriptors (tests/test_parse_workers.py); a caller's
    # in-memory streams get the same bytes from this process.
    pages = sorted(MAL.glob("*.html"))
    for number in range(30):  # above the worker threshold
        page = pages[number % len(pages)]
        shutil.copy(page, tmp_path / f"{number:03d}-{page.name}")
    assert main(["parse", "--jobs", "1", str(tmp_path)]) == 3
    alone = capsys.readouterr()
    assert main(["parse", "--jobs", "2", str(tmp_path)]) == 3
    workers = capsys.readouterr()
    assert workers.out == alone.out and workers.out.count("\n") > 30
    assert workers.err == alone.err


def test_bad_jobs_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--jobs", "0", str(GOOD)]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_a_file_past_the_input_cap_is_refused_unread(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The same expander as `reviews import`'s: a huge file is named, not read whole.
    from scraper.config import MAX_INPUT_FILE_BYTES

    huge = tmp_path / "huge.html"
    with huge.open("wb") as out:
        out.truncate(MAX_INPUT_FILE_BYTES + 1)  # sparse: no disk used
    assert main(["parse", str(huge)]) == 2
    assert "huge.html: larger than" in capsys.readouterr().err


def test_import_refuses_an_empty_folder_as_parse_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["import", str(tmp_path), "--db", str(tmp_path / "x.db")]) == 2
    assert "folder holds no *.html page" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_a_device_is_not_a_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", os.devnull]) == 2
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["http://[broken", "ftp://example.org/x", "just words"])
def test_bad_url_option_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--url", bad, str(GOOD)]) == 2
    err = capsys.readouterr().err
    assert "--url" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "body",
    [
        'plain ascii with "quotes" and a back\\slash\nand a line',
        'Ed’s café — 星\n\n"quoted" \\ back',
        "control \x02 char and ’",
        "line separator \u2028 and ’",
        "soft hyphen \xad, zero width \u200b, delete \x7f ’",
        "surrogate-free astral 😀 ’",
        "\x00body\x00 in the body ’",
        "",
    ],
)
def test_record_json_is_exactly_json_dumps(body: str) -> None:
    from scraper.cli.parse import record_json
    from scraper.jsontext import record_text
    from scraper.sites.mal.v1 import Review, to_record

    line = (MAL / "anime-reviews-current.expected.jsonl").read_text(encoding="utf-8")
    record = json.loads(line.splitlines()[0])
    record["review"] = body
    review = to_record(Review.from_dict(record))
    exact = json.dumps(review.to_dict(), ensure_ascii=False)
    assert record_json(review) == exact.encode()
    assert record_text(review.to_dict()) == exact  # the JSON Lines export's
    # A title that looks like the body's stand-in changes nothing either.
    record["entry"]["title"] = "\x00body\x00"
    tricky = to_record(Review.from_dict(record))
    assert record_json(tricky) == json.dumps(tricky.to_dict(), ensure_ascii=False).encode()


def test_parse_start_up_loads_only_its_own_command(capsys: pytest.CaptureFixture[str]) -> None:
    # Start-up is part of the speed goal: `reviews parse` registers only its
    # own command module (and its workers' helper, without multiprocessing) and never
    # loads dataclasses or shutil (the api module and the settings are light: no
    # database, no HTTP).
    probe = (
        "import sys; from scraper.cli import main; code = main(sys.argv[1:]); "
        "loaded = sorted(m for m in sys.modules if m.startswith('scraper.cli.') "
        "or m in ('dataclasses', 'shutil', 'sqlalchemy', 'httpx', 'multiprocessing')); "
        "print('LOADED', loaded, file=sys.stderr); raise SystemExit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "parse", str(GOOD)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = "LOADED ['scraper.cli._common', 'scraper.cli._inturn', 'scraper.cli.parse']"
    assert loaded in done.stderr
    # The full parser is still there for help, and for names a module does
    # not register itself (`runs` is registered by the `run` module).
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    for command in ("parse", "archive", "crawl", "import", "export", "import-warc", "sql"):
        assert f"    {command} " in listing or f"    {command}\n" in listing
    with pytest.raises(SystemExit) as stopped:
        main(["ingest"])
    assert stopped.value.code == 2
    assert "invalid choice: 'ingest'" in capsys.readouterr().err


def test_a_warning_shows_control_characters_as_escapes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A file name (or a page's words quoted in a problem) may hold a terminal's escape
    # sequences; the warning shows them, on one line, and runs none.
    page = tmp_path / "bad\x1b[2J\nname.html"
    page.write_text("<html><body><p>no reviews here</p></body></html>", encoding="utf-8")
    assert main(["parse", str(page)]) == 3
    err = capsys.readouterr().err
    assert "\x1b" not in err and err.count("\n") == 1
    assert "bad\\x1b[2J\\x0aname.html: not a review page" in err
