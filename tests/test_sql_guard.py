"""``reviews sql`` cannot write, run a program, signal or reconfigure the server, and
stops at its timeout: the attacks of issue 11, on real SQLite files and a real
PostgreSQL server reached as a superuser."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_query_pages import build_archive

from scraper.cli import ExitCode, main
from scraper.store.sqlshell import READ_ONLY_ROLE

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def sql(db: str, statement: str, *extra: str) -> int:
    return main(["sql", "--db", db, *extra, statement])


def refused(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "read-only" in err, err
    return err


# --- both databases -------------------------------------------------------------------


def test_full_text_and_json_tables_are_queryable(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build_archive(db_url).dispose()
    capsys.readouterr()
    if db_url.startswith("sqlite"):
        search = "SELECT count(*) AS n FROM reviews_fts WHERE reviews_fts MATCH 'harbour'"
        expand = "SELECT sum(value) AS n FROM json_each('[1, 2, 3]')"
    else:
        search = "SELECT count(*) AS n FROM reviews WHERE body_fts @@ to_tsquery('harbour')"
        expand = "SELECT sum(value::int) AS n FROM json_array_elements_text('[1, 2, 3]')"
    assert sql(db_url, search) == ExitCode.OK
    assert '"n": ' in capsys.readouterr().out
    assert sql(db_url, expand) == ExitCode.OK
    assert capsys.readouterr().out.strip() == '{"n": 6}'


@pytest.mark.slow
def test_a_runaway_recursive_query_stops_at_the_timeout(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build_archive(db_url).dispose()
    started = time.monotonic()
    assert sql(db_url, RUNAWAY, "--timeout", "1") == ExitCode.USAGE
    assert time.monotonic() - started < 8
    err = capsys.readouterr().err
    assert "stopped the statement after 1 s (--timeout)" in err and "Traceback" not in err


def test_the_timeout_must_be_a_positive_number(sqlite_url: str) -> None:
    for value in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit) as stop:
            sql(sqlite_url, "SELECT 1", "--timeout", value)
        assert stop.value.code == ExitCode.USAGE


# --- SQLite -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH '{dir}/new.db' AS other",
        "VACUUM INTO '{dir}/new.db'",
        "CREATE TEMP TABLE scratch (x)",
        "PRAGMA writable_schema = 1",
    ],
)
def test_sqlite_writes_no_file(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str
) -> None:
    build_archive(sqlite_url).dispose()
    assert sql(sqlite_url, statement.format(dir=tmp_path)) == ExitCode.USAGE
    refused(capsys)
    # Only the database and SQLite's own -wal/-shm files: nothing else was written.
    assert {path.name.split("-")[0] for path in tmp_path.iterdir()} == {"reviews.db"}


# --- PostgreSQL, connected as a superuser ------------------------------------------------


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A folder the database server (another user on this machine) may write in."""
    folder = Path(tempfile.mkdtemp(prefix="reviews-sql-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def archive(postgres_url: str) -> str:
    build_archive(postgres_url).dispose()
    return postgres_url


def _superuser(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            return bool(conn.execute(sa.text(query)).scalar_one())
    finally:
        engine.dispose()


def test_copy_to_program_and_to_a_file_run_nothing(
    archive: str, server_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server runs on this machine: a file it would write appears in server_dir.
    marker = server_dir / "ran"
    dump = server_dir / "dump.csv"
    for statement in (
        f"COPY reviews TO PROGRAM 'touch {marker}'",
        f"COPY (SELECT 1) TO '{dump}'",
        f"/* /* */ SELECT */ COPY reviews TO PROGRAM 'touch {marker}'",
        f"SELECT lo_export(lo_from_bytea(0, 'x'), '{dump}')",
    ):
        assert sql(archive, statement) == ExitCode.USAGE, statement
        refused(capsys)
    assert not marker.exists() and not dump.exists()


def test_other_backends_are_not_signalled(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    victim = sa.create_engine(archive, poolclass=sa.pool.NullPool)
    with victim.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        for call in ("pg_terminate_backend", "pg_cancel_backend"):
            assert sql(archive, f"SELECT {call}({pid})") == ExitCode.USAGE
            refused(capsys)
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1  # still connected
    victim.dispose()


def test_the_configuration_is_not_reloaded_nor_a_checkpoint_forced(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(archive)
    with engine.connect() as conn:
        loaded = conn.execute(sa.text("SELECT pg_conf_load_time()")).scalar_one()
    for statement in ("SELECT pg_reload_conf()", "CHECKPOINT", "SELECT pg_rotate_logfile()"):
        assert sql(archive, statement) == ExitCode.USAGE, statement
        refused(capsys)
    time.sleep(0.2)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_conf_load_time()")).scalar_one() == loaded
    engine.dispose()


def test_notify_reaches_no_listener(archive: str, capsys: pytest.CaptureFixture[str]) -> None:
    import psycopg

    dsn = sa.make_url(archive).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN reviews_h4_channel")
        for statement in (
            "NOTIFY reviews_h4_channel, 'hi'",
            "SELECT pg_notify('reviews_h4_channel', 'hi')",
        ):
            assert sql(archive, statement) == ExitCode.USAGE
            refused(capsys)
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


@pytest.mark.parametrize(
    "statement",
    [
        "RESET ROLE",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "SELECT set_config('role', 'postgres', true)",
        "SELECT \"set_config\"('role', 'postgres', true)",
        "SELECT U&\"set\\005fconfig\"('role', 'postgres', true)",
        "SELECT query_to_xml('SELECT pg_reload_conf()', true, true, '')",
        "SELECT ts_stat('SELECT set_con' || 'fig(''role'', ''postgres'', true)::tsvector')",
        "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
        "LISTEN anything",
        "LOAD 'auto_explain'",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_read_file('/etc/hostname')",
        "DELETE FROM reviews",
        "WITH gone AS (DELETE FROM review_tags RETURNING 1) SELECT count(*) FROM gone",
    ],
)
def test_the_guard_cannot_be_lifted_from_inside(
    archive: str, capsys: pytest.CaptureFixture[str], statement: str
) -> None:
    assert sql(archive, statement) == ExitCode.USAGE
    refused(capsys)
    engine = sa.create_engine(archive)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM review_tags")).scalar_one() == 14
    engine.dispose()


def test_queries_run_as_the_read_only_role(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(archive, "SELECT current_user AS who, count(*) AS n FROM reviews_view") == 0
    assert capsys.readouterr().out.strip() == f'{{"who": "{READ_ONLY_ROLE}", "n": 7}}'
    assert sql(archive, "EXPLAIN SELECT * FROM reviews") == ExitCode.OK
    assert sql(archive, "SHOW statement_timeout", "--timeout", "7") == ExitCode.OK
    assert '"7s"' in capsys.readouterr().out


@pytest.mark.slow
def test_pg_sleep_is_stopped_by_the_timeout(
    archive: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert sql(archive, "SELECT pg_sleep(40)", "--timeout", "1") == ExitCode.USAGE
    assert time.monotonic() - started < 8
    assert "stopped the statement after 1 s" in capsys.readouterr().err


def test_the_role_itself_cannot_act_on_the_server(archive: str, server_dir: Path) -> None:
    """Behind the statement check, the role refuses each attack on its own."""
    import psycopg

    assert sql(archive, "SELECT 1") == ExitCode.OK  # creates and grants the role
    if not _superuser(archive):
        pytest.skip("needs a superuser connection to take the role by hand")
    marker = server_dir / "ran"
    dsn = sa.make_url(archive).set(drivername="postgresql").render_as_string(False)
    other = psycopg.connect(dsn, autocommit=True)
    pid = other.execute("SELECT pg_backend_pid()").fetchone()
    attacks = [
        f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'",
        f"COPY (SELECT 1) TO '{marker}'",
        "SELECT pg_reload_conf()",
        "CHECKPOINT",
        f"SELECT pg_terminate_backend({pid[0] if pid else 0})",
        "SELECT pg_read_file('/etc/hostname')",
        "CREATE TABLE nope (x int)",
    ]
    with psycopg.connect(dsn) as conn:
        for attack in attacks:
            conn.execute(f'SET ROLE "{READ_ONLY_ROLE}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(attack)
            conn.rollback()
        conn.execute(f'SET ROLE "{READ_ONLY_ROLE}"')
        assert conn.execute("SELECT count(*) FROM reviews").fetchone() == (7,)
    assert other.execute("SELECT 1").fetchone() == (1,)
    other.close()
    assert not marker.exists()


def test_many_archives_set_up_the_shared_role_at_once(postgres_url: str) -> None:
    """The role is cluster-wide: first uses on several schemas at the same moment
    (creating, granting) all succeed."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import quote

    from scraper.api import Archive

    base = postgres_url.split("?")[0]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(3)]
    urls = [f"{base}?options={quote(f'-csearch_path={name}')}" for name in names]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        for url in urls:
            build_archive(url).dispose()

        sql = "SELECT current_user, count(*) FROM reviews"

        def count(url: str) -> object:
            with Archive(url) as archive, archive.sql(sql) as result:
                return list(result.rows)

        with ThreadPoolExecutor(len(urls)) as pool:
            results = list(pool.map(count, urls))
        assert results == [[(READ_ONLY_ROLE, 7)]] * len(urls)
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def test_a_plain_role_runs_queries_as_itself(postgres_url: str) -> None:
    """A role that may not create or join the read-only role (no CREATEROLE) runs
    the statement as itself, which cannot run programs either; writes stay refused."""
    import uuid

    from scraper.api import Archive
    from scraper.errors import UsageError

    if not _superuser(postgres_url):
        pytest.skip("needs a superuser to make the plain role")
    plain = f"reviews_plain_{uuid.uuid4().hex[:8]}"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = sa.make_url(postgres_url.split("?")[0])
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{plain}" LOGIN NOSUPERUSER NOCREATEROLE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{plain}"'))
    url = base.set(username=plain).render_as_string(False) + f"?options=-csearch_path%3D{schema}"
    try:
        build_archive(url).dispose()
        with Archive(url) as archive:
            with archive.sql("SELECT current_user, count(*) FROM reviews") as result:
                rows = list(result.rows)
            assert rows in ([(plain, 7)], [(READ_ONLY_ROLE, 7)])
            for statement in ("DELETE FROM reviews", "COPY reviews TO PROGRAM 'true'"):
                with pytest.raises(UsageError, match="read-only"), archive.sql(statement):
                    pass
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'DROP OWNED BY "{plain}"'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{plain}"'))
        admin.dispose()
