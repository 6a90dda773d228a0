"""``reviews query --format table`` fits the terminal: at 80 columns every line is at
most 80 characters with its right border, one line per review, the review text
readable; wider terminals get the author and tags back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_query_pages import build_archive

BORDERS = "┓┃┩│┘"


def table(db: str, columns: int, *extra: str) -> list[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "query", "--db", db, "--format", "table", *extra],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pages of test_query_pages in one archive, built once: the tests only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('table') / 'reviews.db'}"
    build_archive(url).dispose()
    return url


#: Each width is a ``reviews query`` process; the fast tier runs the common one.
@pytest.mark.parametrize(
    "columns", [pytest.param(c, marks=pytest.mark.slow) for c in (60, 100, 132, 200)] + [80]
)
def test_every_line_fits_with_its_right_border(archive: str, columns: int) -> None:
    lines = table(archive, columns)
    body = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert len(body) == 4 + 7  # top, heading, rule, 7 reviews (one line each), bottom
    for line in body:
        assert len(line) <= columns, line
        assert line[-1] in BORDERS, line
    assert len({len(line) for line in body}) == 1  # a closed box
    assert lines[-1] == "7 review(s)"


@pytest.mark.slow
def test_at_80_columns_the_review_text_reads(archive: str) -> None:
    lines = table(archive, 80)
    heading = next(line for line in lines if line.startswith("┃"))
    cells = [cell.strip() for cell in heading.strip("┃").split("┃")]
    assert cells == ["id", "date", "item", "rating", "review"]
    rows = [line for line in lines if line.startswith("│")]
    review = [row.strip("│").split("│")[-1].strip() for row in rows]
    assert all(len(text) >= 24 for text in review), review


@pytest.mark.slow
def test_wide_terminals_show_item_author_and_tags(archive: str) -> None:
    heading = next(line for line in table(archive, 200) if line.startswith("┃"))
    cells = [cell.strip() for cell in heading.strip("┃").split("┃")]
    assert cells == ["id", "date", "item", "author", "rating", "tags", "review"]


def test_stats_help_says_what_it_prints_off_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "stats", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
        check=True,
    )
    assert "JSON" in done.stdout and "not a terminal" in done.stdout
