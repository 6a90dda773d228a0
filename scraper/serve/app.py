"""The ASGI application: pages, the Jikan API and the generic API on one read-only engine.

Errors never show a traceback: a bad parameter is a 400 naming it, something
the archive does not hold a 404, each in the shape of where it was asked
(Jikan's error body under ``/v4``, ``{"error": ...}`` under ``/api``, an HTML
page elsewhere); anything unexpected is a 500 with one line on stderr.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from scraper.config import ServeSettings
from scraper.errors import StoreError, UsageError
from scraper.serve import api, jikan, pages, queries
from scraper.serve.readonly import open_read_only
from scraper.serve.shapes import jikan_error
from scraper.serve.state import ServeState

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DB_ENV", "SETTINGS_ENV", "app_from_environment", "create_app"]

#: How the supervisor (scraper.serve.server) tells its worker processes what to serve.
DB_ENV = "REVIEWS_SERVE_DB"
SETTINGS_ENV = "REVIEWS_SERVE_SETTINGS"

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
]


class _SecurityHeaders:
    """Adds headers that keep a browser from running or sniffing anything: even a
    template mistake could not run a script (the CSP allows none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, sending)


def _lifespan(state: ServeState) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=_warm, args=(state,), daemon=True).start()
        try:
            yield
        finally:
            state.engine.dispose()

    return lifespan


def _warm(state: ServeState) -> None:
    try:
        with state.connect() as conn:
            if queries.never_analysed(conn):
                print(
                    "reviews serve: the reviews table has never been analysed: lists stay "
                    "slow until autovacuum (or ANALYZE, as its owner) runs",
                    file=sys.stderr,
                    flush=True,
                )
        jikan.warm(state)
    except Exception as error:  # the requests will make them; say why once
        print(f"reviews serve: warming up failed: {error}", file=sys.stderr, flush=True)


def _where(request: Request) -> str:
    path = request.url.path
    return "jikan" if path.startswith("/v4/") else "api" if path.startswith("/api/") else "page"


def create_app(url: str, settings: ServeSettings | None = None) -> Starlette:
    """Return the application serving the archive at *url* read-only.

    Raises StoreError when the database is missing, unreachable or not current.
    """
    state = ServeState(open_read_only(url), settings or ServeSettings(), pages.make_templates())

    def error(request: Request, status: int, message: str) -> Response:
        where = _where(request)
        if where == "jikan":
            kind = "ValidationException" if status == 400 else "HttpException"
            body = jikan_error(status, kind, message, None)
            if status == 400:
                body = {
                    "status": 400,
                    "type": kind,
                    "messages": {"request": [message]},
                    "error": jikan.VALIDATION_ERROR,
                }
            return jikan.JikanError(status, body).response()
        if where == "api":
            return api.ApiError(status, message).response()
        title = {400: "Bad request", 404: "Not found"}.get(status, "Something went wrong")
        return pages.render(
            state, "error.html", status, status=status, title=title, message=message
        )

    async def on_usage(request: Request, exc: Exception) -> Response:
        return error(request, 400, str(exc))

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return error(request, 404, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "Not Found" if exc.status_code == 404 else str(exc.detail)
        return error(request, exc.status_code, message)

    async def on_store(request: Request, exc: Exception) -> Response:
        print(f"reviews serve: {request.url.path}: {exc}", file=sys.stderr, flush=True)
        return error(request, 503, "the archive's database cannot be read right now")

    async def on_jikan(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, jikan.JikanError)
        return exc.response()

    async def on_api(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, api.ApiError)
        return exc.response()

    async def on_bug(request: Request, exc: Exception) -> Response:
        print(
            f"reviews serve: {request.url.path}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return error(request, 500, "the server failed to answer this request")

    app = Starlette(
        routes=[*pages.routes(state), *jikan.routes(state), *api.routes(state)],
        exception_handlers={
            UsageError: on_usage,
            pages.NotFound: on_not_found,
            HTTPException: on_http,
            StoreError: on_store,
            jikan.JikanError: on_jikan,
            api.ApiError: on_api,
            Exception: on_bug,
        },
        lifespan=_lifespan(state),
    )
    app.add_middleware(_SecurityHeaders)
    app.state.serve = state
    return app


def app_from_environment() -> Starlette:
    """Return the application a worker process serves (``serve(workers=N)`` sets the
    database and settings in the environment before starting the workers)."""
    import json
    import os

    settings = ServeSettings(**json.loads(os.environ[SETTINGS_ENV]))
    return create_app(os.environ[DB_ENV], settings)
