"""A site namespace on items, authors and reviews: the archive holds any site's reviews.

- ``entries`` becomes ``items`` (``site``, ``key``: MyAnimeList's ``anime:1``;
  ``type`` free text, ``title`` becomes ``name``); ``users`` / ``user_names``
  become ``authors`` / ``author_names`` (``site``, a ``key`` that is NULL for
  MyAnimeList, whose users are found by their names).
- ``reviews.id`` becomes a row id (SQLite: an alias of the rowid; PostgreSQL: an
  identity starting after the largest id) and the review's own id is
  ``(site, key)``; existing rows keep their ids, so ``review_tags`` and
  ``review_observations`` keep pointing at them. The v1 columns become generic
  ones (date as given and as a UTC instant, rating with its scale, reactions as
  JSON, ``source``) and MyAnimeList's own fields move to ``extra`` (JSON).
- ``review_observations``: rating, author name, reactions, body hash, tags, extra;
  an index on ``raw_page_id`` (reparse deletes by it).
- Full text and ``reviews_view`` are made again over the new columns; the FTS5
  table names its content table with double quotes, as Datasette reads it.

Every existing row is MyAnimeList's: its site and keys are written here literally,
so this revision means the same thing forever (like 0001 and 0002).
SQLite rebuilds ``reviews`` and ``review_observations`` once each (one copy of the
data) with foreign keys off (``scraper.store.migrate`` turns them off for the
upgrade and checks them after it); PostgreSQL alters the tables in place.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SITE = "'myanimelist'"
_PERMALINK = "'https://myanimelist.net/reviews.php?id='"
_KINDS: tuple[str, ...] = ("overall", "nice", "love_it", "funny", "confusing")
_KINDS += ("informative", "well_written", "creative")


def _reactions(build: str) -> str:
    """The v1 reaction columns as one JSON object (NULL when the layout had none)."""
    columns = ", ".join(f"reactions_{kind}" for kind in _KINDS)
    pairs = ", ".join(f"'{kind}', reactions_{kind}" for kind in _KINDS)
    return f"CASE WHEN coalesce({columns}) IS NULL THEN NULL ELSE {build}({pairs}) END"


# --- SQLite --------------------------------------------------------------------------

_SQLITE_BOOL = "json(CASE WHEN {0} THEN 'true' ELSE 'false' END)"

_SQLITE_TABLES = [
    """CREATE TABLE items (
    id INTEGER NOT NULL, site TEXT NOT NULL, "key" TEXT NOT NULL, type TEXT, name TEXT,
    url TEXT, first_seen_at DATETIME NOT NULL, last_seen_at DATETIME NOT NULL,
    CONSTRAINT pk_items PRIMARY KEY (id),
    CONSTRAINT uq_items_site_key UNIQUE (site, "key"))""",
    f"""INSERT INTO items (id, site, "key", type, name, url, first_seen_at, last_seen_at)
    SELECT id, {_SITE}, type || ':' || mal_id, type, title, url, first_seen_at, last_seen_at
    FROM entries""",
    "CREATE INDEX ix_items_name ON items (name)",
    """CREATE TABLE authors (
    id INTEGER NOT NULL, site TEXT NOT NULL, "key" TEXT, name TEXT, url TEXT,
    image_url TEXT, name_seen_at DATETIME NOT NULL,
    CONSTRAINT pk_authors PRIMARY KEY (id),
    CONSTRAINT uq_authors_site_key UNIQUE (site, "key"))""",
    f"""INSERT INTO authors (id, site, "key", name, url, image_url, name_seen_at)
    SELECT id, {_SITE}, NULL, username, url, image_url, name_seen_at FROM users""",
    "CREATE INDEX ix_authors_name ON authors (name)",
    """CREATE TABLE author_names (
    author_id INTEGER NOT NULL, name TEXT NOT NULL,
    first_seen_at DATETIME NOT NULL, last_seen_at DATETIME NOT NULL,
    CONSTRAINT pk_author_names PRIMARY KEY (author_id, name),
    CONSTRAINT fk_author_names_author_id_authors FOREIGN KEY(author_id)
        REFERENCES authors (id) ON DELETE CASCADE)""",
    """INSERT INTO author_names (author_id, name, first_seen_at, last_seen_at)
    SELECT user_id, username, first_seen_at, last_seen_at FROM user_names""",
    "CREATE INDEX ix_author_names_name ON author_names (name)",
    """CREATE TABLE reviews_0003 (
    id INTEGER NOT NULL, site TEXT NOT NULL, "key" TEXT NOT NULL, url TEXT NOT NULL,
    item_id INTEGER NOT NULL, author_id INTEGER NOT NULL, item_type TEXT,
    date_text TEXT, date DATETIME, title TEXT,
    rating_value FLOAT, rating_best FLOAT, rating_worst FLOAT,
    body TEXT, body_sha256 VARCHAR(64), reactions JSON, source VARCHAR(16) NOT NULL,
    extra JSON, first_seen_at DATETIME NOT NULL, last_seen_at DATETIME NOT NULL,
    last_raw_page_id INTEGER,
    CONSTRAINT pk_reviews PRIMARY KEY (id),
    CONSTRAINT uq_reviews_site_key UNIQUE (site, "key"),
    CONSTRAINT fk_reviews_item_id_items FOREIGN KEY(item_id) REFERENCES items (id),
    CONSTRAINT fk_reviews_author_id_authors FOREIGN KEY(author_id) REFERENCES authors (id),
    CONSTRAINT fk_reviews_last_raw_page_id_raw_pages FOREIGN KEY(last_raw_page_id)
        REFERENCES raw_pages (id))""",
    f"""INSERT INTO reviews_0003 (id, site, "key", url, item_id, author_id, item_type,
    date_text, date, title, rating_value, rating_best, rating_worst, body, body_sha256,
    reactions, source, extra, first_seen_at, last_seen_at, last_raw_page_id)
    SELECT id, {_SITE}, CAST(id AS TEXT), {_PERMALINK} || id, entry_id, user_id, type,
    strftime('%Y-%m-%dT%H:%M:%S', date) || '+00:00', date, NULL, score, 10, 1, body,
    body_sha256, {_reactions("json_object")}, 'mal-' || layout,
    json_object('is_spoiler', {_SQLITE_BOOL.format("is_spoiler")},
        'is_preliminary', {_SQLITE_BOOL.format("is_preliminary")},
        'episodes_watched', episodes_watched, 'chapters_read', chapters_read,
        'helpful_count', helpful_count, 'scores', json(scores), 'layout', layout),
    first_seen_at, last_seen_at, last_raw_page_id
    FROM reviews ORDER BY id""",
    """CREATE TABLE review_observations_0003 (
    id INTEGER NOT NULL, review_id INTEGER NOT NULL, raw_page_id INTEGER NOT NULL,
    observed_at DATETIME NOT NULL, author_name TEXT, rating_value FLOAT, reactions JSON,
    tags JSON NOT NULL, body_sha256 VARCHAR(64), extra JSON,
    CONSTRAINT pk_review_observations PRIMARY KEY (id),
    CONSTRAINT uq_review_observations_review_id_raw_page_id UNIQUE (review_id, raw_page_id),
    CONSTRAINT fk_review_observations_review_id_reviews FOREIGN KEY(review_id)
        REFERENCES reviews (id) ON DELETE CASCADE,
    CONSTRAINT fk_review_observations_raw_page_id_raw_pages FOREIGN KEY(raw_page_id)
        REFERENCES raw_pages (id))""",
    f"""INSERT INTO review_observations_0003 (id, review_id, raw_page_id, observed_at,
    author_name, rating_value, reactions, tags, body_sha256, extra)
    SELECT id, review_id, raw_page_id, observed_at, username, score,
    {_reactions("json_object")}, tags, review_sha256,
    json_object('helpful_count', helpful_count, 'scores', json(scores))
    FROM review_observations ORDER BY id""",
    "DROP TABLE review_observations",
    "DROP TABLE reviews",
    "DROP TABLE user_names",
    "DROP TABLE users",
    "DROP TABLE entries",
    "ALTER TABLE reviews_0003 RENAME TO reviews",
    "ALTER TABLE review_observations_0003 RENAME TO review_observations",
    "CREATE INDEX ix_reviews_item_id ON reviews (item_id)",
    "CREATE INDEX ix_reviews_author_id ON reviews (author_id)",
    "CREATE INDEX ix_reviews_date ON reviews (date)",
    "CREATE INDEX ix_reviews_rating_value ON reviews (rating_value)",
    "CREATE INDEX ix_review_observations_review_id_observed_at "
    "ON review_observations (review_id, observed_at)",
    "CREATE INDEX ix_review_observations_raw_page_id ON review_observations (raw_page_id)",
]

# The FTS5 table and its triggers (dropped with the old reviews table) over the new one.
_SQLITE_FTS = [
    "DROP TABLE IF EXISTS reviews_fts",
    'CREATE VIRTUAL TABLE reviews_fts USING fts5(body, content="reviews", '
    "content_rowid=\"id\", tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER reviews_fts_ai AFTER INSERT ON reviews BEGIN "
    "INSERT INTO reviews_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER reviews_fts_ad AFTER DELETE ON reviews BEGIN "
    "INSERT INTO reviews_fts(reviews_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER reviews_fts_au AFTER UPDATE OF body ON reviews BEGIN "
    "INSERT INTO reviews_fts(reviews_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO reviews_fts(rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO reviews_fts(reviews_fts) VALUES ('rebuild')",
]

# --- PostgreSQL ----------------------------------------------------------------------

_PG_ITEMS = [
    "ALTER TABLE entries RENAME TO items",
    "ALTER TABLE items RENAME CONSTRAINT pk_entries TO pk_items",
    "ALTER SEQUENCE entries_id_seq RENAME TO items_id_seq",
    "ALTER TABLE items DROP CONSTRAINT ck_entries_entry_type",
    "ALTER TABLE items DROP CONSTRAINT uq_entries_type_mal_id",
    "ALTER TABLE items ADD COLUMN site TEXT, ADD COLUMN key TEXT",
    f"UPDATE items SET site = {_SITE}, key = type || ':' || mal_id",
    "ALTER TABLE items ALTER COLUMN site SET NOT NULL, ALTER COLUMN key SET NOT NULL, "
    "ALTER COLUMN type TYPE TEXT, ALTER COLUMN type DROP NOT NULL, "
    "ALTER COLUMN title DROP NOT NULL, ALTER COLUMN url DROP NOT NULL, DROP COLUMN mal_id",
    "ALTER TABLE items RENAME COLUMN title TO name",
    "ALTER TABLE items ADD CONSTRAINT uq_items_site_key UNIQUE (site, key)",
    "CREATE INDEX ix_items_name ON items (name)",
]
_PG_AUTHORS = [
    "ALTER TABLE users RENAME TO authors",
    "ALTER TABLE authors RENAME CONSTRAINT pk_users TO pk_authors",
    "ALTER SEQUENCE users_id_seq RENAME TO authors_id_seq",
    "ALTER INDEX ix_users_username RENAME TO ix_authors_name",
    "ALTER TABLE authors RENAME COLUMN username TO name",
    "ALTER TABLE authors ADD COLUMN site TEXT, ADD COLUMN key TEXT",
    f"UPDATE authors SET site = {_SITE}",
    "ALTER TABLE authors ALTER COLUMN site SET NOT NULL, ALTER COLUMN name DROP NOT NULL, "
    "ALTER COLUMN url DROP NOT NULL",
    "ALTER TABLE authors ADD CONSTRAINT uq_authors_site_key UNIQUE (site, key)",
    "ALTER TABLE user_names RENAME TO author_names",
    "ALTER TABLE author_names RENAME CONSTRAINT pk_user_names TO pk_author_names",
    "ALTER TABLE author_names RENAME CONSTRAINT fk_user_names_user_id_users "
    "TO fk_author_names_author_id_authors",
    "ALTER INDEX ix_user_names_username RENAME TO ix_author_names_name",
    "ALTER TABLE author_names RENAME COLUMN user_id TO author_id",
    "ALTER TABLE author_names RENAME COLUMN username TO name",
]
_PG_REVIEWS = [
    "ALTER TABLE reviews RENAME COLUMN entry_id TO item_id",
    "ALTER TABLE reviews RENAME CONSTRAINT fk_reviews_entry_id_entries TO fk_reviews_item_id_items",
    "ALTER INDEX ix_reviews_entry_id RENAME TO ix_reviews_item_id",
    "ALTER TABLE reviews RENAME COLUMN user_id TO author_id",
    "ALTER TABLE reviews RENAME CONSTRAINT fk_reviews_user_id_users "
    "TO fk_reviews_author_id_authors",
    "ALTER INDEX ix_reviews_user_id RENAME TO ix_reviews_author_id",
    "ALTER TABLE reviews RENAME COLUMN type TO item_type",
    "ALTER TABLE reviews ALTER COLUMN item_type TYPE TEXT, "
    "ALTER COLUMN item_type DROP NOT NULL, ALTER COLUMN date DROP NOT NULL, "
    "ALTER COLUMN body DROP NOT NULL, ALTER COLUMN body_sha256 DROP NOT NULL, "
    "ADD COLUMN site TEXT, ADD COLUMN key TEXT, ADD COLUMN url TEXT, "
    "ADD COLUMN date_text TEXT, ADD COLUMN title TEXT, "
    "ADD COLUMN rating_value FLOAT, ADD COLUMN rating_best FLOAT, "
    "ADD COLUMN rating_worst FLOAT, ADD COLUMN reactions JSON, "
    "ADD COLUMN source VARCHAR(16), ADD COLUMN extra JSON",
    f"""UPDATE reviews SET site = {_SITE}, key = id::text, url = {_PERMALINK} || id,
    date_text = to_char(date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00',
    rating_value = score, rating_best = 10, rating_worst = 1,
    reactions = {_reactions("json_build_object")}, source = 'mal-' || layout,
    extra = json_build_object('is_spoiler', is_spoiler, 'is_preliminary', is_preliminary,
        'episodes_watched', episodes_watched, 'chapters_read', chapters_read,
        'helpful_count', helpful_count, 'scores', scores, 'layout', layout)""",
    "ALTER TABLE reviews ALTER COLUMN site SET NOT NULL, ALTER COLUMN key SET NOT NULL, "
    "ALTER COLUMN url SET NOT NULL, ALTER COLUMN source SET NOT NULL, "
    "DROP COLUMN score, DROP COLUMN is_spoiler, DROP COLUMN is_preliminary, "
    "DROP COLUMN episodes_watched, DROP COLUMN chapters_read, DROP COLUMN helpful_count, "
    "DROP COLUMN scores, DROP COLUMN layout, "
    + ", ".join(f"DROP COLUMN reactions_{kind}" for kind in _KINDS),
    "ALTER TABLE reviews ADD CONSTRAINT uq_reviews_site_key UNIQUE (site, key)",
    "CREATE INDEX ix_reviews_rating_value ON reviews (rating_value)",
    # New reviews get row ids after every existing one (MAL ids stay as they were).
    "ALTER TABLE reviews ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY",
    "SELECT setval(pg_get_serial_sequence('reviews', 'id'), "
    "coalesce(max(id), 0) + 1, false) FROM reviews",
]
_PG_OBSERVATIONS = [
    "ALTER TABLE review_observations RENAME COLUMN username TO author_name",
    "ALTER TABLE review_observations RENAME COLUMN review_sha256 TO body_sha256",
    "ALTER TABLE review_observations ALTER COLUMN author_name DROP NOT NULL, "
    "ALTER COLUMN body_sha256 DROP NOT NULL, ADD COLUMN rating_value FLOAT, "
    "ADD COLUMN reactions JSON, ADD COLUMN extra JSON",
    f"""UPDATE review_observations SET rating_value = score,
    reactions = {_reactions("json_build_object")},
    extra = json_build_object('helpful_count', helpful_count, 'scores', scores)""",
    "ALTER TABLE review_observations DROP COLUMN score, DROP COLUMN helpful_count, "
    "DROP COLUMN scores, " + ", ".join(f"DROP COLUMN reactions_{kind}" for kind in _KINDS),
    "CREATE INDEX ix_review_observations_raw_page_id ON review_observations (raw_page_id)",
]

# --- both ----------------------------------------------------------------------------

# Tags in page order, as a JSON array.
_TAGS = {
    "sqlite": "(SELECT json_group_array(name) FROM (SELECT t.name FROM review_tags rt "
    "JOIN tags t ON t.id = rt.tag_id WHERE rt.review_id = r.id ORDER BY rt.position))",
    "postgresql": "(SELECT coalesce(json_agg(t.name ORDER BY rt.position), '[]'::json) "
    "FROM review_tags rt JOIN tags t ON t.id = rt.tag_id WHERE rt.review_id = r.id)",
}

_VIEW = """
CREATE VIEW reviews_view AS
SELECT
    r.id AS review_id,
    r.site AS site,
    r.key AS key,
    r.url AS url,
    i.key AS item_key,
    i.name AS item_name,
    r.item_type AS item_type,
    a.name AS author_name,
    r.date_text AS date,
    r.date AS date_utc,
    r.title AS title,
    r.rating_value AS rating_value,
    r.rating_best AS rating_best,
    r.rating_worst AS rating_worst,
    {tags} AS tags,
    r.reactions AS reactions,
    r.body AS body,
    r.source AS source,
    r.extra AS extra,
    r.first_seen_at AS first_seen_at,
    r.last_seen_at AS last_seen_at,
    i.url AS item_url,
    a.url AS author_url
FROM reviews r
JOIN items i ON i.id = r.item_id
JOIN authors a ON a.id = r.author_id
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW IF EXISTS reviews_view")
    if dialect == "sqlite":
        statements = [*_SQLITE_TABLES, *_SQLITE_FTS]
    elif dialect == "postgresql":
        statements = [*_PG_ITEMS, *_PG_AUTHORS, *_PG_REVIEWS, *_PG_OBSERVATIONS]
    else:  # pragma: no cover - the store refuses other databases
        raise NotImplementedError(dialect)
    for statement in statements:
        op.execute(statement)
    op.execute(_VIEW.format(tags=_TAGS[dialect]))


def downgrade() -> None:
    raise NotImplementedError("revision 0003 is not reversible: restore a backup instead")
