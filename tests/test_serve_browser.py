"""The pages of ``reviews serve`` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium; ``.ci/run`` installs them): search through
the form, the history of a review captured three times, the charts, and script
payloads in review text, author names and titles that never run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_serve_support import (
    NAME_PAYLOAD,
    SCRIPT_PAYLOAD,
    Server,
    chromium,
    navigate_by,
)

#: Each module starts a Chromium and a ``reviews serve`` process.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(fixture_site: Server) -> Server:
    return fixture_site


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from chromium(tmp_path_factory)


def _no_script_ran(browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (raises when no alert is open)
    assert browser.execute_script("return window.__pwned === undefined") is True
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    handlers = browser.execute_script(
        "return [...document.querySelectorAll('*')].filter(e => [...e.attributes]"
        ".some(a => a.name.startsWith('on'))).length"
    )
    assert handlers == 0


def test_search_through_the_form_lists_every_review_with_the_word(
    browser: Any, server: Server
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    box = browser.find_element(By.CSS_SELECTOR, "main form input[name=q]")
    box.send_keys("harbour")
    navigate_by(browser, box, "submit")
    hits = browser.find_elements(By.CSS_SELECTOR, "#results article.hit")
    links = {a.text for hit in hits for a in hit.find_elements(By.TAG_NAME, "a")}
    assert {"review 900001", "review 900003", "review 910001", "review 910003"} <= links
    assert len(hits) == 4
    marks = browser.find_elements(By.CSS_SELECTOR, "#results mark")
    assert marks and all(mark.text.lower() == "harbour" for mark in marks)
    assert browser.find_element(By.ID, "total").text == "4"
    _no_script_ran(browser)


def test_a_review_shows_each_capture_what_changed_and_a_chart(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/reviews/myanimelist/900001")
    dates = [e.text[:10] for e in browser.find_elements(By.CSS_SELECTOR, ".captured-at")]
    assert dates == ["2021-03-10", "2022-05-20", "2026-02-14"]
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".capture-name")]
    assert names == ["MarrowFinch", "MarrowFinch", "Marrow-Finch"]
    changes = browser.find_element(By.ID, "captures").text
    assert "rating: 6 → 7" in changes and "body edited" in changes
    assert browser.find_elements(By.CSS_SELECTOR, ".diff .add")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.series")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart circle.point")) == 3
    original = browser.find_element(By.ID, "original").get_attribute("href")
    assert original == "https://myanimelist.net/reviews.php?id=900001"


def test_item_page_draws_its_charts(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/items/myanimelist/anime:91234")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 2
    bars = charts[0].find_elements(By.CSS_SELECTOR, "rect.bar")
    assert len(bars) == 10
    heights = [float(bar.get_attribute("height")) for bar in bars]
    assert sum(1 for h in heights if h > 0) == 3  # scores 6, 7 and 9
    assert charts[1].find_elements(By.CSS_SELECTOR, "rect.bar")


@pytest.mark.parametrize(
    "path",
    [
        "/reviews/myanimelist/910003",
        "/reviews?q=hooked",
        "/items/myanimelist/anime:91299",
        "/authors/myanimelist/4",
    ],
)
def test_payloads_in_text_and_names_show_as_text_and_never_run(
    browser: Any, server: Server, path: str
) -> None:
    browser.get(server.url + path)
    _no_script_ran(browser)
    text = browser.find_element("tag name", "body").text
    assert "window.__pwned=1" in text


def test_the_payload_review_shows_its_text_verbatim(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/reviews/myanimelist/910003")
    assert browser.find_element(By.ID, "body").text.startswith(SCRIPT_PAYLOAD)
    assert browser.find_element(By.ID, "author").text == NAME_PAYLOAD
    _no_script_ran(browser)
