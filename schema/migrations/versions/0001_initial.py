"""The initial schema: every table of the archive, as frozen explicit operations.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Frozen on purpose: later changes to ``schema/tables.py`` need a new revision, never an
edit here once released. Timestamps are plain ``DateTime(timezone=True)`` columns;
``UTCDateTime`` only changes how Python values are bound and read.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _reaction_columns() -> list[sa.Column[int]]:
    kinds = [
        "overall",
        "nice",
        "love_it",
        "funny",
        "confusing",
        "informative",
        "well_written",
        "creative",
    ]
    return [sa.Column(f"reactions_{kind}", sa.Integer(), nullable=True) for kind in kinds]


def upgrade() -> None:
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.Text(), nullable=True),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("crawl_key", sa.String(length=64), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("reviews_new", sa.Integer(), nullable=False),
        sa.Column("reviews_updated", sa.Integer(), nullable=False),
        sa.Column("reviews_unchanged", sa.Integer(), nullable=False),
        sa.Column("not_modified", sa.Integer(), nullable=False),
        sa.Column("robots_skipped", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_runs")),
    )
    op.create_index(
        op.f("ix_crawl_runs_job_started_at"), "crawl_runs", ["job", "started_at"], unique=False
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("mal_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("first_seen_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        sa.CheckConstraint("type IN ('anime', 'manga')", name=op.f("ck_entries_entry_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("type", "mal_id", name=op.f("uq_entries_type_mal_id")),
    )
    op.create_table(
        "hosts",
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("next_request_at", sa.Float(), nullable=False),
        sa.Column("crawl_delay", sa.Float(), nullable=True),
        sa.Column("robots_txt", sa.Text(), nullable=True),
        sa.Column("robots_status", sa.Integer(), nullable=True),
        sa.Column("robots_fetched_at", _utc(), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_hosts")),
    )
    op.create_table(
        "raw_bodies",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_raw_bodies")),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("name_seen_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_username"), "users", ["username"], unique=False)
    op.create_table(
        "job_locks",
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("acquired_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"], ["crawl_runs.id"], name=op.f("fk_job_locks_crawl_run_id_crawl_runs")
        ),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_locks")),
    )
    op.create_table(
        "raw_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("request_headers", sa.JSON(), nullable=True),
        sa.Column("fetched_at", _utc(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.Column("page_kind", sa.String(length=32), nullable=True),
        sa.Column("review_count", sa.Integer(), nullable=True),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("parser_version", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["body_sha256"], ["raw_bodies.sha256"], name=op.f("fk_raw_pages_body_sha256_raw_bodies")
        ),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"], ["crawl_runs.id"], name=op.f("fk_raw_pages_crawl_run_id_crawl_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_pages")),
    )
    op.create_index(op.f("ix_raw_pages_body_sha256"), "raw_pages", ["body_sha256"], unique=False)
    op.create_index(op.f("ix_raw_pages_fetched_at"), "raw_pages", ["fetched_at"], unique=False)
    op.create_index(op.f("ix_raw_pages_final_url"), "raw_pages", ["final_url"], unique=False)
    op.create_table(
        "user_names",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("first_seen_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_names_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "username", name=op.f("pk_user_names")),
    )
    op.create_index(op.f("ix_user_names_username"), "user_names", ["username"], unique=False)
    op.create_table(
        "fetch_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("raw_page_id", sa.Integer(), nullable=True),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"],
            ["crawl_runs.id"],
            name=op.f("fk_fetch_errors_crawl_run_id_crawl_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["raw_page_id"], ["raw_pages.id"], name=op.f("fk_fetch_errors_raw_page_id_raw_pages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_errors")),
    )
    op.create_index(op.f("ix_fetch_errors_url"), "fetch_errors", ["url"], unique=False)
    op.create_table(
        "frontier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crawl_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("discovered_from", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("raw_page_id", sa.Integer(), nullable=True),
        sa.Column("added_at", _utc(), nullable=False),
        sa.Column("done_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["raw_page_id"], ["raw_pages.id"], name=op.f("fk_frontier_raw_page_id_raw_pages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frontier")),
        sa.UniqueConstraint("crawl_key", "url", name=op.f("uq_frontier_crawl_key_url")),
    )
    op.create_index(
        op.f("ix_frontier_crawl_key_state_id"),
        "frontier",
        ["crawl_key", "state", "id"],
        unique=False,
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("date", _utc(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("is_spoiler", sa.Boolean(), nullable=False),
        sa.Column("is_preliminary", sa.Boolean(), nullable=False),
        sa.Column("episodes_watched", sa.Integer(), nullable=True),
        sa.Column("chapters_read", sa.Integer(), nullable=True),
        *_reaction_columns(),
        sa.Column("helpful_count", sa.Integer(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("layout", sa.String(length=8), nullable=False),
        sa.Column("first_seen_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        sa.Column("last_raw_page_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_reviews_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["last_raw_page_id"],
            ["raw_pages.id"],
            name=op.f("fk_reviews_last_raw_page_id_raw_pages"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_reviews_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(op.f("ix_reviews_date"), "reviews", ["date"], unique=False)
    op.create_index(op.f("ix_reviews_entry_id"), "reviews", ["entry_id"], unique=False)
    op.create_index(op.f("ix_reviews_score"), "reviews", ["score"], unique=False)
    op.create_index(op.f("ix_reviews_user_id"), "reviews", ["user_id"], unique=False)
    op.create_table(
        "url_validators",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_checked_at", _utc(), nullable=False),
        sa.Column("last_changed_at", _utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("raw_page_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["raw_page_id"], ["raw_pages.id"], name=op.f("fk_url_validators_raw_page_id_raw_pages")
        ),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_url_validators")),
    )
    op.create_table(
        "review_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.BigInteger(), nullable=False),
        sa.Column("raw_page_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", _utc(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        *_reaction_columns(),
        sa.Column("helpful_count", sa.Integer(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("review_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["raw_page_id"],
            ["raw_pages.id"],
            name=op.f("fk_review_observations_raw_page_id_raw_pages"),
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
            name=op.f("fk_review_observations_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_observations")),
        sa.UniqueConstraint(
            "review_id", "raw_page_id", name=op.f("uq_review_observations_review_id_raw_page_id")
        ),
    )
    op.create_index(
        op.f("ix_review_observations_review_id_observed_at"),
        "review_observations",
        ["review_id", "observed_at"],
        unique=False,
    )
    op.create_table(
        "review_tags",
        sa.Column("review_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
            name=op.f("fk_review_tags_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name=op.f("fk_review_tags_tag_id_tags")),
        sa.PrimaryKeyConstraint("review_id", "tag_id", name=op.f("pk_review_tags")),
    )
    op.create_index(op.f("ix_review_tags_tag_id"), "review_tags", ["tag_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_review_tags_tag_id"), table_name="review_tags")
    op.drop_table("review_tags")
    op.drop_index(
        op.f("ix_review_observations_review_id_observed_at"), table_name="review_observations"
    )
    op.drop_table("review_observations")
    op.drop_table("url_validators")
    op.drop_index(op.f("ix_reviews_user_id"), table_name="reviews")
    op.drop_index(op.f("ix_reviews_score"), table_name="reviews")
    op.drop_index(op.f("ix_reviews_entry_id"), table_name="reviews")
    op.drop_index(op.f("ix_reviews_date"), table_name="reviews")
    op.drop_table("reviews")
    op.drop_index(op.f("ix_frontier_crawl_key_state_id"), table_name="frontier")
    op.drop_table("frontier")
    op.drop_index(op.f("ix_fetch_errors_url"), table_name="fetch_errors")
    op.drop_table("fetch_errors")
    op.drop_index(op.f("ix_user_names_username"), table_name="user_names")
    op.drop_table("user_names")
    op.drop_index(op.f("ix_raw_pages_final_url"), table_name="raw_pages")
    op.drop_index(op.f("ix_raw_pages_fetched_at"), table_name="raw_pages")
    op.drop_index(op.f("ix_raw_pages_body_sha256"), table_name="raw_pages")
    op.drop_table("raw_pages")
    op.drop_table("job_locks")
    op.drop_index(op.f("ix_users_username"), table_name="users")
    op.drop_table("users")
    op.drop_table("tags")
    op.drop_table("raw_bodies")
    op.drop_table("hosts")
    op.drop_table("entries")
    op.drop_index(op.f("ix_crawl_runs_job_started_at"), table_name="crawl_runs")
    op.drop_table("crawl_runs")
