"""Opening and migrating the archive's database, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import REPO

from scraper.errors import StoreError
from scraper.schema.tables import metadata
from scraper.store.engine import open_engine
from scraper.store.migrate import migrations_folder, schema_state, upgrade


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """No database there yet (conftest's is a migrated copy): these tests are about
    what opening and migrating make of a database."""
    return f"sqlite:///{tmp_path / 'reviews.db'}"


def test_new_database_is_migrated_and_matches_the_tables(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        state = schema_state(engine)
        assert state.up_to_date and state.current == (state.head,)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
        # Full-text search objects (revision 0002) live outside the tables module.
        differences = [d for d in differences if "fts" not in repr(d).lower()]
        assert differences == []
        assert set(metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reopening_is_cheap(db_url: str) -> None:
    first = open_engine(db_url)
    second = open_engine(db_url)
    try:
        before = upgrade(second)
        assert before.up_to_date
        with second.begin() as connection:
            connection.execute(sa.text("SELECT count(*) FROM reviews")).scalar_one()
    finally:
        first.dispose()
        second.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'reviews.db'}"
    with pytest.raises(StoreError, match="does not exist"):
        open_engine(url)


def test_a_path_that_cannot_be_a_database_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    with pytest.raises(StoreError, match=r"a-folder\.db"):
        open_engine(f"sqlite:///{folder}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreError, match=str(folder)):
            open_engine(f"sqlite:///{folder / 'reviews.db'}")
    finally:
        folder.chmod(stat.S_IRWXU)


def test_an_unwritable_file_is_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "reviews.db"
    path.write_bytes(b"this is not a database, just some text that fills the header" * 20)
    with pytest.raises(StoreError, match=r"reviews\.db"):
        open_engine(f"sqlite:///{path}")


def test_an_unreachable_server_is_a_store_error_without_password() -> None:
    url = "postgresql+psycopg://someone:secret@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StoreError) as info:
        open_engine(url)
    assert "127.0.0.1:1/nowhere" in str(info.value)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "postgresql+psycopg2://postgres@127.0.0.1/test", "not a url", "sqlite://"],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError):
        open_engine(url)


def test_a_foreign_database_is_not_written_into(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    with pytest.raises(StoreError, match="no review-archiver schema revision"):
        open_engine(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "reviews" not in tables


def test_a_newer_database_is_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reviews.db'}"
    open_engine(url).dispose()
    with sqlite3.connect(tmp_path / "reviews.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    # A fresh URL spelling bypasses the per-process cache of checked databases.
    with pytest.raises(StoreError, match=r"9999.*newer"):
        open_engine(f"sqlite:///{tmp_path}/./reviews.db")


def test_migrations_are_found_next_to_the_installed_package() -> None:
    import scraper

    folder = migrations_folder()
    assert folder.is_relative_to(Path(scraper.__file__).resolve().parent.parent)
    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert (folder / "versions" / "0001_initial.py").is_file()


@pytest.mark.slow
def test_an_installed_wheel_creates_and_migrates_its_database(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    repo = REPO
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
    )
    wheels = list(tmp_path.glob("*.whl"))
    if built.returncode != 0 or not wheels:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip()[-200:]}")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(site)
    script = (
        "import sys, scraper\n"
        "from scraper.store.engine import open_engine\n"
        "from scraper.store.migrate import schema_state\n"
        f"assert scraper.__file__.startswith({str(site)!r}), scraper.__file__\n"
        f"engine = open_engine('sqlite:///{tmp_path}/fresh.db')\n"
        "print(schema_state(engine).up_to_date)\n"
    )
    # The unpacked wheel comes first on the path, ahead of the editable checkout.
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_an_out_of_date_database_is_upgraded_on_first_use(db_url: str) -> None:
    from alembic import command

    from scraper.store.migrate import alembic_config

    bare = open_engine(db_url, migrate=False)
    try:
        with bare.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        assert schema_state(bare).current == ("0001",)
    finally:
        bare.dispose()
    # Opening without migrating did not mark the URL as checked in this process.
    engine = open_engine(db_url)
    try:
        assert schema_state(engine).up_to_date
    finally:
        engine.dispose()
