"""The Jikan v4-compatible read API over the archive's MyAnimeList reviews.

Paths, parameters, response bodies and errors follow Jikan's (``/v4/anime/{id}/
reviews`` and friends): ``{"data": [...], "pagination": {"last_visible_page",
"has_next_page"}}``, 20 reviews a page, newest first; preliminary and spoiler
reviews left out unless ``preliminary`` / ``spoilers`` ask for them (the top
reviews keep them unless told otherwise, as Jikan documents). Errors: a bad
parameter is a 400 ``ValidationException`` with ``messages`` per parameter; an
id the archive does not hold is a 404 ``BadResponseException``.

Extras Jikan cannot give: ``?as_of=DATE`` reads the reviews as the archive saw
them on that day (the newest capture up to its end; reviews first captured later
are left out), and ``/v4/reviews/{id}/history`` lists every capture of a review.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scraper.errors import UsageError
from scraper.serve import history, queries
from scraper.serve.params import MAX_PAGE, number
from scraper.serve.shapes import jikan_error, jikan_review
from scraper.store.read import ReviewQuery, parse_when

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from scraper.serve.state import ServeState

__all__ = ["JikanError", "routes", "warm"]

VALIDATION_ERROR = (
    "Invalid or incomplete request. Make sure your request is correct. https://docs.api.jikan.moe/"
)
_TRUE, _FALSE = {"true", "1", "yes", "on", ""}, {"false", "0", "no", "off"}


class JikanError(Exception):
    """An error answered in Jikan's shape with its status code."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message") or body.get("messages"))
        self.status = status
        self.body = body

    @classmethod
    def invalid(cls, messages: dict[str, list[str]]) -> JikanError:
        body = {
            "status": 400,
            "type": "ValidationException",
            "messages": messages,
            "error": VALIDATION_ERROR,
        }
        return cls(400, body)

    @classmethod
    def not_found(cls, what: str) -> JikanError:
        return cls(
            404,
            jikan_error(404, "BadResponseException", "Resource does not exist", f"404 on {what}"),
        )

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


