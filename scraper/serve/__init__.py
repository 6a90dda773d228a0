"""``reviews serve``: the archive read in a browser and through a Jikan v4-compatible API.

The stack: Starlette (ASGI routing, requests, responses) served by uvicorn, pages
rendered by Jinja2 with autoescaping. Why these: all three are small, typed and
well kept, and nothing here needs more than routing + templates: FastAPI would add
pydantic models for responses whose shape is fixed by Jikan's description and the
record contract, and costs 3x the start-up (``python -X importtime``: 170-180 ms to
import fastapi against 55-60 ms for starlette.applications, this machine, Dec 2026);
sync SQLAlchemy calls run in Starlette's thread pool without an async driver, and
uvicorn uses httptools and uvloop (C) when installed, as the extra does. The
packages come with the ``serve`` extra and are imported only when ``reviews serve``
runs, so other commands start as before.

Rooms: ``readonly`` (an engine that cannot write), ``queries`` (every SQL
statement), ``shapes`` (Jikan and v2 objects), ``history`` (captures, diffs,
``as_of``), ``params`` (checked parameters), ``charts`` (SVG geometry, marked
snippets), ``pages`` / ``jikan`` / ``api`` (routes), ``app`` (errors, headers),
``server`` (bind, print the URL, run).
"""

from __future__ import annotations

__all__ = ["MISSING_EXTRA", "require_extra"]

MISSING_EXTRA = (
    "reviews serve needs its web stack (starlette, uvicorn, jinja2): "
    "pip install 'review-archiver[serve]'"
)


def require_extra() -> None:
    """Raise ScraperError with the install hint when the ``serve`` extra is missing."""
    import importlib.util

    from scraper.errors import ScraperError

    missing = [
        name
        for name in ("starlette", "uvicorn", "jinja2")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ScraperError(f"{MISSING_EXTRA} (missing: {', '.join(missing)})")
