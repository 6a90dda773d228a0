"""Which schema revision the packaged migration scripts end at, read without Alembic.

Every command checks a database's revision when it opens it; importing Alembic
(or SQLAlchemy) for that costs more start-up time than a read command's whole
work on a small archive, so the scripts' own ``revision`` / ``down_revision``
lines are read here, and ``migrate`` imports Alembic only to migrate.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

__all__ = ["VERSION_TABLE", "migrations_folder", "scripts_head"]

#: Alembic's table of applied revisions (its default name; env.py keeps it).
VERSION_TABLE = "alembic_version"
#: ``revision = "0002"`` / ``down_revision: str | None = "0001"`` in a script.
_REVISION_LINE = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(?:[\"']([^\"']+)[\"']|None)\s*$", re.MULTILINE
)


def migrations_folder() -> Path:
    """Return the folder of the Alembic scripts inside the installed package."""
    import scraper.schema

    return Path(scraper.schema.__file__).resolve().parent / "migrations"


@cache
def scripts_head() -> str | None:
    """Return the newest revision the packaged scripts know, or None when their
    history is not one straight line this can read (branches, a revision set by
    code): Alembic then judges (``migrate._head``)."""
    revisions: dict[str, str | None] = {}
    for script in sorted((migrations_folder() / "versions").glob("*.py")):
        found = {
            name: value or None
            for name, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8"))
        }
        revision = found.get("revision")
        if revision is not None:
            revisions[revision] = found.get("down_revision")
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None
