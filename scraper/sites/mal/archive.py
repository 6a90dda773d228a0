"""What MyAnimeList decides for the archive: listing URLs and their paging, how its
entries and users are keyed, its tags and item types, and its v1 keys in storage.

- Entries are keyed ``anime:1`` / ``manga:2`` (type and MAL id); ``--entry`` also
  takes ``1`` (either type) and ``anime/1``.
- Users have no stable key on a page (they rename themselves): the store finds
  them by every name they were seen under, and two users sharing a current name
  with the same avatar id (``/userimages/{id}.jpg``) are one person.
- The v1 keys that v2 does not carry (spoiler and preliminary flags, progress,
  helpful count, legacy sub-scores, layout) are kept as the review's ``extra``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scraper.records import Record
from scraper.sites._generic import SitePolicy, address
from scraper.sites.mal.v1 import REACTION_KINDS, SITE

__all__ = ["KNOWN_TAGS", "MalPolicy", "is_entry_reviews"]

_MAL_HOSTS = ("myanimelist.net", "www.myanimelist.net")

#: Tag labels of contract v1, as ``--tag`` accepts them (case and -/space ignored).
KNOWN_TAGS: tuple[str, ...] = (
    "Recommended",
    "Mixed Feelings",
    "Not Recommended",
    "Preliminary",
    "Spoiler",
    "Funny",
    "Informative",
    "Well-written",
    "Creative",
)

#: ``/anime/1/Cowboy_Bebop/reviews`` and ``/manga/2/Berserk/reviews`` (slug optional).
_ENTRY_REVIEWS = re.compile(r"^/(anime|manga)/\d+(/[^/]*)?/reviews/?$")
_REVIEW_PAGE = re.compile(
    r"^/(?:(?:anime|manga)/\d+(?:/[^/]*)?/reviews|reviews\.php|profile/[^/]+/reviews)/?$"
)
#: Entry review listings hide spoiler and preliminary reviews unless asked: always ask.
_SHOW_ALL = {"spoiler": "on", "preliminary": "on"}
#: ``--entry`` spellings of an entry id: ``1``, ``anime:1``, ``manga/2``.
_ENTRY_ID = re.compile(r"(?:(anime|manga)[:/])?(\d+)")
#: The account id inside a MAL avatar URL.
_AVATAR_ID = re.compile(r"/userimages/(\d+)\.")

#: Legacy sub-score kinds, anime and manga together (manga has art, anime animation/sound).
SCORE_KINDS = ("overall", "story", "animation", "sound", "art", "character", "enjoyment")

#: The v1 keys in CSV, flattened (``entry`` / ``user``, reactions and sub-scores).
CSV_COLUMNS: tuple[str, ...] = (
    "mal_id",
    "url",
    "type",
    "entry_mal_id",
    "entry_type",
    "entry_title",
    "entry_url",
    "username",
    "user_url",
    "user_image_url",
    "date",
    "score",
    "tags",
    "is_spoiler",
    "is_preliminary",
    "episodes_watched",
    "chapters_read",
    *(f"reactions_{kind}" for kind in REACTION_KINDS),
    "helpful_count",
    *(f"scores_{kind}" for kind in SCORE_KINDS),
    "review",
    "layout",
)
_PLAIN = frozenset(CSV_COLUMNS) - {"tags"}

#: v1 keys kept in the review's ``extra`` (the rest is rebuilt from v2 fields).
_STORED = (
    "is_spoiler",
    "is_preliminary",
    "episodes_watched",
    "chapters_read",
    "helpful_count",
    "scores",
    "layout",
)


def is_entry_reviews(url: str) -> bool:
    """Return True when *url* is an entry's review listing (anime or manga)."""
    return bool(_ENTRY_REVIEWS.match(urlsplit(url).path))


def on_mal_host(url: str | None) -> bool:
    """Return True when *url* is an address on myanimelist.net."""
    try:
        return bool(url) and urlsplit(url or "").netloc in _MAL_HOSTS
    except ValueError:  # an unparseable address names no host
        return False


