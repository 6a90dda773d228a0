"""``reviews serve``: browse the archive and read it through a Jikan v4-compatible API."""

from __future__ import annotations

import argparse
from typing import Any

from scraper.cli._common import add_command, add_db_option


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port from 0 to 65535: {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"not a number of processes from 1 to 64: {text!r}")
    return int(text)


def register(subparsers: Any) -> None:
    from scraper.config import ServeSettings

    defaults = ServeSettings()
    parser = add_command(
        subparsers,
        "serve",
        help="browse the archive in a browser; Jikan v4-compatible API",
        description="Serve the archive read-only over HTTP: search, every review's history, "
        "items and authors as pages; /v4/... answers like Jikan's API (MyAnimeList "
        "reviews), /api/reviews gives v2 records of every site. The first line printed "
        "is the URL. The database is opened read-only; nothing is written.",
        example="reviews serve --db reviews.db --port 8000   # then open http://127.0.0.1:8000",
    )
    add_db_option(parser)
    parser.add_argument(
        "--host",
        default=defaults.host,
        help=f"address to listen on (default {defaults.host}: this machine only)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=defaults.port,
        help=f"port (default {defaults.port}; 0 takes a free one, printed on the first line)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes answering requests (default 1; one per core uses them all)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scraper.config import ServeSettings, database_url
    from scraper.serve import require_extra

    require_extra()
    from scraper.serve.server import serve

    settings = ServeSettings(host=args.host, port=args.port)
    serve(database_url(args.db), settings, workers=args.workers)
    return 0
