"""Running the application: bind first (so ``--port 0`` has a real port to print),
print the URL as the first line, then hand the socket to uvicorn."""

from __future__ import annotations

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


def serve(db_url: str, settings: ServeSettings, *, out: TextIO = sys.stdout) -> None:
    """Serve the archive at *db_url* until interrupted; the URL is printed first.

    Raises StoreError for an unusable database, UsageError for an address that
    cannot be listened on.
    """
    import uvicorn

    from scraper.serve.app import create_app

    app = create_app(db_url, settings)
    sock, url = bind(settings.host, settings.port)
    print(url, file=out, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
