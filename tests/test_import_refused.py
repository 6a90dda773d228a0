"""``reviews import``: a page the database refuses for its own values is named and
skipped, and every other file is stored (SQLite's batches, PostgreSQL's writers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_import_writers import _folder

from scraper.cli import ExitCode, main
from scraper.store.engine import open_engine

pytestmark = pytest.mark.slow  # starts process pools

#: The refused day: every capture of it (``_folder`` makes four days of seven pages).
_DAY = "2026-01-03"

_SQLITE_REFUSE = (
    "CREATE TRIGGER refuse BEFORE INSERT ON raw_pages "
    f"WHEN new.fetched_at LIKE '{_DAY}%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
)
_PG_REFUSE = (
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$",
    "CREATE TRIGGER refuse BEFORE INSERT ON raw_pages FOR EACH ROW "
    f"WHEN (NEW.fetched_at::date = DATE '{_DAY}') EXECUTE FUNCTION refuse()",
)


@pytest.mark.parametrize("jobs", [[], ["--jobs", "1"]], ids=["default-jobs", "one-process"])
def test_sqlite_import_names_each_refused_file_and_stores_every_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: list[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'archive.db'}"
    _check(db, _SQLITE_REFUSE, tmp_path, capsys, jobs)


@pytest.mark.parametrize("jobs", [["--jobs", "2"], ["--jobs", "1"]], ids=["writers", "one"])
def test_postgresql_import_names_each_refused_file_and_stores_every_other(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: list[str]
) -> None:
    _check(postgres_url, _PG_REFUSE, tmp_path, capsys, jobs)


def _check(
    db: str,
    refuse: str | tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    jobs: list[str],
) -> None:
    assert main(["db", "--db", db, "upgrade"]) == ExitCode.OK
    engine = open_engine(db)
    try:
        with engine.begin() as connection:
            for statement in (refuse,) if isinstance(refuse, str) else refuse:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    folder = _folder(tmp_path)
    files = sorted(folder.iterdir())
    refused = [path for path in files if _DAY in path.name]
    assert refused and len(refused) < len(files)
    capsys.readouterr()
    options = ["--fetched-at-from", "name", *jobs]
    assert main(["import", str(folder), "--db", db, *options]) == ExitCode.PAGE_ERRORS
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if "refused" in line]
    assert len(errors) == len(refused)  # one line each, naming the file
    assert all(any(f"error: {path}: not stored" in line for line in errors) for path in refused)
    assert f"stored {len(files) - len(refused)} pages" in out
    engine = open_engine(db)
    try:
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM raw_pages").scalar_one()
    finally:
        engine.dispose()
    assert stored == len(files) - len(refused)
