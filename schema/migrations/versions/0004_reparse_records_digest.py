"""``raw_pages.records_sha256``: a digest of what the last parse of a page stored;
``raw_pages.next_url``: the link to the next page that parse read.

A reparse compares the digest of what the parser reads now with it and writes
nothing for a page whose records are the same (most pages, after a parser change
that touched a few fields or none). Pages stored before this revision have NULL:
their first reparse writes them as before and fills the digest in. A crawl that
does not fetch a page again (a 304, a fresh page) follows its ``next_url`` instead
of parsing the stored body; for a page with no digest yet it still parses it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: SQLite and PostgreSQL add it without
    # rewriting the table.
    op.add_column("raw_pages", sa.Column("records_sha256", sa.String(64), nullable=True))
    op.add_column("raw_pages", sa.Column("next_url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("raw_pages", "next_url")
    op.drop_column("raw_pages", "records_sha256")
