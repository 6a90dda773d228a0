"""The generic JSON API, for every site, in the contract v2 record shape.

``GET /api/reviews`` takes the search page's parameters (``q``, ``site``,
``item``, ``author``, ``tag``, ``type``, ``min_score``, ``max_score``,
``since``, ``until``, ``sort``, ``page``, ``per_page``) and answers
``{"data": [record...], "pagination": {...}}``; ``GET /api/reviews/{site}/{id}``
answers one record with its ``observations`` (every capture). A bad parameter is
a 400 ``{"error": {"status", "message"}}``. ``/api/openapi.json`` describes it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scraper.config import ServeSettings
from scraper.errors import UsageError
from scraper.serve import history, queries
from scraper.serve.params import SORTS, read_search
from scraper.serve.shapes import v2_record

if TYPE_CHECKING:
    from scraper.serve.state import ServeState

__all__ = ["ApiError", "openapi", "routes"]

_SETTINGS = ServeSettings()


class ApiError(Exception):
    """An error of the generic API, answered as ``{"error": {"status", "message"}}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        body = {"error": {"status": self.status, "message": self.message}}
        return JSONResponse(body, status_code=self.status)


def _list(state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        try:
            search = read_search(request.query_params, per_page=state.settings.page_size, api=True)
        except UsageError as error:
            raise ApiError(400, str(error)) from None
        with state.connect() as conn:
            records, total, capped = state.search(
                conn,
                search.filter,
                offset=(search.page - 1) * search.per_page,
                size=search.per_page,
            )
        last = max(1, math.ceil(total / search.per_page))
        pagination = {
            "page": search.page,
            "per_page": search.per_page,
            "total": total,
            "total_is_lower_bound": capped,
            "last_visible_page": last,
            "has_next_page": len(records) == search.per_page and (search.page < last or capped),
        }
        return JSONResponse({"data": [v2_record(r) for r in records], "pagination": pagination})

    return endpoint


def _one(state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        site, key = request.path_params["site"], request.path_params["id"]
        with state.connect() as conn:
            record = queries.review_record(conn, site, key)
            if record is None:
                raise ApiError(404, f"no review {key!r} on {site!r} in this archive")
            captures = history.timeline(conn, record, state.bodies)
        data = v2_record(record)
        data["observations"] = [
            {
                "observed_at": c["observed_at"],
                "page_url": c["page_url"],
                "author_name": c["author_name"],
                "rating": None
                if c["rating"] is None
                else {**(record["rating"] or {}), "value": c["rating"]},
                "reactions": c["reactions"],
                "helpful_count": c["helpful_count"],
                "tags": c["tags"],
                "body_sha256": c["body_sha256"],
                "body": c["body"],
                "changed": [change["field"] for change in c["changes"]],
            }
            for c in captures
        ]
        return JSONResponse(data)

    return endpoint


def _openapi(_state: ServeState) -> Any:
    def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(openapi())

    return endpoint


def _param(name: str, description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }


_NULLABLE_STRING = {"type": "string", "nullable": True}
_RECORD = {
    "type": "object",
    "required": [
        "site",
        "id",
        "url",
        "item",
        "author",
        "date",
        "title",
        "rating",
        "body",
        "tags",
        "reactions",
        "source",
    ],
    "properties": {
        "site": {"type": "string", "description": "namespace of the id (myanimelist, a host)"},
        "id": {"type": "string", "description": "the review's id within its site"},
        "url": {"type": "string"},
        "item": {
            "type": "object",
            "properties": {
                "name": _NULLABLE_STRING,
                "type": _NULLABLE_STRING,
                "url": _NULLABLE_STRING,
            },
        },
        "author": {
            "type": "object",
            "properties": {
                "name": _NULLABLE_STRING,
                "url": _NULLABLE_STRING,
                "image_url": _NULLABLE_STRING,
            },
        },
        "date": {**_NULLABLE_STRING, "description": "ISO 8601, as precise as the page"},
        "title": _NULLABLE_STRING,
        "rating": {
            "type": "object",
            "nullable": True,
            "properties": {
                "value": {"type": "number"},
                "best": {"type": "number"},
                "worst": {"type": "number"},
            },
        },
        "body": _NULLABLE_STRING,
        "tags": {"type": "array", "items": {"type": "string"}},
        "reactions": {
            "type": "object",
            "nullable": True,
            "additionalProperties": {"type": "integer"},
        },
        "source": {
            "type": "string",
            "enum": ["mal-current", "mal-legacy", "json-ld", "microdata", "rdfa"],
        },
    },
    "additionalProperties": True,
}


def openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.0 description of the generic API."""
    error = {
        "description": "bad parameter or unknown review",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            }
        },
    }
    params = [
        _param("q", 'full-text words and "quoted phrases" (all must occur)'),
        _param("site", "only this site (myanimelist, a host)"),
        _param("item", "an item key (anime:1) or part of its name"),
        _param("author", "an author's name, current or former"),
        {**_param("tag", "a tag the review must carry (repeatable)")},
        _param("type", "item type", enum=["anime", "manga"]),
        _param("min_score", "lowest rating", "integer", minimum=1, maximum=10),
        _param("max_score", "highest rating", "integer", minimum=1, maximum=10),
        _param("since", "review date from (YYYY, YYYY-MM, YYYY-MM-DD)"),
        _param("until", "review date up to the end of (YYYY, YYYY-MM, YYYY-MM-DD)"),
        _param("sort", "order", enum=list(SORTS)),
        _param("page", "page number", "integer", minimum=1),
        _param(
            "per_page", "reviews per page", "integer", minimum=1, maximum=_SETTINGS.max_per_page
        ),
    ]
    page = {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/record"}},
            "pagination": {
                "type": "object",
                "properties": {
                    "page": {"type": "integer"},
                    "per_page": {"type": "integer"},
                    "total": {"type": "integer"},
                    "total_is_lower_bound": {"type": "boolean"},
                    "last_visible_page": {"type": "integer"},
                    "has_next_page": {"type": "boolean"},
                },
            },
        },
    }
    one = {
        "allOf": [
            {"$ref": "#/components/schemas/record"},
            {
                "type": "object",
                "properties": {"observations": {"type": "array", "items": {"type": "object"}}},
            },
        ]
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "review-archiver generic API",
            "version": "1",
            "description": "Read-only access to archived reviews of every site, "
            "as contract v2 records.",
        },
        "paths": {
            "/api/reviews": {
                "get": {
                    "operationId": "searchReviews",
                    "parameters": params,
                    "responses": {
                        "200": {
                            "description": "one page of records",
                            "content": {"application/json": {"schema": page}},
                        },
                        "400": error,
                    },
                }
            },
            "/api/reviews/{site}/{id}": {
                "get": {
                    "operationId": "getReview",
                    "parameters": [
                        {
                            "name": "site",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "the record and its captures",
                            "content": {"application/json": {"schema": one}},
                        },
                        "404": error,
                    },
                }
            },
        },
        "components": {"schemas": {"record": _RECORD}},
    }


def routes(state: ServeState) -> list[Route]:
    """Return the ``/api/...`` routes."""
    return [
        Route("/api/reviews", _list(state)),
        Route("/api/reviews/{site}/{id:path}", _one(state)),
        Route("/api/openapi.json", _openapi(state)),
    ]
