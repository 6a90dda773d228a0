"""Running the application: bind first (so ``--port 0`` has a real port to print),
print the URL as the first line, then hand the socket to uvicorn."""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import TextIO

from scraper.config import ServeSettings
from scraper.errors import UsageError

__all__ = ["bind", "serve"]


def bind(host: str, port: int) -> tuple[socket.socket, str]:
    """Return a listening socket on *host*:*port* and its URL (the real port).

    Raises UsageError naming the address when it cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as error:
        raise UsageError(f"--host {host!r}: not an address to listen on ({error})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    real_host, real_port = sock.getsockname()[:2]
    shown = f"[{real_host}]" if family == socket.AF_INET6 else real_host
    return sock, f"http://{shown}:{real_port}"


def serve(
    db_url: str, settings: ServeSettings, *, workers: int = 1, out: TextIO = sys.stdout
) -> None:
    """Serve the archive at *db_url* until interrupted; the URL is printed first.

    With *workers* > 1, that many processes (uvicorn's supervisor) share the one
    listening socket, each with its own read-only engine: Python runs one request
    at a time per process, so this is how a server uses more than one core.
    Raises StoreError for an unusable database, UsageError for an address that
    cannot be listened on.
    """
    import uvicorn

    from scraper.serve.app import DB_ENV, SETTINGS_ENV, create_app

    app = create_app(db_url, settings)  # checks the database before anything is printed
    sock, url = bind(settings.host, settings.port)
    print(url, file=out, flush=True)
    try:
        if workers == 1:
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
            uvicorn.Server(config).run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        app.state.serve.engine.dispose()  # each worker opens its own
        os.environ[DB_ENV] = db_url
        os.environ[SETTINGS_ENV] = json.dumps(settings._asdict())
        config = uvicorn.Config(
            "scraper.serve.app:app_from_environment",
            factory=True,
            workers=workers,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
