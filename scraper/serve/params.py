"""The search parameters of the pages and the generic API, checked: a bad one is a
UsageError naming the parameter (answered as 400, never a traceback)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from scraper.config import ServeSettings
from scraper.errors import UsageError
from scraper.serve.queries import ReviewFilter
from scraper.store.read import ReviewQuery

__all__ = ["MAX_PAGE", "PARAMETERS", "SORTS", "Search", "number", "read_search", "whole"]

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
_MAX_PER_PAGE = ServeSettings().max_per_page
MAX_PAGE = ServeSettings().max_page


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


def whole(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or not value.strip():
        return None
    found = number(value)
    if found is None or not low <= found <= high:
        raise UsageError(f"{name}: {value!r} is not a whole number from {low} to {high}")
    return found


#: How the URL parameters spell the library's arguments, so errors name what was sent.
_NAMES = {"entry": "item", "user": "author", "search": "q"}


def read_search(args: QueryParams, *, per_page: int, api: bool = False) -> Search:
    """Return the checked search that *args* ask for; raises UsageError naming the
    first bad parameter (the checks are ``ReviewQuery.from_args``'s, as for the CLI)."""

    def given(name: str) -> str | None:
        return (args.get(name) or "").strip() or None

    sort = args.get("sort") or "-date"
    if sort not in SORTS:
        raise UsageError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    page = whole(args.get("page"), "page", 1, MAX_PAGE) or 1
    if api:
        per_page = whole(args.get("per_page"), "per_page", 1, _MAX_PER_PAGE) or per_page
    tags = [label for label in args.getlist("tag") if label.strip()]
    query = ReviewQuery.from_args(
        entry=given("item"),
        user=given("author"),
        tags=tags,
        type=given("type"),
        min_score=given("min_score"),
        max_score=given("max_score"),
        since=given("since"),
        until=given("until"),
        search=given("q"),
        sort=sort,
        site=given("site"),
        names=_NAMES,
    )
    values: dict[str, str | list[str]] = {
        name: args.get(name) or "" for name in PARAMETERS if name not in ("tag", "page")
    }
    values["tag"] = list(query.tags)
    return Search(ReviewFilter(query=query), page, per_page, values)
