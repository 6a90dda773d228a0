"""The server-rendered pages: front page, search, a review and its history, an item,
an author, the runs. Plain HTML forms and links (no JavaScript needed); Jinja2
with autoescaping, so whatever the archive holds is shown as text.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from scraper.serve import charts, history, queries
from scraper.serve.params import MAX_PAGE, SORTS, read_search, whole
from scraper.sites import known_tags
from scraper.store.fts import parse_search
from scraper.store.read import ReviewQuery

if TYPE_CHECKING:
    from scraper.serve.state import ServeState

__all__ = ["NotFound", "make_templates", "render", "routes"]


class NotFound(Exception):
    """A page about something the archive does not hold (answered 404)."""


def _http_url(value: Any) -> str | None:
    """Return *value* when it is an http(s) URL (fit for an href), else None."""
    if not isinstance(value, str):
        return None
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    return value if scheme in ("http", "https") else None


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str):
        return value.replace("T", " ")[:16]
    return "" if value is None else str(value)


def make_templates() -> Environment:
    """Return the Jinja2 environment of the pages (autoescape on for every template)."""
    env = Environment(loader=PackageLoader("scraper.serve", "templates"), autoescape=True)
    env.filters["http_url"] = _http_url
    env.filters["when"] = _when
    env.globals["link"] = lambda path, **args: (
        path
        + (
            "?" + urlencode({k: v for k, v in args.items() if v not in (None, "", [])}, doseq=True)
            if any(v not in (None, "", []) for v in args.values())
            else ""
        )
    )
    return env


def render(state: ServeState, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """Return the page *name* rendered with *context*, with status *code*."""
    html = state.templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=code)


def _front(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        with state.connect() as conn:
            totals = state.lists.get("overview", conn, queries.overview)
            last = queries.runs(conn, limit=state.settings.runs_on_front)
        return render(state, "index.html", totals=totals, runs=last)

    return endpoint


def _search(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        search = read_search(request.query_params, per_page=state.settings.page_size)
        settings = state.settings
        with state.connect() as conn:
            flt = search.filter
            records, shown, capped = state.search(
                conn, flt, offset=(search.page - 1) * search.per_page, size=search.per_page
            )
            facets = state.cache.get(
                ("facets", flt), conn, lambda c: queries.facets(c, flt, cap=settings.facet_cap)
            )
        q = search.filter.query.search
        words = [w for phrase in parse_search(q).phrases for w in phrase] if q else []
        hits = [{"record": r, "snippet": charts.snippet(r["body"], words)} for r in records]
        return render(
            state,
            "search.html",
            hits=hits,
            total=shown,
            capped=capped,
            facets=facets,
            facet_cap=settings.facet_cap,
            values=search.values,
            page=search.page,
            last_page=max(1, math.ceil(shown / search.per_page)),
            sorts=SORTS,
            known_tags=known_tags(),
        )

    return endpoint


def _review(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        site, key = request.path_params["site"], request.path_params["id"]
        with state.connect() as conn:
            record = queries.review_record(conn, site, key)
            if record is None:
                raise NotFound(f"no review {key} of {site} in this archive")
            captures = history.timeline(conn, record, state.bodies)
        stamps = [datetime.fromisoformat(c["observed_at"]) for c in captures]
        series = {
            "reactions (overall)": [
                (at, _reaction_total(c["reactions"]))
                for at, c in zip(stamps, captures, strict=True)
            ],
            "found helpful": [
                (at, c["helpful_count"]) for at, c in zip(stamps, captures, strict=True)
            ],
        }
        return render(
            state,
            "review.html",
            record=record,
            captures=captures,
            chart=charts.line_chart(series),
        )

    return endpoint


def _listing(conn: Any, flt: queries.ReviewFilter, page: int, size: int) -> dict[str, Any]:
    """Return one page of the reviews *flt* selects, newest first, with the paging an
    item's or an author's page shows (records, total, page, last_page)."""
    total = queries.count_reviews(conn, flt)
    records = queries.review_page(conn, flt, offset=(page - 1) * size, size=size)
    return {
        "records": records,
        "total": total,
        "page": page,
        "last_page": max(1, math.ceil(total / size)),
    }


def _item(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        site, key = request.path_params["site"], request.path_params["key"]
        page = _page_number(request)
        size = state.settings.page_size
        with state.connect() as conn:
            item = queries.item_row(conn, site, key)
            if item is None:
                raise NotFound(f"no item {key} of {site} in this archive")
            flt = queries.ReviewFilter(query=ReviewQuery(sort="-date"), item_id=item.id)
            listing = _listing(conn, flt, page, size)
            scores = queries.items_scores(conn, item.id)
            monthly = queries.items_monthly(conn, item.id)
        return render(
            state,
            "item.html",
            item=item,
            key=key,
            **listing,
            scores=charts.bar_chart(scores),
            monthly=charts.bar_chart(charts.months(monthly)),
        )

    return endpoint


def _author(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        site, key = request.path_params["site"], request.path_params["key"]
        page = _page_number(request)
        size = state.settings.page_size
        with state.connect() as conn:
            author = queries.author_row(conn, site, key)
            if author is None:
                raise NotFound(f"no author {key} of {site} in this archive")
            flt = queries.ReviewFilter(query=ReviewQuery(sort="-date"), author_id=author.id)
            listing = _listing(conn, flt, page, size)
            names = queries.author_names(conn, author.id)
        return render(
            state,
            "author.html",
            author=author,
            key=key,
            names=names,
            **listing,
        )

    return endpoint


def _runs(state: ServeState) -> Any:
    def endpoint(request: Request) -> HTMLResponse:
        with state.connect() as conn:
            found = queries.runs(conn, limit=state.settings.runs_shown)
        return render(state, "runs.html", runs=found)

    return endpoint


def _reaction_total(reactions: dict[str, int] | None) -> int | None:
    """The total count of a capture's reactions (MyAnimeList gives it as ``overall``)."""
    if not reactions:
        return None
    return reactions.get("overall", sum(reactions.values()))


def _page_number(request: Request) -> int:
    return whole(request.query_params.get("page"), "page", 1, MAX_PAGE) or 1


def routes(state: ServeState) -> list[Route]:
    """Return the page routes."""
    return [
        Route("/", _front(state)),
        Route("/reviews", _search(state)),
        Route("/reviews/{site}/{id:path}", _review(state)),
        Route("/items/{site}/{key:path}", _item(state)),
        Route("/authors/{site}/{key}", _author(state)),
        Route("/runs", _runs(state)),
    ]
