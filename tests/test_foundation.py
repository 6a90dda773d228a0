"""The package's foundations: packaging, the CLI shell, the error tree, records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REPO

from scraper.cli import ExitCode, main
from scraper.errors import LayoutNotRecognised, RateLimited, ScraperError, is_transient
from scraper.records import PageKind, PageResult
from scraper.sites.mal.v1 import Entry, Review, User, to_record


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(Path(folder).relative_to(REPO).parts)
        for folder, _, files in os.walk(REPO / "scraper", followlinks=True)
        if "__init__.py" in files
    }
    assert found == listed


def test_version_and_help_exit_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "Example:" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == ExitCode.USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.startswith("reviews ")


def test_errors_name_their_url_and_transience() -> None:
    error = RateLimited("429 Too Many Requests", url="http://x/a", status=429, retry_after=3)
    assert str(error) == "http://x/a: 429 Too Many Requests"
    assert is_transient(error)
    assert not is_transient(LayoutNotRecognised("no reviews", url="http://x/a"))
    assert isinstance(error, ScraperError)


def _review() -> Review:
    return Review(
        mal_id=5,
        type="anime",
        entry=Entry(mal_id=1, type="anime", title="T", url="https://myanimelist.net/anime/1/T"),
        user=User(username="u", url="https://myanimelist.net/profile/u"),
        date=datetime(2008, 8, 24, 5, 46, tzinfo=UTC),
        score=7,
        tags=("Recommended",),
        is_spoiler=False,
        is_preliminary=False,
        episodes_watched=None,
        chapters_read=None,
        reactions=None,
        helpful_count=3,
        scores=None,
        review="text",
        layout="legacy",
    )


def test_review_round_trips_through_its_contract_dict() -> None:
    review = _review()
    data = json.loads(json.dumps(review.to_dict()))
    assert data["url"] == "https://myanimelist.net/reviews.php?id=5"
    assert data["date"] == "2008-08-24T05:46:00+00:00"
    assert Review.from_dict(data) == review


def test_page_result_raises_for_the_drift_alarm() -> None:
    result = PageResult(kind=PageKind.UNRECOGNISED, url="http://x/r", problem="no reviews")
    with pytest.raises(LayoutNotRecognised, match="no reviews"):
        result.raise_for_kind()
    ok = PageResult(kind=PageKind.SINGLE_REVIEW, url="http://x/r", reviews=(to_record(_review()),))
    assert ok.raise_for_kind() is ok
