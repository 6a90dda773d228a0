"""``reviews datasette``: browse the archive in Datasette, with our metadata."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from scraper.cli._common import add_command, add_db_option
from scraper.config import DATASETTE_TRUNCATE_CELLS
from scraper.errors import UsageError


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "datasette",
        help="browse the archive in Datasette (search, facets, labels)",
        description="Serve an SQLite archive with Datasette (pip install datasette) and "
        "this archive's metadata: titles and descriptions, full-text search on reviews "
        "and reviews_view, facets (site, item type, tags, rating), newest reviews first, "
        "labels for every foreign key, review bodies cut to "
        f"{DATASETTE_TRUNCATE_CELLS} characters in tables (--setting truncate_cells_html). "
        "An archive of an older schema is migrated first. Words after -- go to "
        "`datasette serve` (--port, --host, -o). With --metadata-out, the metadata is "
        "written to FILE (- for stdout) and the command to serve it is printed instead; "
        "sqlite-utils needs no metadata: `sqlite-utils search reviews.db reviews WORD`.",
        example="reviews datasette --db reviews.db -- --port 8002 -o",
    )
    add_db_option(parser)
    parser.add_argument(
        "--metadata-out",
        metavar="FILE",
        type=Path,
        default=None,
        help="write the metadata to FILE (- for stdout), print the datasette command, "
        "do not start it",
    )
    parser.add_argument(
        "extra",
        nargs="*",
        metavar="-- DATASETTE_ARGS",
        help="options for `datasette serve`, after --",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from scraper import api

    extra = list(args.extra)
    if extra[:1] == ["--"]:
        del extra[0]
    setup = api.datasette_setup(args.db)
    text = json.dumps(setup.metadata, indent=2, ensure_ascii=False) + "\n"
    out: Path | None = args.metadata_out
    if out is not None:
        if str(out) == "-":
            sys.stdout.write(text)
            named = Path("metadata.json")
            print(f"# save it as {named}, then:", file=sys.stderr)
        else:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as error:
                raise UsageError(f"--metadata-out: {out}: {error.strerror}") from None
            named = out
        command = setup.command(named, extra, typed=True)
        print(shlex.join(command), file=sys.stderr if str(out) == "-" else sys.stdout)
        return 0
    if setup.program is None:
        print(
            "reviews datasette: Datasette is not installed here (pip install datasette); "
            "or write the metadata with --metadata-out FILE and run the command printed",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="reviews-datasette-") as folder:
        metadata_file = Path(folder) / "metadata.json"
        metadata_file.write_text(text, encoding="utf-8")
        command = setup.command(metadata_file, extra)
        print(f"reviews datasette: {shlex.join(command)}", file=sys.stderr)
        return _serve(command)


def _serve(command: list[str]) -> int:
    """Run Datasette in the foreground; a TERM or HUP sent to this process goes to it
    too (a service manager stops `reviews datasette`, not the child it never saw)."""
    import signal
    import subprocess

    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    stops = (signal.SIGTERM, signal.SIGHUP)
    before = {stop: signal.signal(stop, forward) for stop in stops}
    try:
        return child.wait()
    finally:
        for stop, handler in before.items():
            signal.signal(stop, handler)
        if child.poll() is None:  # interrupted (Ctrl-C): never leave it running
            child.terminate()
            child.wait()
