"""The Python API of review-archiver: what the ``reviews`` command calls.

Each function here is one job a user can ask for. They wire the rooms together
(fetch → sites → store, crawl, export) and hold no logic of their own.

Imports of the database and HTTP stacks happen inside the functions that need
them, on purpose: ``parse_page`` / ``reviews parse`` must start fast, without
SQLAlchemy or httpx loaded (a measured goal of the project).
"""

from __future__ import annotations

__all__ = [
    "parse_page",
]

# --- parsing (no network, no database) ------------------------------------------

from scraper.sites import parse_page  # noqa: E402  (re-exported)

# --- archive: store, import, reparse, archive URLs --------------------------------

# --- crawl -----------------------------------------------------------------------

# --- jobs and schedules -----------------------------------------------------------

# --- query and export -------------------------------------------------------------
