"""Full-text search over review bodies, and a joined view for Datasette users.

SQLite: an FTS5 table ``reviews_fts`` with external content on ``reviews.body``
(the text is not stored twice), kept in step by three triggers. PostgreSQL: a
generated tsvector column ``reviews.body_fts`` with a GIN index, which
``scraper.store.fts`` queries (the column is not in ``schema/tables.py``: the
database computes it, nothing writes it).
Both: ``reviews_view``, one row per review with its entry title and username.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Kept literal here (not imported) so this migration means the same thing forever;
# tests check that scraper.store.fts queries what this creates.
_SQLITE_UP = [
    "CREATE VIRTUAL TABLE reviews_fts USING fts5(body, content='reviews', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER reviews_fts_ai AFTER INSERT ON reviews BEGIN "
    "INSERT INTO reviews_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER reviews_fts_ad AFTER DELETE ON reviews BEGIN "
    "INSERT INTO reviews_fts(reviews_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER reviews_fts_au AFTER UPDATE OF body ON reviews BEGIN "
    "INSERT INTO reviews_fts(reviews_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO reviews_fts(rowid, body) VALUES (new.id, new.body); END",
    # Reviews stored before this migration are indexed too.
    "INSERT INTO reviews_fts(reviews_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS reviews_fts_ai",
    "DROP TRIGGER IF EXISTS reviews_fts_ad",
    "DROP TRIGGER IF EXISTS reviews_fts_au",
    "DROP TABLE IF EXISTS reviews_fts",
]
# A stored column, not an expression index: phrase matches re-check candidate rows,
# and recomputing the vector from the body for each of them is what costs.
_POSTGRES_UP = [
    "ALTER TABLE reviews ADD COLUMN body_fts tsvector GENERATED ALWAYS AS ("
    "to_tsvector('simple'::regconfig, regexp_replace(body, "
    r"'[\s\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e\u00a0-\u00bf\u00d7\u00f7"
    r"\u2000-\u206f\u3000-\u303f\uff01-\uff0f]+', ' ', 'g'))) STORED",
    "CREATE INDEX ix_reviews_body_fts ON reviews USING gin (body_fts)",
]
_POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_reviews_body_fts",
    "ALTER TABLE reviews DROP COLUMN IF EXISTS body_fts",
]

# Tags in page order, as one readable string per review.
_TAGS = {
    "sqlite": "(SELECT group_concat(name, ', ') FROM (SELECT t.name FROM review_tags rt "
    "JOIN tags t ON t.id = rt.tag_id WHERE rt.review_id = r.id ORDER BY rt.position))",
    "postgresql": "(SELECT string_agg(t.name, ', ' ORDER BY rt.position) FROM review_tags rt "
    "JOIN tags t ON t.id = rt.tag_id WHERE rt.review_id = r.id)",
}

_VIEW = """
CREATE VIEW reviews_view AS
SELECT
    r.id AS review_id,
    'https://myanimelist.net/reviews.php?id=' || r.id AS url,
    r.type AS type,
    e.mal_id AS entry_mal_id,
    e.title AS entry_title,
    u.username AS username,
    r.date AS date,
    r.score AS score,
    {tags} AS tags,
    r.is_spoiler AS is_spoiler,
    r.is_preliminary AS is_preliminary,
    r.episodes_watched AS episodes_watched,
    r.chapters_read AS chapters_read,
    r.reactions_overall AS reactions,
    r.helpful_count AS helpful_count,
    r.layout AS layout,
    r.body AS review,
    r.first_seen_at AS first_seen_at,
    r.last_seen_at AS last_seen_at,
    e.url AS entry_url,
    u.url AS user_url
FROM reviews r
JOIN entries e ON e.id = r.entry_id
JOIN users u ON u.id = r.user_id
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_UP, "postgresql": _POSTGRES_UP}.get(dialect, [])
    for statement in statements:
        op.execute(statement)
    if dialect in _TAGS:
        op.execute(_VIEW.format(tags=_TAGS[dialect]))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW IF EXISTS reviews_view")
    for statement in {"sqlite": _SQLITE_DOWN, "postgresql": _POSTGRES_DOWN}.get(dialect, []):
        op.execute(statement)
