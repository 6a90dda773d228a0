"""Revision 0007: SQLite's full-text index merges ``sqlite_fts_automerge`` segments at a
time (``sqlite_fts_crisismerge`` at once); a downgrade gives the index FTS5's defaults
back; searches find the same reviews either way; PostgreSQL is left as it was."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from scraper.config import StoreSettings
from scraper.store.engine import open_engine, write_transaction
from scraper.store.migrate import alembic_config, schema_state

REVISION_0007 = importlib.import_module("scraper.schema.migrations.versions.0007_fts_automerge")

_MERGES = "SELECT k, v FROM reviews_fts_config WHERE k IN ('automerge', 'crisismerge')"
_SETTINGS = StoreSettings()
_OURS = {
    "automerge": _SETTINGS.sqlite_fts_automerge,
    "crisismerge": _SETTINGS.sqlite_fts_crisismerge,
}


def _merges(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {str(row[0]): row[1] for row in conn.exec_driver_sql(_MERGES)}


def _migrate(engine: sa.Engine, revision: str, *, down: bool) -> None:
    with write_transaction(engine) as conn:
        (command.downgrade if down else command.upgrade)(alembic_config(conn), revision)


def _search(engine: sa.Engine, words: str) -> list[int]:
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH ? ORDER BY rowid", (words,)
        )
        return [row[0] for row in found]


def test_the_settings_name_the_revision_s_numbers() -> None:
    assert _OURS == {
        "automerge": REVISION_0007._AUTOMERGE,
        "crisismerge": REVISION_0007._CRISISMERGE,
    }
    assert dict(REVISION_0007._FTS5_DEFAULTS) != _OURS
    # Above automerge, a level is merged a little at a time, never all in one batch.
    assert _SETTINGS.sqlite_fts_crisismerge > _SETTINGS.sqlite_fts_automerge


def test_a_new_archive_merges_as_the_settings_say(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)
    try:
        assert _merges(engine) == _OURS
    finally:
        engine.dispose()


def test_downgrade_gives_fts5_s_defaults_back_and_upgrade_sets_them_again(
    tmp_path: Path,
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'reviews.db'}")
    try:
        with write_transaction(engine) as conn:
            for number in range(1, 41):  # one segment a statement: merges run
                conn.exec_driver_sql(
                    "INSERT INTO reviews_fts(rowid, body) VALUES (?, ?)",
                    (number, f"lantern harbour number{number} {'quiet' if number % 3 else ''}"),
                )
        before = _search(engine, '"lantern" "quiet"')
        assert len(before) == 27
        _migrate(engine, "0006", down=True)
        assert _merges(engine) == {}
        assert schema_state(engine).current == ("0006",)
        assert _search(engine, '"lantern" "quiet"') == before
        _migrate(engine, "head", down=False)
        assert _merges(engine) == _OURS
        assert _search(engine, '"lantern" "quiet"') == before
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgresql_goes_down_and_up_unchanged(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    try:
        _migrate(engine, "0006", down=True)
        assert schema_state(engine).current == ("0006",)
        _migrate(engine, "head", down=False)
        assert schema_state(engine).up_to_date
    finally:
        engine.dispose()
