"""The search parameters of the pages and the generic API, checked: a bad one is a
UsageError naming the parameter (answered as 400, never a traceback)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from scraper.errors import UsageError
from scraper.serve.queries import ReviewFilter
from scraper.sites import SITES, known_tags
from scraper.store.fts import parse_search
from scraper.store.read import ReviewQuery, parse_when

__all__ = ["PARAMETERS", "SORTS", "Search", "number", "read_search"]

#: Orders the search offers, by label; the first is the default.
SORTS: dict[str, str] = {
    "-date": "newest first",
    "date": "oldest first",
    "-score": "highest score",
    "score": "lowest score",
}
#: The search parameters (the pages'; the generic API adds ``per_page``).
PARAMETERS = (
    "q",
    "site",
    "item",
    "author",
    "tag",
    "type",
    "min_score",
    "max_score",
    "since",
    "until",
    "sort",
    "page",
)
_MAX_PER_PAGE = 100
_MAX_PAGE = 100_000


@dataclass(frozen=True, slots=True)
class Search:
    """A checked search: the filter, the page (from 1), page size and the raw values
    (to fill the form and build links)."""

    filter: ReviewFilter
    page: int
    per_page: int
    values: dict[str, str | list[str]]


_DIGITS = re.compile(r"[0-9]{1,12}")


def number(text: str | None) -> int | None:
    """Return *text* as a whole number when it is 1 to 12 ASCII digits, else None (so
    "²", "1e3" or a 5,000-digit page never reaches ``int``)."""
    if text is None:
        return None
    found = _DIGITS.fullmatch(text.strip())
    return int(found.group()) if found else None


def _whole(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or not value.strip():
        return None
    found = number(value)
    if found is None or not low <= found <= high:
        raise UsageError(f"{name}: {value!r} is not a whole number from {low} to {high}")
    return found


def read_search(args: QueryParams, *, per_page: int, api: bool = False) -> Search:
    """Return the checked search that *args* ask for; raises UsageError naming the
    first bad parameter."""
    q = (args.get("q") or "").strip() or None
    if q is not None:
        try:
            parse_search(q)
        except UsageError:
            raise UsageError(f"q: {q!r} has no word to search for") from None
    low = _whole(args.get("min_score"), "min_score", 1, 10)
    high = _whole(args.get("max_score"), "max_score", 1, 10)
    if low is not None and high is not None and low > high:
        raise UsageError(f"min_score {low} is above max_score {high}")
    since_text, until_text = args.get("since") or "", args.get("until") or ""
    since = parse_when(since_text, "since") if since_text.strip() else None
    until = parse_when(until_text, "until", end=True) if until_text.strip() else None
    if since and until and since >= until:
        raise UsageError(f"since {since_text} is not before until {until_text}")
    site = (args.get("site") or "").strip() or None
    tags = _tags([label for label in args.getlist("tag") if label.strip()], site)
    sort = args.get("sort") or "-date"
    if sort not in SORTS:
        raise UsageError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    kind = (args.get("type") or "").strip() or None
    page = _whole(args.get("page"), "page", 1, _MAX_PAGE) or 1
    if api:
        per_page = _whole(args.get("per_page"), "per_page", 1, _MAX_PER_PAGE) or per_page
    query = ReviewQuery(
        entry=(args.get("item") or "").strip() or None,
        user=(args.get("author") or "").strip() or None,
        tags=tuple(tags),
        type=kind,
        min_score=low,
        max_score=high,
        since=since,
        until=until,
        search=q,
        sort=sort,
        site=site,
    )
    values: dict[str, str | list[str]] = {
        name: args.get(name) or "" for name in PARAMETERS if name not in ("tag", "page")
    }
    values["tag"] = list(tags)
    return Search(ReviewFilter(query=query), page, per_page, values)


def _tags(labels: list[str], site: str | None) -> list[str]:
    """Return the registered sites' own spelling of *labels* (case, spaces and dashes
    ignored); a site without a folder of its own has whatever tags its pages give."""
    registered = site is None or any(one.owns(site) for one in SITES)
    known = {label.lower().replace("-", " "): label for label in known_tags()}
    found = []
    for label in labels:
        key = label.strip().lower().replace("-", " ")
        if key in known:
            found.append(known[key])
        elif registered:
            raise UsageError(f"tag: unknown tag {label!r} (known: {', '.join(known_tags())})")
        else:
            found.append(label.strip())
    return found
