"""Query filters and full-text search on a known archive, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest import BOTH_DATABASES
from test_query_pages import build_archive, expected_records

from scraper.cli import ExitCode, main
from scraper.errors import UsageError
from scraper.store.fts import parse_search
from scraper.store.read import ReviewQuery, iter_records, select_reviews


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, sa.Engine]]:
    """The known archive (every page ingested twice), built once per module and backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('query') / 'reviews.db'}"
        engine = build_archive(url, captures=2)
        yield url, engine
        engine.dispose()
        return
    base = os.environ.get("REVIEWS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("$REVIEWS_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    engine = build_archive(url, captures=2)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def ids(engine: sa.Engine, **options: object) -> list[int]:
    query = ReviewQuery.from_args(**options)  # type: ignore[arg-type]
    return [record["mal_id"] for record in iter_records(engine, query)]


def test_records_are_what_the_parser_produced(archive: tuple[str, sa.Engine]) -> None:
    _, engine = archive
    expected = expected_records()
    found = {record["mal_id"]: record for record in iter_records(engine)}
    assert found == expected
    # Key order is the contract's too (JSON Lines diff cleanly against `reviews parse`).
    assert [list(record) for record in found.values()] == [list(r) for r in expected.values()]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"entry": "1001"}, [5001, 5002, 5003]),
        ({"entry": "manga:2001"}, [5006, 5007]),
        ({"entry": "anime:2001"}, []),
        ({"entry": "copper moon"}, [5004, 5005]),
        ({"entry": "100%"}, []),  # LIKE wildcards are taken literally
        ({"user": "quietotter"}, [5001, 5004]),
        ({"user": "SaltyGull", "type": "manga"}, [5006]),
        ({"tags": ["recommended"]}, [5001, 5004, 5006]),
        ({"tags": ["Mixed feelings", "preliminary"]}, [5003, 5007]),
        ({"tags": ["well_written"]}, [5001]),
        ({"min_score": "8"}, [5001, 5004, 5006]),
        ({"min_score": "4", "max_score": "5"}, [5002, 5007]),
        ({"since": "2021"}, [5003, 5005, 5006, 5007]),
        ({"since": "2020-01-01", "until": "2020"}, [5002, 5004]),
        ({"until": "2019-03-02"}, [5001]),  # a date-only --until keeps that whole day
        ({"since": "2021-11-30T23:59:00+00:00", "until": "2021-12"}, [5003]),
        ({"entry": "Harbour", "min_score": "5", "tags": ["recommended"]}, [5001]),
        # Most entries match: SQLite walks the sort index (same answer either way).
        ({"entry": "o", "limit": "2", "sort": "-date"}, [5005, 5003]),
        ({"entry": "o", "limit": "3", "sort": "-score", "max_score": "8"}, [5003, 5002, 5005]),
    ],
)
def test_filters_select_the_right_reviews(
    archive: tuple[str, sa.Engine], options: dict[str, object], expected: list[int]
) -> None:
    assert ids(archive[1], **options) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("lantern", [5001, 5003, 5007]),  # a word matches itself only: not "lanterns"
        ("LANTERN festival", [5001, 5003]),  # all words, any order, any case
        ('"lantern festival"', [5001, 5003]),
        ('"festival lantern"', []),  # a phrase keeps its order
        ('"festival of"', [5005, 5006]),
        ('festival "plot sinks"', [5002]),
        ("café", [5003]),  # accents are kept on both engines
        ("cafe", []),
        ("8", [5002]),  # "8.5" is two words on both engines
        ("well-written", [5004]),  # hyphenated text is a phrase of its parts
        ("in:", [5003, 5005, 5007]),  # punctuation in the query is ignored
        # '"unterminated phrase' is refused as malformed: see test_cli_badinput
    ],
)
def test_full_text_gives_the_same_reviews_on_both_engines(
    archive: tuple[str, sa.Engine], search: str, expected: list[int]
) -> None:
    assert ids(archive[1], search=search) == expected


def test_sorting_and_limit(archive: tuple[str, sa.Engine]) -> None:
    engine = archive[1]
    assert ids(engine, sort="-score", limit="3") == [5004, 5001, 5006]
    assert ids(engine, sort="date")[:2] == [5001, 5004]
    assert ids(engine, sort="-date")[0] == 5007
    assert ids(engine, sort="user", search="festival") == [5003, 5001, 5002, 5006, 5005]
    assert ids(engine, sort="entry", tags=["recommended"]) == [5004, 5001, 5006]


def test_history_lists_every_capture_in_time_order(archive: tuple[str, sa.Engine]) -> None:
    engine = archive[1]
    (record,) = iter_records(
        engine, ReviewQuery.from_args(entry="1002", min_score="9"), history=True
    )
    observations = record["observations"]
    assert [o["observed_at"] for o in observations] == [
        "2024-01-02T03:04:05.678901+00:00",
        "2024-01-03T03:04:05.678901+00:00",
    ]
    assert {o["username"] for o in observations} == {"QuietOtter"}
    assert all(o["score"] == 10 and o["helpful_count"] is None for o in observations)
    assert observations[0]["reactions"] == record["reactions"]
    assert len(observations[0]["review_sha256"]) == 64


