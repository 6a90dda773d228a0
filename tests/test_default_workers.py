"""Without ``--jobs``, parse, import and reparse run one process per usable CPU for
enough work, and one process for a handful of files (starting workers would cost more)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HISTORY

import scraper.store.files as files
from scraper.cli import ExitCode, main
from scraper.cli._common import capped_workers
from scraper.config import CliSettings, default_workers, usable_cpus
from scraper.store.engine import open_engine

ENOUGH = CliSettings().parse_parallel_from

affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)"
)


@pytest.fixture
def one_cpu() -> Iterator[None]:
    """This process may run on one CPU only, for the test."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@affinity
def test_usable_cpus_follow_the_affinity_mask_not_the_machine(one_cpu: None) -> None:
    assert usable_cpus() == 1
    assert default_workers(10 * ENOUGH) == 1


def test_a_handful_of_files_runs_in_one_process_and_enough_on_every_cpu() -> None:
    assert default_workers(ENOUGH - 1) == 1
    assert default_workers(ENOUGH) == usable_cpus()
    assert default_workers(None) == usable_cpus()  # reparse: it decides by its pages


def test_jobs_asked_for_are_kept_and_capped_at_the_cpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert capped_workers("import", 1) == 1
    assert capped_workers("import", None, ENOUGH - 1) == 1
    assert capped_workers("import", usable_cpus() + 5) == usable_cpus()
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.slow  # starts a process pool
def test_import_without_jobs_uses_workers_for_many_files_and_stores_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    sources = sorted(HISTORY.glob("*.html"))
    for number in range(ENOUGH // len(sources) + 1):
        for source in sources:
            shutil.copyfile(source, pages / f"{number:02d}-{source.name}")
    assert len(list(pages.iterdir())) >= ENOUGH
    pools: list[int] = []
    real = files.parallel_map

    def counted(function: Any, jobs: Any, workers: int, **options: Any) -> Any:
        pools.append(workers)
        return real(function, jobs, workers, **options)

    monkeypatch.setattr(files, "parallel_map", counted)
    by_default, in_one = tmp_path / "default.db", tmp_path / "one.db"
    assert main(["import", str(pages), "--db", str(by_default)]) == ExitCode.OK
    assert pools == ([usable_cpus()] if usable_cpus() > 1 else [])
    assert main(["import", str(pages), "--db", str(in_one), "--jobs", "1"]) == ExitCode.OK
    assert len(pools) == (1 if usable_cpus() > 1 else 0)  # --jobs 1 started none
    assert _rows(by_default) == _rows(in_one)


def test_import_without_jobs_of_a_few_files_starts_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("a worker pool was started for a handful of files")

    monkeypatch.setattr(files, "parallel_map", refused)
    db = tmp_path / "few.db"
    assert main(["import", str(HISTORY), "--db", str(db)]) == ExitCode.OK
    assert _rows(db)[0] > 0


def _rows(path: Path) -> tuple[int, int, list[tuple[Any, ...]]]:
    """Reviews, observations and every review's key and body, of the archive at *path*."""
    engine = open_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            reviews = connection.exec_driver_sql("SELECT count(*) FROM reviews").scalar_one()
            seen = connection.exec_driver_sql(
                "SELECT count(*) FROM review_observations"
            ).scalar_one()
            bodies = connection.exec_driver_sql(
                "SELECT site, key, body FROM reviews ORDER BY site, key"
            ).all()
    finally:
        engine.dispose()
    return int(reviews), int(seen), [tuple(row) for row in bodies]
