"""Datasette metadata for an archive: titles, search, facets, labels, sort order.

Datasette (0.65) finds most of what it needs in the SQLite file itself: the
``reviews`` table's FTS5 table (``content="reviews"``, rowids = ``reviews.id``, the
rowid alias), the foreign keys, a ``name`` column as a table's label. What it
cannot find is written here:

- ``reviews_view`` is a view, so its full-text table and the column its rowids
  match (``fts_table``/``fts_pk``) are named;
- label columns where the natural label is not called ``name`` or ``title``
  (a review by its key, its own id on its site: ``reviews.title`` is empty for
  MyAnimeList reviews and ``url`` may be the page's or empty; a raw page by the URL
  asked for, a run by its command); ``raw_bodies`` is keyed by its SHA-256, which
  is its own label;
- facets (site, item type, tags as a JSON array, rating), newest rows first.

Long bodies are cut in HTML tables by Datasette's ``truncate_cells_html`` setting,
which is a command-line setting, not metadata (``DATASETTE_TRUNCATE_CELLS``).
Datasette names a database after its file's stem (``reviews.db`` → ``reviews``),
so the metadata is made for one file.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scraper.config import DATASETTE_TRUNCATE_CELLS, PROJECT_URL, database_url
from scraper.errors import UsageError
from scraper.store.fts import FTS_TABLE

__all__ = [
    "DatasetteSetup",
    "datasette_command",
    "datasette_metadata",
    "datasette_program",
    "datasette_setup",
]

_REVIEW_FACETS: list[Any] = ["site", "item_type", "rating_value"]

_TABLES: dict[str, dict[str, Any]] = {
    "reviews": {
        "title": "Reviews",
        "description": "One row per review (its newest captured values). Search the "
        "bodies with the search box; reviews_view has item and author names and tags.",
        "label_column": "key",
        "sort_desc": "date",
        "facets": _REVIEW_FACETS,
    },
    "reviews_view": {
        "title": "Reviews with items, authors and tags",
        "description": "Each review with its item's and author's names and its tags "
        "(a JSON array, in page order). Dates: date as the page gave it, date_utc in UTC.",
        "fts_table": FTS_TABLE,
        "fts_pk": "review_id",
        "sort_desc": "date_utc",
        "facets": ["site", "item_type", {"array": "tags"}, "rating_value"],
    },
    "items": {
        "title": "Reviewed items",
        "description": "What the reviews are about (an anime, a product, a place), per site.",
        "label_column": "name",
        "sort_desc": "last_seen_at",
        "facets": ["site", "type"],
    },
    "authors": {
        "title": "Authors",
        "description": "Who wrote the reviews, per site, under their newest name "
        "(author_names keeps every name seen).",
        "label_column": "name",
        "facets": ["site"],
    },
    "author_names": {
        "title": "Author names",
        "description": "Every name an author was seen under, with when.",
        "label_column": "name",
    },
    "tags": {"title": "Tags", "label_column": "name"},
    "review_tags": {"title": "Tags of each review", "description": "In page order."},
    "review_observations": {
        "title": "Review observations",
        "description": "What each capture of a page showed of a review: one row per "
        "review per raw page.",
        "sort_desc": "observed_at",
    },
    "raw_pages": {
        "title": "Raw pages",
        "description": "Every page fetched or imported (bodies in raw_bodies, compressed).",
        "label_column": "requested_url",
        "sort_desc": "fetched_at",
        "facets": ["page_kind", "status", "source"],
    },
    "raw_bodies": {
        "title": "Raw page bodies",
        "description": "Compressed, deduplicated page bodies, by SHA-256 (their own label).",
    },
    "crawl_runs": {
        "title": "Runs",
        "description": "One row per crawl, archive or scheduled run.",
        "label_column": "command",
        "sort_desc": "started_at",
        "facets": ["command", "job", "outcome"],
    },
    "fetch_errors": {"title": "Fetch errors", "sort_desc": "occurred_at"},
    "alembic_version": {"hidden": True},
}


def datasette_metadata(database_name: str) -> dict[str, Any]:
    """Return Datasette metadata for the database Datasette calls *database_name*."""
    return {
        "title": "review-archiver",
        "description": "A faithful archive of review pages: reviews, items, authors, "
        "tags, every capture and raw page.",
        "source": "review-archiver",
        "source_url": PROJECT_URL,
        "databases": {database_name: {"tables": copy.deepcopy(_TABLES)}},
    }


@dataclass(frozen=True, slots=True)
class DatasetteSetup:
    """An archive ready for Datasette: its file, its metadata, how to start Datasette
    here (None when it is not installed)."""

    path: Path
    metadata: dict[str, Any]
    program: list[str] | None

    def command(self, metadata_file: Path, extra: list[str], *, typed: bool = False) -> list[str]:
        """Return the command serving the archive with *metadata_file*, then *extra*;
        with *typed*, as a user would type it (``datasette ...``)."""
        program = None if typed else self.program
        return datasette_command(self.path, metadata_file, extra, program)


def datasette_setup(db: str | None) -> DatasetteSetup:
    """Return the SQLite file *db* names, migrated to the newest schema, and its metadata.

    Raises UsageError for a database that is not an SQLite file (Datasette reads
    SQLite only), StoreError when it does not exist or cannot be migrated.
    """
    from sqlalchemy.engine import make_url

    from scraper.store.engine import open_engine

    url = database_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise UsageError(
            f"db: Datasette reads SQLite files only, not {parsed.drivername}", parameter="db"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise UsageError("db: Datasette needs an SQLite file", parameter="db")
    engine = open_engine(url, create=False)  # migrates an older archive, as reads do
    engine.dispose()
    path = Path(parsed.database).expanduser()
    return DatasetteSetup(path, datasette_metadata(path.stem), datasette_program())


def datasette_program() -> list[str] | None:
    """Return how to start Datasette here (this Python's, else one on PATH), or None."""
    if importlib.util.find_spec("datasette") is not None:
        return [sys.executable, "-m", "datasette"]
    import shutil

    found = shutil.which("datasette")
    return [found] if found else None


def datasette_command(
    path: Path, metadata_file: Path, extra: list[str], program: list[str] | None = None
) -> list[str]:
    """Return the command that serves *path* with *metadata_file* (then *extra*).

    *program* is how Datasette is started (``datasette_program()``); by default the
    plain ``datasette`` a user types.
    """
    return [
        *(program or ["datasette"]),
        "serve",
        str(path),
        "--metadata",
        str(metadata_file),
        "--setting",
        "truncate_cells_html",
        str(DATASETTE_TRUNCATE_CELLS),
        *extra,
    ]
