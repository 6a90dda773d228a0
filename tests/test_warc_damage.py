"""Truncated and damaged WARC files: each bad record is named and skipped, the rest imported.

The files are real truncations and corruptions of our own WARC export (gzipped per
record as written, and the same records uncompressed). The oracle for a cut file
is the same file cut at the last record boundary before the cut: what a clean,
shorter file holds is exactly what must be stored, nothing from the cut record.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_warc import build_varied_archive, raw_pages

from scraper.cli import ExitCode, main

DAMAGED_LINE = re.compile(
    r"reviews import-warc: (?P<file>\S+): damaged record at offset (?P<offset>\d+) "
    r"\((?P<id><urn:uuid:[0-9a-f-]+>|no record id)\): .+; skipped"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Our export of the varied archive: the source database, gzipped and plain WARC."""
    folder = tmp_path_factory.mktemp("export")
    source = f"sqlite:///{folder / 'source.db'}"
    build_varied_archive(source)
    zipped = folder / "archive.warc.gz"
    assert main(["export", "--db", source, "--format", "warc", "--out", str(zipped)]) == 0
    plain = folder / "archive.warc"
    plain.write_bytes(gzip.decompress(zipped.read_bytes()))
    return folder / "source.db", zipped, plain


@pytest.fixture(params=["gz", "plain"])
def either(exported: tuple[Path, Path, Path], request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """The source database and one of the two WARC files."""
    source, zipped, plain = exported
    return source, zipped if request.param == "gz" else plain


def _boundaries(path: Path) -> list[int]:
    """Where each record ends (its closing CRLFs included), by warcio's reading."""
    from warcio.archiveiterator import ArchiveIterator

    starts, ends = [], []
    with path.open("rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            record.content_stream().read()
            starts.append(records.get_record_offset())
            ends.append(records.get_record_offset() + records.get_record_length())
    if path.suffix == ".gz":
        return ends  # a record's gzip member holds its closing CRLFs
    # Plain: warcio counts the CRLFs between records to neither; the next one starts there.
    return [*starts[1:], path.stat().st_size]


def _import(tmp_path: Path, name: str, data: bytes, capsys: Any) -> tuple[int, str, list[Any]]:
    path = tmp_path / name
    path.write_bytes(data)
    db = f"sqlite:///{tmp_path / (name + '.db')}"
    code = main(["import-warc", "--db", db, str(path)])
    return code, capsys.readouterr().err, raw_pages(db)


@pytest.mark.slow  # imports the file cut at every record boundary
def test_a_cut_file_stores_the_whole_records_and_names_the_cut_one(
    either: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, path = either
    data = path.read_bytes()
    ends = _boundaries(path)
    assert len(ends) == 1 + 2 * 7 + 1  # warcinfo, 7 request + response/revisit pairs, 1 resource
    everything = raw_pages(f"sqlite:///{source}")
    # Cut points spread over the file, plus one a few bytes into each record and one
    # a few bytes before each record's end (inside its closing CRLFs for plain files).
    cuts = sorted(
        {len(data) * n // 23 for n in range(1, 23)}
        | {end + 7 for end in ends[:-1]}
        | {end - 3 for end in ends[1:]}
    )
    oracles: dict[int, list[Any]] = {}
    for cut in cuts:
        whole = max((end for end in ends if end <= cut), default=0)
        if whole not in oracles:
            code, err, oracles[whole] = _import(tmp_path, f"whole-{whole}", data[:whole], capsys)
            assert code == ExitCode.OK, err
        code, err, stored = _import(tmp_path, f"cut-{cut}", data[:cut], capsys)
        assert stored == oracles[whole], f"cut at {cut}"
        assert all(row in everything for row in stored)  # each one a whole capture
        if cut == whole:
            assert code == ExitCode.OK, err
            continue
        assert code == ExitCode.PAGE_ERRORS, f"cut at {cut}: {err}"
        damaged = [m for line in err.splitlines() if (m := DAMAGED_LINE.fullmatch(line))]
        assert len(damaged) == 1, err
        assert damaged[0]["file"].endswith(f"cut-{cut}")
        assert int(damaged[0]["offset"]) == whole
        assert "the file ends inside" in err
    assert _import(tmp_path, "all", data, capsys)[2] == everything


@pytest.mark.slow
def test_a_cut_plain_file_gives_a_clean_message_not_a_traceback(
    exported: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, _, plain = exported
    data = plain.read_bytes()
    cut = tmp_path / "cut.warc"
    cut.write_bytes(data[: len(data) * 2 // 3])
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "import-warc", "--db", str(tmp_path / "r.db"), str(cut)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == ExitCode.PAGE_ERRORS
    assert "Traceback" not in done.stderr
    assert sum(bool(DAMAGED_LINE.fullmatch(line)) for line in done.stderr.splitlines()) == 1


def _second_response(path: Path) -> tuple[int, int, str, str, str]:
    """Offset, length, record id, URL and date of the second response record of *path*."""
    from warcio.archiveiterator import ArchiveIterator

    found = []
    with path.open("rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            headers = record.rec_headers
            kind, record_id = record.rec_type, headers.get_header("WARC-Record-ID")
            url, date = headers.get_header("WARC-Target-URI"), headers.get_header("WARC-Date")
            record.content_stream().read()
            if kind == "response":
                where = (records.get_record_offset(), records.get_record_length())
                found.append((*where, record_id, url, date))
    return found[1]


@pytest.mark.slow
def test_a_corrupt_record_is_skipped_and_the_rest_imported(
    either: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, path = either
    data = bytearray(path.read_bytes())
    offset, length, record_id, url, date = _second_response(path)
    middle = offset + length * 3 // 4  # in the body: a digest (or the gzip CRC) fails
    data[middle] ^= 0x20
    code, err, stored = _import(tmp_path, f"flipped-{path.name}", bytes(data), capsys)
    assert code == ExitCode.PAGE_ERRORS
    lines = [m for line in err.splitlines() if (m := DAMAGED_LINE.fullmatch(line))]
    assert [(int(m["offset"]), m["id"]) for m in lines] == [(offset, record_id)], err
    _assert_all_but(raw_pages(f"sqlite:///{source}"), stored, url, date, err)


def _assert_all_but(
    everything: list[Any], stored: list[Any], url: str, date: str, err: str
) -> None:
    """Lost: the damaged capture, and the later revisits of its body (each named)."""

    def warc_date(moment: Any) -> str:
        return str(moment.isoformat(timespec="microseconds").replace("+00:00", "Z"))

    lost = next(row for row in everything if row[1] == url and warc_date(row[5]) == date)
    revisits = [row for row in everything if row[6] == lost[6] and row[5] > lost[5]]
    assert stored == [row for row in everything if row is not lost and row not in revisits]
    assert err.count("the record it refers to was not imported") == len(revisits) > 0


@pytest.mark.slow
def test_a_wrong_content_length_is_damage_and_reading_goes_on(
    exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _, plain = exported
    data = plain.read_bytes()
    offset, _, record_id, url, date = _second_response(plain)
    head_end = data.index(b"\r\n\r\n", offset)
    head = data[offset:head_end]
    length = int(re.search(rb"Content-Length: (\d+)", head)[1])  # type: ignore[index]
    shorter = head.replace(b"Content-Length: %d" % length, b"Content-Length: %d" % (length - 40))
    code, err, stored = _import(
        tmp_path, "short.warc", data[:offset] + shorter + data[head_end:], capsys
    )
    assert code == ExitCode.PAGE_ERRORS
    assert f"damaged record at offset {offset} ({record_id}): its Content-Length" in err
    _assert_all_but(raw_pages(f"sqlite:///{source}"), stored, url, date, err)


@pytest.mark.slow
def test_a_warc_gzipped_as_one_member_imports_like_one_gzipped_per_record(
    exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _, plain = exported
    whole = gzip.compress(plain.read_bytes())  # as `gzip file.warc` makes it
    code, err, stored = _import(tmp_path, "whole.warc.gz", whole, capsys)
    assert code == ExitCode.OK, err
    assert stored == raw_pages(f"sqlite:///{source}")  # revisits found inside the member
    # Cut inside that one member: what inflates before the cut is read, the cut one named.
    code, err, stored = _import(tmp_path, "whole-cut.warc.gz", whole[: len(whole) // 2], capsys)
    assert code == ExitCode.PAGE_ERRORS
    assert sum(bool(DAMAGED_LINE.fullmatch(line)) for line in err.splitlines()) == 1
    assert all(row in raw_pages(f"sqlite:///{source}") for row in stored)
