"""PostgreSQL: the same full-text vectors for less server time per stored review.

Computing ``reviews.body_fts`` was most of the server's time per imported page (15.6 of
26.8 ms CPU on a page of 20 real reviews). Two changes, neither of which changes
any stored value:

- ``body_fts`` becomes the same vector from a cheaper expression. Revision 0002
  replaced every run of whitespace *and* punctuation with one space: a regexp match
  at every gap between words (about a thousand matches per review, each restarting
  the regexp engine). Only the punctuation needs replacing: PostgreSQL's parser
  treats a run of whitespace as it treats one space (it gives no token and no
  position), so the vector is the same (tests compare the two expressions on every
  Unicode code point in several contexts). PostgreSQL 15 cannot change a generated
  column's expression in place, so the column is dropped and added again: a rewrite
  of ``reviews`` that computes every vector anew (the same vectors), and its GIN
  index built again: 7.1 s for 6,000 stored reviews at load 6.8 on 2 cores, so
  minutes for a million, with ``reviews`` locked meanwhile.
- ``body`` and ``body_fts`` are compressed with lz4 (when the server has it) instead
  of pglz: about 2 ms less a page. Values stored before keep pglz; both read alike.

SQLite: nothing changes (its FTS5 table tokenizes the body itself).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Kept literal (not imported), so this revision means the same thing forever;
# tests check that scraper.store.fts names what this creates.
_PUNCTUATION = (
    r"\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e\u00a0-\u00bf\u00d7\u00f7"
    r"\u2000-\u206f\u3000-\u303f\uff01-\uff0f"
)
_VECTOR_0002 = (
    "to_tsvector('simple'::regconfig, regexp_replace(body, "
    rf"'[\s{_PUNCTUATION}]+', ' ', 'g'))"
)
_VECTOR = f"to_tsvector('simple'::regconfig, regexp_replace(body, '[{_PUNCTUATION}]+', ' ', 'g'))"

#: lz4 when this server was built with it (it lists it among the method's values).
_HAS_LZ4 = (
    "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _vector_column(expression: str, compression: str) -> list[str]:
    return [
        "DROP INDEX IF EXISTS ix_reviews_body_fts",
        "ALTER TABLE reviews DROP COLUMN IF EXISTS body_fts",
        f"ALTER TABLE reviews ADD COLUMN body_fts tsvector {compression}"
        f"GENERATED ALWAYS AS ({expression}) STORED",
        "CREATE INDEX ix_reviews_body_fts ON reviews USING gin (body_fts)",
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    lz4 = bind.exec_driver_sql(_HAS_LZ4).first() is not None
    if lz4:
        op.execute("ALTER TABLE reviews ALTER COLUMN body SET COMPRESSION lz4")
    for statement in _vector_column(_VECTOR, "COMPRESSION lz4 " if lz4 else ""):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE reviews ALTER COLUMN body SET COMPRESSION default")
    for statement in _vector_column(_VECTOR_0002, ""):
        op.execute(statement)
