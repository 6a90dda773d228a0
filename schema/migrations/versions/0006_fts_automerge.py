"""SQLite: the full-text index merges 64 segments at a time, not 4 (issue 13).

FTS5 keeps its index as segments in levels. Once a level holds ``automerge``
segments (FTS5's default: 4) it merges them into one segment of the next level, a
little after each write; a level that reaches ``crisismerge`` segments (default 16)
is merged at once. Every review is so rewritten once per level, and the levels
grow with the log of the archive to the base ``automerge``: the index's cost a page
of ``reviews import`` grew from 2.8 ms CPU at 1k pages to 4.6 ms at 10k (63 database
pages written a page at 10k, 32 at 1k). Merging 64 at a time, 32-page batches make a
level-1 segment every 2k pages and a level-2 one every 131k: from 2k to 50k pages
every review is merged once, the cost a page stays flat (26 pages written a page).
``crisismerge`` above 64 leaves the merging incremental (a level of 64 merged at once
would stop one batch for a whole level's rewrite).

Searches give the same reviews (the index holds the same terms and positions; only
how it is cut into segments changes); a search reads more, smaller segments, and
took the same time in ``bench/bench_fts_growth.py``.

PostgreSQL: nothing changes (its index is a GIN index on ``reviews.body_fts``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Kept literal (not imported), so this revision means the same thing forever; a test
# checks that StoreSettings names these numbers.
_AUTOMERGE = 64
_CRISISMERGE = 128
#: FTS5's own defaults: how the index merged before this revision.
_FTS5_DEFAULTS = (("automerge", 4), ("crisismerge", 16))
_SET = "INSERT INTO reviews_fts(reviews_fts, rank) VALUES ('{}', {})"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(_SET.format("automerge", _AUTOMERGE))
    op.execute(_SET.format("crisismerge", _CRISISMERGE))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Through FTS5 first (open connections see the change), then the rows go, so the
    # index's configuration is what revision 0005 left.
    for name, default in _FTS5_DEFAULTS:
        op.execute(_SET.format(name, default))
        op.execute(f"DELETE FROM reviews_fts_config WHERE k = '{name}'")
