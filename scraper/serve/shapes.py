"""Records in the shapes the server hands out: Jikan v4 review objects and the v2 record.

Jikan's review objects follow its OpenAPI description (``anime_review``,
``manga_review``, ``user_meta``, ``anime_meta`` / ``manga_meta``) and its own
JSON notes: a scalar that is unknown is ``null``, an object that is unknown is
empty. So a legacy-layout review (which had "helpful" votes, not reactions)
carries ``reactions: {}``. An anime review carries ``episodes_watched`` and a
manga review ``chapters_read`` when the page gave one (preliminary reviews); an
unknown count is left out rather than ``null``, because the description types it
as a non-nullable integer.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["jikan_error", "jikan_review", "user_images", "v2_record"]

_JPG = re.compile(r"\.jpe?g(?=$|\?)", re.IGNORECASE)


def user_images(image_url: str | None) -> dict[str, dict[str, str | None]]:
    """Return Jikan's ``user_images``: the avatar and its WebP twin (MAL serves both)."""
    webp = _JPG.sub(".webp", image_url, count=1) if image_url else None
    if webp == image_url:
        webp = None
    return {"jpg": {"image_url": image_url}, "webp": {"image_url": webp}}


def _entry_images() -> dict[str, dict[str, None]]:
    # The archive keeps no cover images; Jikan's JSON notes make unknown scalars null.
    sizes = ("image_url", "small_image_url", "large_image_url")
    return {"jpg": dict.fromkeys(sizes), "webp": dict.fromkeys(sizes)}


def jikan_review(record: dict[str, Any], *, entry: bool) -> dict[str, Any]:
    """Return the Jikan review object for a contract record (MyAnimeList).

    With *entry* (the endpoints not about one entry) the reviewed entry is
    included as ``entry`` (``anime_meta`` / ``manga_meta``).
    """
    kind = record["type"]
    review: dict[str, Any] = {
        "mal_id": record["mal_id"],
        "url": record["url"],
        "type": kind,
        "reactions": dict(record["reactions"] or {}),
        "date": record["date"],
        "review": record["review"],
        "score": record["score"],
        "tags": list(record["tags"]),
        "is_spoiler": record["is_spoiler"],
        "is_preliminary": record["is_preliminary"],
    }
    # Jikan's description types episodes_watched as a plain (non-nullable) integer
    # and requires no property: an unknown count is left out, so the object stays
    # valid against that description for any validator.
    progress = "episodes_watched" if kind == "anime" else "chapters_read"
    if record[progress] is not None:
        review[progress] = record[progress]
    user = record["user"]
    review["user"] = {
        "url": user["url"],
        "username": user["username"],
        "images": user_images(user["image_url"]),
    }
    if entry:
        item = record["entry"]
        review["entry"] = {
            "mal_id": item["mal_id"],
            "url": item["url"],
            "images": _entry_images(),
            "title": item["title"],
        }
    return review


def jikan_error(status: int, kind: str, message: str, error: str | None) -> dict[str, Any]:
    """Return Jikan's error body: ``{status, type, message, error}``."""
    return {"status": status, "type": kind, "message": message, "error": error}


def v2_record(record: dict[str, Any]) -> dict[str, Any]:
    """Return the record as the generic API gives it: ``Record.to_dict()`` (a site's
    own keys, MyAnimeList's v1 keys, first; then the v2 keys), without the server's
    own ``_links``."""
    return {key: value for key, value in record.items() if not key.startswith("_")}
