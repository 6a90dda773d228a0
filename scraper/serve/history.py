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

from scraper.serve import queries
from scraper.sites.mal.v1 import REACTION_KINDS

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["PageBodies", "as_of_record", "changes", "timeline"]


class PageBodies:
    """Review bodies by (raw page, review key), parsing each raw page at most once
    while it stays among the *size* most recently used."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pages: OrderedDict[int, dict[str, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def body(self, conn: Connection, raw_page_id: int, key: str) -> str | None:
        """Return the body review *key* had on raw page *raw_page_id*, or None."""
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
        return bodies.get(key)

    @staticmethod
    def _parse(conn: Connection, raw_page_id: int) -> dict[str, str | None]:
        from scraper.store.bodies import load_page
        from scraper.store.parsing import parse_fetched

        page = load_page(conn, raw_page_id)
        if page is None:
            return {}
        # Read as a reparse reads it (the charset its headers named; a page the parser
        # cannot read gives no bodies, never an error page).
        result = parse_fetched(page.body, page.final_url, page.charset).result
        return {} if result is None else {review.id: review.body for review in result.reviews}


#: What a capture records, compared between captures (generic keys, then MAL's).
_FIELDS = ("rating", "author_name", "helpful_count", "tags")


def timeline(conn: Connection, record: dict[str, Any], bodies: PageBodies) -> list[dict[str, Any]]:
    """Return the review's captures, oldest first, each with its ``body`` (None when
    it cannot be read back), ``helpful_count`` (MyAnimeList's legacy votes, else
    None) and ``changes`` against the capture before it."""
    row = queries.review_row(conn, record["site"], record["id"])
    if row is None:
        return []
    captures = queries.observations(conn, row.id, record["site"])
    known: dict[str | None, str | None] = {row.body_sha256: record["body"]}
    previous: dict[str, Any] | None = None
    for capture in captures:
        digest = capture["body_sha256"]
        if digest not in known:
            known[digest] = bodies.body(conn, capture["raw_page_id"], record["id"])
        capture["body"] = known.get(digest)
        capture["helpful_count"] = (capture.get("extra") or {}).get("helpful_count")
        capture["changes"] = changes(previous, capture) if previous is not None else []
        previous = capture
    return captures


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Return what differs between two captures: ``{"field", "before", "after"}``
    items, and for an edited body a ``diff`` (unified diff lines)."""
    found: list[dict[str, Any]] = []
    for field in _FIELDS:
        if before.get(field) != after.get(field):
            found.append({"field": field, "before": before.get(field), "after": after.get(field)})
    old, new = before.get("reactions") or {}, after.get("reactions") or {}
    order = {kind: n for n, kind in enumerate(REACTION_KINDS)}
    for kind in sorted(set(old) | set(new), key=lambda k: (order.get(k, len(order)), k)):
        if old.get(kind) != new.get(kind):
            found.append(
                {"field": f"reactions.{kind}", "before": old.get(kind), "after": new.get(kind)}
            )
    if before["body_sha256"] != after["body_sha256"]:
        item: dict[str, Any] = {"field": "body", "before": None, "after": None}
        if before.get("body") is not None and after.get("body") is not None:
            lines = difflib.unified_diff(
                before["body"].splitlines(), after["body"].splitlines(), lineterm="", n=1
            )
            item["diff"] = list(lines)[2:]
        found.append(item)
    return found


def as_of_record(
    conn: Connection, record: dict[str, Any], capture: dict[str, Any], bodies: PageBodies
) -> dict[str, Any]:
    """Return a MyAnimeList *record* (v1 and v2 keys) as *capture*, one of its
    observations, saw it."""
    data = dict(record)
    name = capture["author_name"]
    profile = f"https://myanimelist.net/profile/{name}"
    data["user"] = {**record["user"], "username": name, "url": profile}
    data["author"] = {**record["author"], "name": name, "url": profile}
    data["score"] = capture["score"]
    if record.get("rating") is not None and capture["rating"] is not None:
        data["rating"] = {**record["rating"], "value": capture["rating"]}
    data["reactions"] = capture["reactions"]
    data["helpful_count"] = (capture.get("extra") or {}).get("helpful_count")
    data["tags"] = capture["tags"]
    row = queries.review_row(conn, record["site"], record["id"])
    if row is None or capture["body_sha256"] != row.body_sha256:
        text = bodies.body(conn, capture["raw_page_id"], record["id"])
        if text is not None:
            data["review"] = data["body"] = text
    return data