class _Params:
    """The query parameters of one request, checked the way Jikan checks them."""

    def __init__(self, request: Request, *, flags_default: bool = False) -> None:
        self.messages: dict[str, list[str]] = {}
        args = request.query_params
        self.page = self._page(args.get("page"))
        self.preliminary = self._flag(args, "preliminary", flags_default)
        self.spoilers = self._flag(args, "spoilers", flags_default)
        self.as_of = self._date(args.get("as_of"))
        self.args = args

    def _page(self, value: str | None) -> int:
        if value is None:
            return 1
        page = number(value)
        if page is None:
            self.messages["page"] = ["The page must be an integer."]
            return 1
        if page < 1:
            self.messages["page"] = ["The page must be at least 1."]
        if page > MAX_PAGE:
            self.messages["page"] = [f"The page may not be greater than {MAX_PAGE}."]
        return min(max(1, page), MAX_PAGE)

    def _flag(self, args: Any, name: str, default: bool) -> bool:
        value = args.get(name)
        if value is None:
            return default
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() not in _FALSE:
            self.messages[name] = [f"The {name} field must be true or false."]
        return False

    def _date(self, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            return parse_when(value, "as_of", end=True)
        except UsageError:
            self.messages["as_of"] = ["The as of is not a valid date (YYYY-MM-DD)."]
            return None

    def check(self) -> _Params:
        if self.messages:
            raise JikanError.invalid(self.messages)
        return self


def _mal_id(request: Request) -> int:
    found = number(request.path_params["id"])
    if found is None:
        raise JikanError.invalid({"id": ["The id must be an integer."]})
    return found


def _paged(
    state: ServeState,
    conn: Connection,
    flt: queries.ReviewFilter,
    params: _Params,
    *,
    entry: bool,
    count_key: Any = None,
) -> JSONResponse:
    size = state.settings.jikan_page_size
    if params.as_of is not None:
        flt = replace(flt, seen_by=params.as_of)
    if count_key is not None and params.as_of is None:
        total = state.lists.get(count_key, conn, lambda c: queries.count_reviews(c, flt))
    else:
        total = queries.count_reviews(conn, flt)
    records = queries.review_page(conn, flt, offset=(params.page - 1) * size, size=size)
    if params.as_of is not None:
        records = _as_of(state, conn, records, params.as_of)
    last = max(1, math.ceil(total / size))
    body = {
        "pagination": {"last_visible_page": last, "has_next_page": params.page < last},
        "data": [jikan_review(record, entry=entry) for record in records],
    }
    return JSONResponse(body)


def _as_of(
    state: ServeState, conn: Connection, records: list[dict[str, Any]], moment: datetime
) -> list[dict[str, Any]]:
    rows = [record["_links"]["row"] for record in records]
    seen = queries.observations_as_of(conn, rows, moment)
    return [
        history.as_of_record(conn, record, seen[row], state.bodies)
        for row, record in zip(rows, records, strict=True)
        if row in seen
    ]


def _entry_reviews(state: ServeState, kind: str) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        mal_id = _mal_id(request)
        params = _Params(request).check()
        with state.connect() as conn:
            key = f"{kind}:{mal_id}"
            if queries.item_row(conn, queries.MAL_SITE, key) is None:
                raise JikanError.not_found(f"https://myanimelist.net/{kind}/{mal_id}/_/reviews")
            flt = queries.ReviewFilter(
                query=ReviewQuery(entry=key, site=queries.MAL_SITE, sort="-date"),
                no_preliminary=not params.preliminary,
                no_spoilers=not params.spoilers,
            )
            return _paged(state, conn, flt, params, entry=False)

    return endpoint


def _recent_reviews(state: ServeState, kind: str) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        params = _Params(request).check()
        flt = _recent(kind, params.preliminary, params.spoilers)
        key = ("recent", kind, params.preliminary, params.spoilers)
        with state.connect() as conn:
            return _paged(state, conn, flt, params, entry=True, count_key=key)

    return endpoint


def _recent(kind: str, preliminary: bool, spoilers: bool) -> queries.ReviewFilter:
    return queries.ReviewFilter(
        query=ReviewQuery(type=kind, site=queries.MAL_SITE, sort="-date"),
        no_preliminary=not preliminary,
        no_spoilers=not spoilers,
    )


def _counting(kind: str, preliminary: bool, spoilers: bool) -> Any:
    flt = _recent(kind, preliminary, spoilers)
    return lambda conn: queries.count_reviews(conn, flt)


def _ranking(state: ServeState, kind: str, preliminary: bool, spoilers: bool) -> Any:
    base = queries.ReviewFilter(
        query=ReviewQuery(type=kind, site=queries.MAL_SITE),
        no_preliminary=not preliminary,
        no_spoilers=not spoilers,
    )
    return lambda conn: queries.top_review_ids(conn, base, state.settings.top_reviews)


def warm(state: ServeState) -> None:
    """Make what the Jikan lists need most and is slowest to make on a big archive:
    the count of each recent-reviews list and each top-reviews ranking, as asked for
    by default (run in the background at start-up)."""
    with state.connect() as conn:
        for kind in ("anime", "manga"):
            state.lists.get(("recent", kind, False, False), conn, _counting(kind, False, False))
            state.lists.get(("top", kind, True, True), conn, _ranking(state, kind, True, True))


def _user_reviews(state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        name = request.path_params["username"]
        params = _Params(request, flags_default=True).check()
        with state.connect() as conn:
            user_id = queries.user_by_name(conn, name)
            if user_id is None:
                raise JikanError.not_found(f"https://myanimelist.net/profile/{name}/reviews")
            flt = queries.ReviewFilter(
                query=ReviewQuery(site=queries.MAL_SITE, sort="-date"),
                author_id=user_id,
                no_preliminary=not params.preliminary,
                no_spoilers=not params.spoilers,
            )
            return _paged(state, conn, flt, params, entry=True)

    return endpoint


def _top_reviews(state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        params = _Params(request, flags_default=True)
        kind = params.args.get("type", "anime")
        if kind not in ("anime", "manga"):
            params.messages["type"] = ["The selected type is invalid (anime or manga)."]
        params.check()
        key = ("top", kind, params.preliminary, params.spoilers)
        with state.connect() as conn:
            ids = state.lists.get(
                key, conn, _ranking(state, kind, params.preliminary, params.spoilers)
            )
            size = state.settings.jikan_page_size
            chosen = ids[(params.page - 1) * size : params.page * size]
            records = queries.records_of(conn, chosen)
            if params.as_of is not None:
                records = _as_of(state, conn, records, params.as_of)
        last = max(1, math.ceil(len(ids) / size))
        return JSONResponse(
            {
                "pagination": {"last_visible_page": last, "has_next_page": params.page < last},
                "data": [jikan_review(record, entry=True) for record in records],
            }
        )

    return endpoint


def _review_history(state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        mal_id = _mal_id(request)
        with state.connect() as conn:
            record = queries.review_record(conn, queries.MAL_SITE, str(mal_id))
            if record is None:
                raise JikanError.not_found(f"https://myanimelist.net/reviews.php?id={mal_id}")
            captures = history.timeline(conn, record, state.bodies)
        data = []
        for capture in captures:
            seen = {
                **record,
                "score": capture["score"],
                "reactions": capture["reactions"],
                "tags": capture["tags"],
                "review": capture["body"],
                "user": {**record["user"], "username": capture["author_name"]},
            }
            item = jikan_review(seen, entry=True)
            item["observed_at"] = capture["observed_at"]
            item["helpful_count"] = capture["helpful_count"]
            item["changes"] = [c["field"] for c in capture["changes"]]
            data.append(item)
        return JSONResponse({"data": data})

    return endpoint


def routes(state: ServeState) -> list[Route]:
    """Return the ``/v4/...`` routes."""
    return [
        Route("/v4/anime/{id}/reviews", _entry_reviews(state, "anime")),
        Route("/v4/manga/{id}/reviews", _entry_reviews(state, "manga")),
        Route("/v4/reviews/anime", _recent_reviews(state, "anime")),
        Route("/v4/reviews/manga", _recent_reviews(state, "manga")),
        Route("/v4/reviews/{id}/history", _review_history(state)),
        Route("/v4/users/{username}/reviews", _user_reviews(state)),
        Route("/v4/top/reviews", _top_reviews(state)),
    ]
