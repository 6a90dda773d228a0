"""SQLite: the full-text index merges 64 segments at a time, not 4 (issue 13).

FTS5 keeps its index as segments in levels. Once a level holds ``automerge``
segments (FTS5's default: 4) it merges them into one segment of the next level, a
little after each write; a level that reaches ``crisismerge`` segments (default 16)
is merged at once. Every review is so rewritten once per level, and the levels
grow with the log of the archive to the base ``automerge``: the index's cost a page
of ``reviews import`` grew with the archive (issue 13), from 32 database pages
written a page over the first 1k pages to 69 from 10k to 50k (2.84 ms CPU a page,
then 4.3-4.7; ``bench/bench_fts_growth.py``). Merging 64 at a time, 32-page batches
make a level-1 segment every 2k pages and a level-2 one every 131k: from 2k pages to
131k every review is merged once, 27 pages written a page (9 over the first 1k).
``crisismerge`` above 64 leaves the merging incremental (a level of 64 merged at
once, as FTS5 does at crisismerge, would hold one batch for the whole rewrite).

Searches find the same reviews (the index holds the same terms and positions; only
how it is cut into segments changes). A search reads more, smaller segments: see
StoreSettings.sqlite_fts_automerge for what that costs.

PostgreSQL: nothing changes (its index is a GIN index on ``reviews.body_fts``).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
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
    # index's configuration is what revision 0006 left.
    for name, default in _FTS5_DEFAULTS:
        op.execute(_SET.format(name, default))
        op.execute(f"DELETE FROM reviews_fts_config WHERE k = '{name}'")