def test_postgres_search_uses_the_gin_index(archive: tuple[str, sa.Engine]) -> None:
    engine = archive[1]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    statement = select_reviews(ReviewQuery.from_args(search='"lantern festival"'), "postgresql")
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # 7 rows: force the choice
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
    assert "ix_reviews_body_fts" in plan


def test_the_migration_indexes_what_the_queries_search() -> None:
    import importlib

    from scraper.store import fts

    migration = importlib.import_module("scraper.schema.migrations.versions.0002_fulltext")
    # Revision 0005 made body_fts again, from a cheaper expression of the same vectors.
    cheaper = importlib.import_module("scraper.schema.migrations.versions.0005_cheaper_pg_fulltext")
    assert fts.PG_BODY_VECTOR in cheaper._vector_column(cheaper._VECTOR, "")[2]
    assert f"ADD COLUMN {fts.PG_FTS_COLUMN} tsvector" in migration._POSTGRES_UP[0]
    assert f"INDEX {fts.PG_FTS_INDEX}" in migration._POSTGRES_UP[1]
    assert f"CREATE VIRTUAL TABLE {fts.FTS_TABLE} USING fts5" in migration._SQLITE_UP[0]


def test_datasette_finds_the_fts_table_and_view(archive: tuple[str, sa.Engine]) -> None:
    engine = archive[1]
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as conn:
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'reviews_fts'"
        ).scalar_one()
        view = conn.exec_driver_sql(
            "SELECT site, item_name, author_name, tags FROM reviews_view WHERE key = '5004'"
        ).one()
        # sqlite-utils' and datasette's detect_fts: content="<table>" (or content=[<table>])
        found = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE rootpage = 0 AND "
            "sql LIKE '%VIRTUAL TABLE%USING FTS%content=\"reviews\"%'"
        ).scalar_one()
    assert 'content="reviews"' in sql and found == "reviews_fts"
    site, item, author, tags = view
    assert (site, item, author) == ("myanimelist", "Copper Moon Express", "QuietOtter")
    assert json.loads(tags) == ["Recommended", "Funny", "Creative"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"min_score": "eleven"}, "--min-score"),
        ({"max_score": "0"}, "--max-score"),
        ({"min_score": "8", "max_score": "3"}, "--min-score"),
        ({"since": "yesterday"}, "--since"),
        ({"until": "2020-02-30"}, "--until"),
        ({"since": "2022", "until": "2021"}, "--since"),
        ({"tags": ["excellent"]}, "--tag"),
        ({"type": "novel"}, "--type"),
        ({"sort": "popularity"}, "--sort"),
        ({"limit": "0"}, "--limit"),
        ({"limit": "ten"}, "--limit"),
        ({"search": '" ... "'}, "--search"),
    ],
)
def test_bad_filters_are_usage_errors_naming_the_option(
    options: dict[str, object], named: str
) -> None:
    from scraper.cli import explain

    with pytest.raises(UsageError) as refused:
        ReviewQuery.from_args(**options)  # type: ignore[arg-type]
    # The library names its parameter; the CLI says the option that sets it.
    parameter = named.removeprefix("--").replace("-", "_")
    assert refused.value.parameter == parameter
    assert refused.value.message.startswith(parameter)
    assert named in explain(refused.value)[1]


def test_search_terms_are_cut_alike_for_both_engines() -> None:
    terms = parse_search('Lantern "Festival, of" it\'s')
    assert terms.phrases == (("lantern",), ("festival", "of"), ("it", "s"))
    assert terms.sqlite_match() == '"lantern" "festival of" "it s"'
    assert terms.postgres_tsquery() == "'lantern' & ('festival' <-> 'of') & ('it' <-> 's')"


def test_query_command_prints_json_lines(
    archive: tuple[str, sa.Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    url = archive[0]
    code = main(["query", "--db", url, "--search", "lantern", "--sort=-date", "--limit", "2"])
    assert code == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["mal_id"] for line in lines] == [5007, 5003]


def test_query_command_table_and_csv(
    archive: tuple[str, sa.Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    url = archive[0]
    assert main(["query", "--db", url, "--entry", "Salt", "--format", "table"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "5006" in out and "5007" in out and "Salt and Ink" in out and "2 review(s)" in out
    assert main(["query", "--db", url, "--user", "TinCan", "--format", "csv"]) == ExitCode.OK
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("mal_id,url,type,") and rows[1].startswith("5005,")


def test_query_command_refuses_bad_arguments_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "reviews.db")
    assert main(["query", "--db", db, "--since", "2020-13-01"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--since" in err and "2020-13-01" in err and "Traceback" not in err
