"""A crawl stores each page while the next one is fetched (``crawl._store_behind``),
starting once the next request has left: the milliseconds between an answer and the
next request are the crawler's alone, and the site's answer time covers the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import FAST
from siteserver import Reply, Site

from scraper.crawl._store_behind import StoreBehind
from scraper.fetch import Fetcher

PAGE = "<html><body><p>A page of ours.</p></body></html>"


class Recorder:
    """A ``finish`` that notes when each store started."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.began = threading.Event()

    def __call__(self, fetched: Any) -> str:
        self.started.append(time.monotonic())
        self.began.set()
        return f"stored {fetched.item}"


def page(url: str) -> Any:
    return SimpleNamespace(item=url)


@pytest.fixture
def finish() -> Recorder:
    return Recorder()


@pytest.fixture
def holding(finish: Recorder) -> Iterator[Callable[[float], StoreBehind]]:
    """Make a StoreBehind of *finish* holding pages *hold* seconds; closed after."""
    made: list[StoreBehind] = []

    def make(hold: float) -> StoreBehind:
        made.append(StoreBehind(finish, hold=hold))
        return made[-1]

    yield make
    for behind in made:
        behind.close()


def test_a_page_is_stored_once_released_and_not_before(
    finish: Recorder, holding: Callable[[float], StoreBehind]
) -> None:
    behind = holding(10.0)
    behind.submit(page("a"))
    assert not finish.began.wait(0.2)  # held: the next request has not left
    released = time.monotonic()
    behind.release()
    assert finish.began.wait(5)
    assert behind.collect() == "stored a"
    assert finish.started[0] >= released


def test_collecting_a_held_page_stores_it_at_once(
    finish: Recorder, holding: Callable[[float], StoreBehind]
) -> None:
    behind = holding(10.0)
    behind.submit(page("a"))
    began = time.monotonic()
    assert behind.collect() == "stored a"  # the end of a crawl, or a worker idle
    assert time.monotonic() - began < 2.0
    finish.began.clear()
    behind.submit(page("b"))  # each page is held anew
    assert not finish.began.wait(0.2)
    assert behind.close() is None and finish.started[-1] >= began


def test_a_page_whose_next_request_never_leaves_is_stored_after_the_hold(
    finish: Recorder, holding: Callable[[float], StoreBehind]
) -> None:
    behind = holding(0.3)
    submitted = time.monotonic()
    behind.submit(page("a"))
    assert finish.began.wait(5)
    assert 0.25 <= finish.started[0] - submitted < 2.0
    assert behind.collect() == "stored a"


def test_no_hold_stores_at_once(finish: Recorder, holding: Callable[[float], StoreBehind]) -> None:
    behind = holding(0.0)
    submitted = time.monotonic()
    behind.submit(page("a"))
    assert finish.began.wait(5)
    assert finish.started[0] - submitted < 0.2


def test_the_fetcher_says_when_each_request_has_left_before_its_answer(site: Site) -> None:
    site.route("/slow", Reply.html(PAGE).slow(0.4))
    sent: list[tuple[float, str]] = []

    def on_sent() -> None:
        sent.append((time.monotonic(), threading.current_thread().name))

    with Fetcher(FAST, delay=0.0, on_sent=on_sent) as client:
        client.fetch(site.url("/slow"))  # robots.txt first, then the page
        answered = time.monotonic()
    assert len(sent) >= 2
    assert {name for _, name in sent} == {threading.current_thread().name}
    assert answered - sent[-1][0] >= 0.3  # told as it left, not once answered
