"""PostgreSQL: raw bodies are stored out of line as they are, without a try at pglz.

``raw_bodies.data`` is zstd output already (``scraper.store.bodies``), which pglz
cannot make smaller: every stored body (28 KB on average for real first captures)
was passed through pglz, which gave up, and stored as it came, for 0.3 ms of
server CPU a page (0.41-0.43 against 0.10-0.14 ms per body, inserting 120 stored
bodies into a table of each kind). ``STORAGE EXTERNAL`` keeps the out-of-line
storage and skips the try. Only the column's setting changes: no row is rewritten,
and values stored before read as they did (they were stored uncompressed too).

SQLite: nothing changes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE raw_bodies ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE raw_bodies ALTER COLUMN data SET STORAGE EXTENDED")
