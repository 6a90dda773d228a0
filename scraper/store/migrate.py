"""Schema migrations, run programmatically with Alembic.

The migration scripts ship inside the package (``scraper/schema/migrations``), so an
installed wheel finds them next to its own code; no ``alembic.ini`` is needed.
Upgrades run inside one write transaction holding a lock (PostgreSQL advisory
lock, SQLite write lock), so two processes opening a new database at once do not
both try to create it.

Every command checks the revision when it opens a database, so that check is plain
SQL against Alembic's ``alembic_version`` table and a read of the scripts' own
``revision``/``down_revision`` lines: importing Alembic costs more start-up time
than a read command's whole work on a small archive, so it is imported only to
migrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scraper.errors import StoreError
from scraper.store.connection import describe_url, store_error, write_transaction
from scraper.store.revision import VERSION_TABLE as _VERSION_TABLE
from scraper.store.revision import migrations_folder, scripts_head

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SchemaState",
    "alembic_config",
    "ensure_current",
    "migrations_folder",
    "row_counts",
    "schema_state",
    "upgrade",
]

#: Arbitrary constant naming the migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x7265_7669_6577  # "review"


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: its revision(s) and the newest this version knows."""

    current: tuple[str, ...]
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == (self.head,)


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an Alembic Config for the packaged scripts, bound to *connection* if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_folder()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _head() -> str:
    """Return the newest revision the packaged scripts know (see ``revision``)."""
    return scripts_head() or _alembic_head()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise StoreError("no migration scripts found in the installed package")
    return head


def _current(connection: Connection) -> tuple[str, ...]:
    """Return the revisions in the database's version table (none when it has none).

    What Alembic's ``MigrationContext.get_current_heads`` answers, in plain SQL.
    """
    if not sa.inspect(connection).has_table(_VERSION_TABLE):
        return ()
    rows = connection.execute(sa.text(f"SELECT version_num FROM {_VERSION_TABLE}"))
    return tuple(row[0] for row in rows)


def _state(connection: Connection) -> SchemaState:
    return SchemaState(current=_current(connection), head=_head())


def schema_state(engine: Engine) -> SchemaState:
    """Return the database's revision and the newest one; raises StoreError if unreachable."""
    try:
        with engine.connect() as connection:
            return _state(connection)
    except DBAPIError as error:
        raise store_error(engine, error) from error


def upgrade(engine: Engine) -> SchemaState:
    """Migrate the database to the newest revision; return its state before the upgrade.

    Raises StoreError naming the database when it is unreachable, belongs to
    something else (tables but no revision), or has a revision newer than this
    version of review-archiver knows.
    """
    try:
        # SQLite rebuilds tables by copy, drop and rename: with foreign keys on, dropping
        # a parent would delete its children's rows (ON DELETE CASCADE).
        with write_transaction(engine, foreign_keys=False) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            before = _state(connection)
            if before.up_to_date:
                return before
            _check_upgradable(engine, connection, before)
            from alembic import command

            command.upgrade(alembic_config(connection), "head")
            _check_foreign_keys(connection)
            return before
    except DBAPIError as error:
        raise store_error(engine, error) from error


def _check_foreign_keys(connection: Connection) -> None:
    """Raise StoreError when the upgrade left a row pointing nowhere (SQLite)."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
    if broken is not None:
        raise StoreError(f"the upgrade left a broken reference in table {broken[0]}; not committed")


def ensure_current(engine: Engine) -> None:
    """Upgrade the database if it is not at the newest revision (cheap when it is)."""
    if not schema_state(engine).up_to_date:
        upgrade(engine)


def _check_upgradable(engine: Engine, connection: Connection, state: SchemaState) -> None:
    from alembic.script import ScriptDirectory

    where = describe_url(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [revision for revision in state.current if revision not in known]
    if unknown:
        raise StoreError(
            f"database {where} is at schema revision {', '.join(unknown)}, newer than this "
            f"version of review-archiver knows (newest: {state.head}): upgrade the program"
        )
    if not state.current:
        existing = sa.inspect(connection).get_table_names()
        if existing:
            raise StoreError(
                f"database {where} holds tables ({', '.join(sorted(existing)[:5])}) but no "
                "review-archiver schema revision: refusing to write into it"
            )


def row_counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows of each archive table, in schema order."""
    from scraper.schema.tables import metadata

    try:
        with engine.connect() as connection:
            return {
                name: int(
                    connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for name, table in metadata.tables.items()
            }
    except DBAPIError as error:
        raise store_error(engine, error) from error
