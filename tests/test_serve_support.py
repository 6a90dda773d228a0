"""Shared by the ``reviews serve`` tests: an archive built from the fixture pages
(three captures of one entry's page, plus a page whose review text, author name and
title carry HTML/JS payloads), a real server subprocess, and Jikan's schemas.

Holds no tests itself; the test modules import these helpers.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HISTORY, REPO

from scraper.cli import main

JIKAN_OPENAPI = REPO.parent / "shared" / "jikan-openapi.json"
ENTRY_URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
PAYLOAD_ENTRY_URL = "https://myanimelist.net/anime/91299/Paper_Lanterns_of_Kestrel_Bay/reviews"

#: The three captures of fixtures/history and when each was taken.
CAPTURES = (
    ("anime-91234-reviews-2021-03-legacy.html", "2021-03-10T12:00:00+00:00"),
    ("anime-91234-reviews-2022-05-legacy.html", "2022-05-20T12:00:00+00:00"),
    ("anime-91234-reviews-2026-02.html", "2026-02-14T08:05:00+00:00"),
)
#: The real captures of ../shared/corpus/mal and when each is taken to have been made.
CORPUS_CAPTURES = (
    ("anime-1-reviews-2022-06-legacy.html", "2022-06-15T12:00:00+00:00"),
    ("anime-1-reviews-2022-10.html", "2022-10-15T12:00:00+00:00"),
    ("manga-1-reviews-2022-10.html", "2022-10-16T12:00:00+00:00"),
)
SCRIPT_PAYLOAD = "<script>window.__pwned=1</script>"
IMG_PAYLOAD = "<img src=x onerror=\"window.__pwned=1;alert('pwned')\">"
NAME_PAYLOAD = "<img src=x onerror=window.__pwned=1>"
TITLE_PAYLOAD = "<b onmouseover=window.__pwned=1>Bay</b>"


def _escaped(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def payload_page(folder: Path) -> Path:
    """Write a current-layout page of entry 91299 whose review 910003 has script
    payloads in its text and author name (entity-escaped in the HTML, so the parser
    reads them as text, as it would on a real page), and whose title has one too."""
    html = (HISTORY / "anime-91234-reviews-2026-02.html").read_text(encoding="utf-8")
    html = html.replace("91234", "91299").replace("reviews.php?id=9000", "reviews.php?id=9100")
    html = html.replace(
        "Three episodes in and I am hooked",
        f"{_escaped(SCRIPT_PAYLOAD)} {_escaped(IMG_PAYLOAD)} Three episodes in and I am hooked",
    )
    html = html.replace(
        'class="ga-click">LanternKeeper</a>', f'class="ga-click">{_escaped(NAME_PAYLOAD)}</a>'
    )
    html = html.replace(
        "Paper Lanterns of Kestrel Bay", f"Paper Lanterns of Kestrel {_escaped(TITLE_PAYLOAD)}"
    )
    page = folder / "anime-91299-payloads.html"
    page.write_text(html, encoding="utf-8")
    return page


def build_archive(db_url: str, folder: Path) -> None:
    """Import the three captures (each at its own time) and the payload page."""
    for name, when in CAPTURES:
        assert main(["import", str(HISTORY / name), "--db", db_url, "--fetched-at", when]) == 0
    page = payload_page(folder)
    assert main(["import", str(page), "--db", db_url, "--fetched-at", "2026-02-15T10:00"]) == 0


class Server:
    """A ``reviews serve --port 0`` subprocess and the URL of its first line."""

    def __init__(self, db_url: str, *extra: str) -> None:
        self.db_url = db_url
        command = [sys.executable, "-m", "scraper", "serve", "--db", db_url, "--port", "0", *extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.first_line = self._first_line(deadline=time.monotonic() + 60)
        self.url = self.first_line.strip()

    def _first_line(self, deadline: float) -> str:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = self.process.stdout.readline()
                if line:
                    return line
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise AssertionError(f"reviews serve exited {self.process.returncode}: {err}")
        self.stop()
        raise AssertionError("reviews serve printed no URL within 60 s")

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params or None, timeout=30)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.json()

    def stop(self) -> str:
        """Stop the server; return what it wrote on stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        err = self.process.stderr.read() if self.process.stderr else ""
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        return err


@contextmanager
def serving(db_url: str, *extra: str) -> Iterator[Server]:
    """Run a server on *db_url* for the block; stop it afterwards."""
    server = Server(db_url, *extra)
    try:
        yield server
    finally:
        server.stop()


def fixture_server(factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Build the fixture archive in a new folder and serve it (a module fixture's body)."""
    folder = factory.mktemp("serve")
    url = f"sqlite:///{folder / 'reviews.db'}"
    build_archive(url, folder)
    with serving(url) as running:
        yield running


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_MISSING = (
    "needs Debian's chromium and chromium-driver at /usr/bin (.ci/run installs them: "
    "apt-get install -y chromium chromium-driver)"
)


def chromium(factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Yield a Selenium driver of Debian's headless Chromium (a module fixture's body).

    Skips when Chromium is not installed, except in CI (``$CI``), where .ci/run has
    installed it and its absence is a failure.
    """
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail(CHROMIUM_MISSING)
        pytest.skip(CHROMIUM_MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def navigate_by(browser: Any, element: Any, action: str = "click") -> None:
    """Click a link (or submit a form) and wait until the next page has replaced this one:
    Selenium returns from both before the new page is loaded."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    getattr(element, action)()
    WebDriverWait(browser, 15).until(ec.staleness_of(element))
    WebDriverWait(browser, 15).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )


def jikan_openapi() -> dict[str, Any] | None:
    """Return Jikan's OpenAPI description from ../shared, or None when it is absent."""
    if not JIKAN_OPENAPI.is_file():
        return None
    return json.loads(JIKAN_OPENAPI.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def json_schema(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Return *schema* (OpenAPI 3.0, refs into ``components``) as a JSON Schema.

    ``nullable: true`` becomes a null type; nothing else is relaxed: types, arrays,
    objects and enums are checked as written, so a ``null`` where the description
    does not allow one fails.
    """
    schemas = openapi["components"]["schemas"]

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(schemas[node["$ref"].rsplit("/", 1)[1]])
        out = {k: convert(v) for k, v in node.items() if k != "nullable"}
        kind = node.get("type")
        if isinstance(kind, str) and node.get("nullable"):
            out["type"] = [kind, "null"]
        return out

    return convert(schema)  # type: ignore[no-any-return]
