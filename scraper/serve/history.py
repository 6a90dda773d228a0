"""A review's history: every capture, what changed between captures, and how a
review read on a given day.

Observations keep the values of each capture (score, name, reactions, helpful
votes, tags) and the sha256 of the body; an older body is read back from the
raw page it was seen on (decompressed and parsed again, no network), kept in a
small cache of parsed pages.
"""

from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from scraper.records import REACTION_KINDS
from scraper.serve import queries

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["PageBodies", "as_of_record", "changes", "timeline"]


class PageBodies:
    """Review bodies by (raw page, review id), parsing each raw page at most once
    while it stays among the *size* most recently used."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pages: OrderedDict[int, dict[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def body(self, conn: Connection, raw_page_id: int, review_id: int) -> str | None:
        """Return the body review *review_id* had on raw page *raw_page_id*, or None."""
        with self._lock:
            bodies = self._pages.get(raw_page_id)
            if bodies is not None:
                self._pages.move_to_end(raw_page_id)
        if bodies is None:
            bodies = self._parse(conn, raw_page_id)
            with self._lock:
                self._pages[raw_page_id] = bodies
                while len(self._pages) > self._size:
                    self._pages.popitem(last=False)
        return bodies.get(review_id)

    @staticmethod
    def _parse(conn: Connection, raw_page_id: int) -> dict[int, str]:
        from scraper.errors import ScraperError
        from scraper.sites import parse_page

        stored = queries.raw_page(conn, raw_page_id)
        if stored is None:
            return {}
        url, html = stored
        try:
            result = parse_page(html, url)
        except ScraperError:
            return {}
        return {review.mal_id: review.review for review in result.reviews}


def timeline(conn: Connection, record: dict[str, Any], bodies: PageBodies) -> list[dict[str, Any]]:
    """Return the review's captures, oldest first, each with its ``body`` (None when
    it cannot be read back) and ``changes`` against the capture before it."""
    captures = queries.observations(conn, record["mal_id"])
    meta = queries.review_meta(conn, record["mal_id"])
    known: dict[str, str] = {}
    if meta is not None:
        known[meta.body_sha256] = record["review"]
    previous: dict[str, Any] | None = None
    for capture in captures:
        digest = capture["review_sha256"]
        if digest not in known:
            text = bodies.body(conn, capture["raw_page_id"], record["mal_id"])
            if text is not None:
                known[digest] = text
        capture["body"] = known.get(digest)
        capture["changes"] = changes(previous, capture) if previous is not None else []
        previous = capture
    return captures


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Return what differs between two captures: ``{"field", "before", "after"}``
    items, and for an edited body a ``diff`` (unified diff lines)."""
    found: list[dict[str, Any]] = []
    for field in ("score", "username", "helpful_count", "tags"):
        if before.get(field) != after.get(field):
            found.append({"field": field, "before": before.get(field), "after": after.get(field)})
    old, new = before.get("reactions") or {}, after.get("reactions") or {}
    for kind in sorted(set(old) | set(new), key=list(REACTION_KINDS).index):
        if old.get(kind) != new.get(kind):
            found.append(
                {"field": f"reactions.{kind}", "before": old.get(kind), "after": new.get(kind)}
            )
    if before["review_sha256"] != after["review_sha256"]:
        item: dict[str, Any] = {"field": "body", "before": None, "after": None}
        if before.get("body") is not None and after.get("body") is not None:
            item["diff"] = list(
                difflib.unified_diff(
                    before["body"].splitlines(),
                    after["body"].splitlines(),
                    "before",
                    "after",
                    lineterm="",
                    n=1,
                )
            )[2:]
        found.append(item)
    return found


def as_of_record(
    conn: Connection,
    record: dict[str, Any],
    capture: dict[str, Any],
    bodies: PageBodies,
) -> dict[str, Any]:
    """Return *record* as *capture* (one of its observations) saw it."""
    data = dict(record)
    username = capture["username"]
    data["user"] = {
        **record["user"],
        "username": username,
        "url": f"https://myanimelist.net/profile/{username}",
    }
    data["score"] = capture["score"]
    data["reactions"] = capture["reactions"]
    data["helpful_count"] = capture["helpful_count"]
    data["tags"] = capture["tags"]
    meta = queries.review_meta(conn, record["mal_id"])
    if meta is None or capture["review_sha256"] != meta.body_sha256:
        text = bodies.body(conn, capture["raw_page_id"], record["mal_id"])
        if text is not None:
            data["review"] = text
    return data