class MalPolicy(SitePolicy):
    """MyAnimeList's archive-side decisions (see ``scraper.sites._generic.SitePolicy``)."""

    name = SITE
    known_tags: tuple[str, ...] = KNOWN_TAGS
    item_types: tuple[str, ...] = ("anime", "manga")
    paging_parameters: tuple[str, ...] = ("p",)
    counting_extras: tuple[str, ...] = ("helpful_count",)
    csv_columns: tuple[str, ...] = CSV_COLUMNS

    def owns(self, namespace: str) -> bool:
        return namespace == SITE

    def handles_url(self, url: str) -> bool:
        """Addresses on myanimelist.net, and review pages of a mirror of it (the same
        paths on another host, as a local stand-in or an archive serves them)."""
        return on_mal_host(url) or self.is_review_url(url)

    def listing_url(self, url: str, *, mode: str) -> str:
        """Entry review listings get ``spoiler=on&preliminary=on`` (no review hidden),
        ``p=1`` is dropped (the same page as no ``p``), and in incremental mode they
        are read newest first (``sort=newest``)."""
        if not is_entry_reviews(url):
            return url
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update(_SHOW_ALL)
        if query.get("p") == "1":
            del query["p"]
        if mode == "incremental":
            query["sort"] = "newest"
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    def in_listing(self, url: str, seed: str) -> bool:
        """The seed's address and every query parameter of the seed but ``p``, so the
        chain's own links (which add sorting and filter fields) count while another
        listing at the same address (``reviews.php?t=manga`` for ``?t=anime``) does not."""
        if address(url) != address(seed):
            return False
        have = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        wanted = parse_qsl(urlsplit(seed).query, keep_blank_values=True)
        return all(have.get(key) == value for key, value in wanted if key != "p")

    def is_review_url(self, url: str) -> bool:
        return bool(_REVIEW_PAGE.match(urlsplit(url).path))

    def item_key(self, record: Record) -> str:
        entry = (record.extra or {})["entry"]
        return f"{entry['type']}:{entry['mal_id']}"

    def author_key(self, record: Record) -> str | None:
        return None  # users rename themselves: found by their names

    def same_author(self, first_image: str | None, second_image: str | None) -> bool:
        first = _AVATAR_ID.search(first_image or "")
        second = _AVATAR_ID.search(second_image or "")
        return first is not None and second is not None and first.group(1) == second.group(1)

    def item_keys(self, text: str) -> list[str] | None:
        found = _ENTRY_ID.fullmatch(text.strip())
        if found is None:
            return None
        kinds = [found.group(1)] if found.group(1) else list(self.item_types)
        return [f"{kind}:{int(found.group(2))}" for kind in kinds]

    def stored_extra(self, record: Record) -> dict[str, Any] | None:
        extra = record.extra or {}
        return {key: extra.get(key) for key in _STORED}

    def record_extra(
        self, record: Record, item_key: str, stored: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """Rebuild the v1 keys, in contract order, from the v2 fields and ``stored``."""
        kept = stored or {}
        kind, _, number = item_key.partition(":")
        item, author = record.item, record.author
        rating = record.rating.value if record.rating is not None else None
        return {
            "mal_id": int(record.id),
            "url": record.url,
            "type": item.type,
            "entry": {"mal_id": int(number), "type": kind, "title": item.name, "url": item.url},
            "user": {"username": author.name, "url": author.url, "image_url": author.image_url},
            "date": record.date,
            "score": int(rating) if rating is not None else None,
            "tags": list(record.tags),
            "is_spoiler": kept.get("is_spoiler"),
            "is_preliminary": kept.get("is_preliminary"),
            "episodes_watched": kept.get("episodes_watched"),
            "chapters_read": kept.get("chapters_read"),
            "reactions": dict(record.reactions) if record.reactions is not None else None,
            "helpful_count": kept.get("helpful_count"),
            "scores": kept.get("scores"),
            "review": record.body,
            "layout": kept.get("layout"),
        }

    def observation_extra(self, record: Record) -> dict[str, Any] | None:
        """What each capture keeps: the helpful count and the legacy sub-scores."""
        extra = record.extra or {}
        return {"helpful_count": extra.get("helpful_count"), "scores": extra.get("scores")}

    def csv_cells(self, record: Mapping[str, Any]) -> dict[str, Any]:
        entry, user = record.get("entry") or {}, record.get("user") or {}
        reactions = record.get("reactions") or {}
        scores = record.get("scores") or {}
        values: dict[str, Any] = {key: value for key, value in record.items() if key in _PLAIN}
        values.update(
            entry_mal_id=entry.get("mal_id"),
            entry_type=entry.get("type"),
            entry_title=entry.get("title"),
            entry_url=entry.get("url"),
            username=user.get("username"),
            user_url=user.get("url"),
            user_image_url=user.get("image_url"),
        )
        values.update({f"reactions_{kind}": reactions.get(kind) for kind in REACTION_KINDS})
        values.update({f"scores_{kind}": scores.get(kind) for kind in SCORE_KINDS})
        return values

    def history_keys(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """The v1 history keys: score, username, reactions, helpful count, body hash."""
        rating = observation["rating"]
        extra = observation.get("extra") or {}
        return {
            "score": int(rating) if rating is not None else None,
            "username": observation["author_name"],
            "reactions": observation["reactions"],
            "helpful_count": extra.get("helpful_count"),
            "review_sha256": observation["body_sha256"],
        }
