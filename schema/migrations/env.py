"""Alembic environment: runs the migrations on the connection the caller hands in.

review-archiver runs Alembic programmatically (``scraper.store.migrate``), passing an
open connection in ``config.attributes["connection"]``; running ``alembic`` by hand
with a ``sqlalchemy.url`` option works too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from scraper.schema.tables import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: let later migrations use batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as owned:
        _run(owned)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("review-archiver migrations run online only (reviews db upgrade)")
run_migrations_online()
