"""Read commands start fast: no Alembic unless a database must be migrated, and on
SQLite no SQLAlchemy and no page parser either.

Importing Alembic cost a read command about 0.1 s of CPU, SQLAlchemy (with the
tables) 0.25 s and the sites' parsers 0.1 s: more than its whole work on a small
archive. The revision check is plain SQL, SQLite is read through the stdlib
``sqlite3`` module and the sites' rules load without their parsers; these tests
keep it that way (what is imported, and what a whole process costs).
``bench/bench_startup.py`` prints the figures.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HISTORY

from scraper.store.engine import open_engine
from scraper.store.migrate import _alembic_head, _head, schema_state

#: CPU a read command on SQLite may cost, as a multiple of importing SQLAlchemy
#: (which it no longer needs): 0.26-0.3x measured; 1.15-1.2x when it read through
#: SQLAlchemy, 1.9x when Alembic was imported for the revision check too. A ratio
#: of runs taken in turn holds on a loaded machine, where both slow down alike; a
#: fixed number of seconds does not.
_STARTUP_BUDGET = 0.6

#: What a read command on SQLite must not load: the database toolkit and its tables,
#: the migration tool, the HTML engine and the sites' page parsers.
_HEAVY = ("sqlalchemy", "alembic", "selectolax", "scraper.schema.tables", "scraper.sites._pages")

_READ_COMMANDS = (
    ["query", "--limit", "3"],
    ["stats"],
    ["export", "--format", "jsonl", "--out", os.devnull],
)


@pytest.fixture
def small_db(tmp_path: Path) -> str:
    from scraper.cli import main

    path = tmp_path / "reviews.db"
    assert main(["import", str(HISTORY), "--db", str(path)]) == 0
    return str(path)


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    assert _head() == _alembic_head()


def test_the_revision_check_reads_what_alembic_wrote(sqlite_url: str) -> None:
    engine = open_engine(sqlite_url)  # creates and migrates with Alembic
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    assert state.current == (_alembic_head(),)
    assert state.up_to_date


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        *_READ_COMMANDS,
        ["query", "--format", "csv"],
        ["export", "--format", "jsonl", "--history"],
    ],
    ids=" ".join,
)
def test_read_commands_on_sqlite_load_no_toolkit_and_no_parser(
    small_db: str, command: list[str]
) -> None:
    done = _loaded_after([*command, "--db", small_db], _HEAVY)
    assert done.stderr.strip().splitlines()[-1] == "0 False []"
    # It did read the archive: records or counts on stdout, or a count of those written.
    assert done.stdout or "3 review(s) written" in done.stderr


def _loaded_after(argv: list[str], prefixes: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run ``reviews`` *argv* in a new interpreter; its last line on stderr is its exit
    code, whether SQLAlchemy was loaded, and the modules loaded whose names start with
    one of *prefixes*."""
    program = (
        "import sys\n"
        "from scraper.cli import main\n"
        f"code = main({argv!r})\n"
        f"loaded = sorted(n for n in sys.modules if n.startswith({prefixes!r}))\n"
        "print(code, 'sqlalchemy' in sys.modules, loaded, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )


def _cpu_seconds(programs: list[list[str]], runs: int = 5) -> list[float]:
    """Return the least CPU time (user + system) of each program, run in turn *runs* times.

    Bytecode is cached first, as an installed program has it.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    for argv in programs:
        subprocess.run(argv, capture_output=True, check=True, env=env)  # writes the bytecode
    best = [float("inf")] * len(programs)
    for _ in range(runs):
        for index, argv in enumerate(programs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(argv, capture_output=True, check=True, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            spent = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            best[index] = min(best[index], spent)
    return best


@pytest.mark.slow  # several timed interpreter starts per command
@pytest.mark.parametrize("command", _READ_COMMANDS, ids=lambda argv: argv[0])
def test_a_read_command_costs_little_more_than_importing_sqlalchemy(
    small_db: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytecode in the test's folder, as an installed program has it cached.
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "bytecode"))
    floor, spent = _cpu_seconds(
        [
            [sys.executable, "-c", "import sqlalchemy"],
            [sys.executable, "-m", "scraper", *command, "--db", small_db],
        ]
    )
    assert spent < _STARTUP_BUDGET * floor, (
        f"reviews {command[0]}: {spent:.3f} s CPU, importing SQLAlchemy {floor:.3f} s"
    )


def test_the_rules_loaded_without_parsers_are_the_registered_sites_own() -> None:
    # RULES stands in for SITES wherever no page is parsed; each must be its site's policy.
    from scraper.sites import RULES, SITES, SiteRules

    assert len(RULES) == len(SITES)
    for rules, site in zip(RULES, SITES, strict=True):
        assert isinstance(site, type(rules))
        for name in ("name", *(n for n in SiteRules.__annotations__ if n != "name")):
            assert getattr(rules, name) == getattr(site, name), name
        probes = ("myanimelist", "example.com", "https://myanimelist.net/anime/1/x/reviews")
        for probe in probes:
            assert rules.owns(probe) == site.owns(probe)
            assert rules.handles_url(probe) == site.handles_url(probe)
            assert rules.item_keys(probe) == site.item_keys(probe)


@pytest.mark.parametrize(
    "command",
    [["import", str(HISTORY)], ["db", "upgrade"]],
    ids=lambda argv: argv[0],
)
def test_writing_to_sqlite_never_loads_the_postgresql_dialect(
    small_db: str, command: list[str]
) -> None:
    # SQLAlchemy's PostgreSQL dialect (its drivers' modules with it) cost every command
    # that writes to SQLite about 50 ms of start-up; its statements are built where
    # PostgreSQL asks for them.
    done = _loaded_after([*command, "--db", small_db], ("sqlalchemy.dialects.postgresql",))
    assert done.stderr.strip().splitlines()[-1] == "0 True []"
