"""Exports (JSON Lines, CSV, history), stats and read-only SQL on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import HISTORY
from test_query_pages import build_archive, expected_records

from scraper.cli import ExitCode, main
from scraper.export.tabular import CSV_COLUMNS
from scraper.records import FetchedPage
from scraper.sites.mal.archive import SCORE_KINDS
from scraper.sites.mal.v1 import REACTION_KINDS
from scraper.store.engine import open_engine
from scraper.store.ingest import ingest_page

CAPTURES = {
    "anime-91234-reviews-2021-03-legacy": datetime(2021, 3, 1, 12, 0, tzinfo=UTC),
    "anime-91234-reviews-2022-05-legacy": datetime(2022, 5, 1, 12, 0, tzinfo=UTC),
    "anime-91234-reviews-2026-02": datetime(2026, 2, 1, 12, 0, tzinfo=UTC),
}
ENTRY_URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_export_is_the_parser_output(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_archive(db_url).dispose()
    out = tmp_path / "reviews.jsonl"
    assert main(["export", "--db", db_url, "--out", str(out)]) == ExitCode.OK
    assert "7 review(s) written" in capsys.readouterr().err
    expected = expected_records()
    assert read_jsonl(out) == [expected[key] for key in sorted(expected)]
    assert not list(tmp_path.glob("*.partial"))


def test_export_to_stdout_with_filters(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_archive(db_url).dispose()
    assert main(["export", "--db", db_url, "--tag", "spoiler", "--type", "anime"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["mal_id"] for line in lines] == [5005]


def _from_csv(row: dict[str, str]) -> dict[str, object]:
    """Rebuild a contract record from a CSV row (the inverse of the flattening)."""

    def number(value: str) -> int | None:
        return int(value) if value else None

    reactions = {kind: number(row[f"reactions_{kind}"]) for kind in REACTION_KINDS}
    scores = {kind: number(row[f"scores_{kind}"]) for kind in SCORE_KINDS}
    return {
        "mal_id": int(row["mal_id"]),
        "url": row["url"],
        "type": row["type"],
        "entry": {
            "mal_id": int(row["entry_mal_id"]),
            "type": row["entry_type"],
            "title": row["entry_title"],
            "url": row["entry_url"],
        },
        "user": {
            "username": row["username"],
            "url": row["user_url"],
            "image_url": row["user_image_url"] or None,
        },
        "date": row["date"],
        "score": int(row["score"]),
        "tags": json.loads(row["tags"]),
        "is_spoiler": row["is_spoiler"] == "true",
        "is_preliminary": row["is_preliminary"] == "true",
        "episodes_watched": number(row["episodes_watched"]),
        "chapters_read": number(row["chapters_read"]),
        "reactions": None if all(v is None for v in reactions.values()) else reactions,
        "helpful_count": number(row["helpful_count"]),
        "scores": None if all(v is None for v in scores.values()) else scores,
        "review": row["review"],
        "layout": row["layout"],
        "site": row["site"],
        "id": row["id"],
        "item": {"name": row["item_name"], "type": row["item_type"], "url": row["item_url"]},
        "author": {
            "name": row["author_name"],
            "url": row["author_url"],
            "image_url": row["author_image_url"] or None,
        },
        "title": row["title"] or None,
        "rating": {
            "value": int(row["rating_value"]),
            "best": int(row["rating_best"]),
            "worst": int(row["rating_worst"]),
        },
        "body": row["body"],
        "source": row["source"],
    }


def test_csv_round_trip(db_url: str, tmp_path: Path) -> None:
    build_archive(db_url).dispose()
    out = tmp_path / "reviews.csv"
    assert main(["export", "--db", db_url, "--format", "csv", "--out", str(out)]) == 0
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")  # no BOM unless --bom
    with out.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    expected = expected_records()
    assert [_from_csv(row) for row in rows] == [expected[key] for key in sorted(expected)]
    assert "\n\n" in rows[0]["review"]  # line breaks survive inside quoted cells


def test_history_export_shows_each_capture(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        # Captures imported out of time order: the history is still in time order.
        for name in sorted(CAPTURES, reverse=True):
            page = FetchedPage(
                requested_url=ENTRY_URL,
                final_url=ENTRY_URL,
                status=None,
                headers=(),
                body=(HISTORY / f"{name}.html").read_bytes(),
                fetched_at=CAPTURES[name],
            )
            assert ingest_page(engine, page, source="file").error is None
    finally:
        engine.dispose()
    out = tmp_path / "history.jsonl"
    assert main(["export", "--db", db_url, "--history", "--out", str(out)]) == 0
    records = {record["mal_id"]: record for record in read_jsonl(out)}
    assert sorted(records) == [900001, 900002, 900003]
    history = records[900001]["observations"]
    assert isinstance(history, list)
    assert [o["observed_at"] for o in history] == [t.isoformat() for t in sorted(CAPTURES.values())]
    assert [o["username"] for o in history] == ["MarrowFinch", "MarrowFinch", "Marrow-Finch"]
    assert [o["score"] for o in history] == [6, 7, 7]
    assert [o["helpful_count"] for o in history] == [12, 40, None]
    assert history[0]["reactions"] is None and history[2]["reactions"]["overall"] == 104
    bodies = [_review_text(name, 900001) for name in sorted(CAPTURES, key=CAPTURES.__getitem__)]
    assert [o["review_sha256"] for o in history] == [
        hashlib.sha256(body.encode("utf-8")).hexdigest() for body in bodies
    ]
    assert len(records[900003]["observations"]) == 1
    latest = {k: v for k, v in records[900001].items() if k != "observations"}
    assert latest == _expected("anime-91234-reviews-2026-02", 900001)


def _expected(name: str, review_id: int) -> dict[str, object]:
    for line in (HISTORY / f"{name}.expected.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["mal_id"] == review_id:
            record.pop("_file", None)
            return dict(record)
    raise AssertionError(f"{review_id} is not in {name}")


def _review_text(name: str, review_id: int) -> str:
    return str(_expected(name, review_id)["review"])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--format", "csv", "--history"], "--history"),
        (["--format", "warc"], "--out"),
        (["--format", "warc", "--out", "x.warc.gz", "--max-size", "lots"], "--max-size"),
        (["--min-score", "11"], "--min-score"),
        (["--out", "/no/such/folder/out.jsonl"], "--out"),
    ],
)
def test_bad_export_arguments_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    db = str(tmp_path / "reviews.db")
    assert main(["export", "--db", db, *argv]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_stats_counts_the_archive(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_archive(db_url, captures=2).dispose()
    assert main(["stats", "--db", db_url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    totals = stats["totals"]
    assert (totals["reviews"], totals["items"], totals["authors"]) == (7, 3, 5)
    assert (totals["observations"], totals["raw_pages"], totals["raw_bodies"]) == (14, 6, 3)
    assert 0 < totals["raw_bytes_stored"] < totals["raw_bytes"]
    assert totals["database_bytes"] > 0
    assert stats["by_entry"][0] == ["Harbour Lights (myanimelist anime:1001)", 3]
    assert stats["by_site"] == [["myanimelist", 7]]
    assert ["Recommended", 3] in stats["by_tag"] and ["Well-written", 1] in stats["by_tag"]
    assert stats["by_score"] == [[2, 1], [4, 1], [5, 1], [7, 1], [8, 1], [9, 1], [10, 1]]
    assert stats["by_month"][0] == ["2019-03", 1] and len(stats["by_month"]) == 7


def test_sql_reads(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    build_archive(db_url).dispose()
    sql = (
        "SELECT item_name, count(*) AS n FROM reviews_view "
        "WHERE item_name LIKE '%Moon%' GROUP BY item_name"
    )
    assert main(["sql", "--db", db_url, sql]) == 0
    assert json.loads(capsys.readouterr().out) == {"item_name": "Copper Moon Express", "n": 2}
    keys = "SELECT key FROM reviews ORDER BY key"
    assert main(["sql", "--db", db_url, "--format", "csv", keys]) == 0
    assert capsys.readouterr().out.split() == ["key", *(str(n) for n in range(5001, 5008))]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM reviews",
        "UPDATE reviews SET rating_value = 1",
        "INSERT INTO tags (name) VALUES ('Evil')",
        "DROP TABLE review_tags",
        "CREATE TABLE notes (x int)",
        "WITH gone AS (DELETE FROM review_tags RETURNING 1) SELECT count(*) FROM gone",
        "COMMIT; DELETE FROM review_tags",  # ending the read-only transaction first
        "SELECT 1; DROP TABLE review_tags",
    ],
)
def test_sql_refuses_writes(
    db_url: str, capsys: pytest.CaptureFixture[str], statement: str
) -> None:
    build_archive(db_url).dispose()
    code = main(["sql", "--db", db_url, statement])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "Traceback" not in err
    if ";" in statement:
        assert "one statement at a time" in err or "read-only" in err
    elif not statement.startswith("WITH"):  # SQLite cannot parse DELETE in a CTE at all
        assert "read-only" in err
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM review_tags")).scalar_one() == 14
            assert conn.execute(sa.text("SELECT min(rating_value) FROM reviews")).scalar_one() == 2
            assert conn.execute(sa.text("SELECT count(*) FROM tags")).scalar_one() == 9
    finally:
        engine.dispose()


def test_sqlite_guard_cannot_be_lifted_from_inside(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    build_archive(sqlite_url).dispose()
    assert main(["sql", "--db", sqlite_url, "PRAGMA query_only = 0"]) == ExitCode.USAGE
    assert "read-only" in capsys.readouterr().err
    assert main(["sql", "--db", sqlite_url, "SELECT 1; DELETE FROM reviews"]) == ExitCode.USAGE
    assert main(["sql", "--db", sqlite_url, "PRAGMA table_info(tags)"]) == ExitCode.OK
    assert '"name": "name"' in capsys.readouterr().out


def test_sql_errors_are_named(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    open_engine(db_url).dispose()  # read commands refuse a missing database
    assert main(["sql", "--db", db_url, "SELECT nope FROM nowhere"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err
    assert main(["sql", "--db", db_url, "  "]) == ExitCode.USAGE


def test_stats_by_month_walks_the_date_index_and_counts_what_group_by_counts(
    sqlite_url: str,
) -> None:
    import sqlite3

    from scraper.store.stats import archive_stats

    build_archive(sqlite_url, captures=1).dispose()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM reviews ORDER BY id")]
        # Year ends, a lone month, two reviews in one month, reviews without a date.
        dates = [
            "1999-12-31 23:59:59.999999",
            "2000-01-01 00:00:00.000000",
            "2000-01-31 12:00:00.000000",
            "2021-12-01 00:00:00.000000",
            None,
            "2022-01-15 08:00:00.000000",
            None,
        ]
        for review_id, date in zip(ids, dates, strict=True):
            connection.execute("UPDATE reviews SET date = ? WHERE id = ?", (date, review_id))
        grouped = [
            list(row)
            for row in connection.execute(
                "SELECT substr(date, 1, 7) AS m, count(*) FROM reviews GROUP BY m ORDER BY m"
            )
        ]
    assert grouped == [[None, 2], ["1999-12", 1], ["2000-01", 2], ["2021-12", 1], ["2022-01", 1]]
    assert archive_stats(sqlite_url)["by_month"] == grouped


#: Values for every parameter the stats statements take (a plan needs them bound).
PLAN_PARAMETERS = {"start": "", "month": "2000-01", "next": "2000-02", "top": 20}


def test_every_stats_query_on_sqlite_reads_indexes_without_sorting_the_reviews(
    sqlite_url: str,
) -> None:
    # The counts must cost one pass over an index, not a sort of every review: the
    # plan of each statement `reviews stats` runs reads reviews and their tags through
    # covering indexes only, and groups without a temporary tree.
    import sqlite3

    from scraper.store import stats
    from scraper.store.lite import SqliteSource

    build_archive(sqlite_url, captures=1).dispose()
    connection = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    seen: list[str] = []

    class Watched(SqliteSource):
        def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
            seen.append(sql)
            return super().rows(sql, params)

    try:
        source = Watched(connection)
        stats._by_month(source)
        stats._counts(source, "reviews.site")
        stats._counts(source, "reviews.rating_value")
        stats._by_entry_and_tag(source, 20)
        for sql in seen:
            steps = connection.execute("EXPLAIN QUERY PLAN " + sql, PLAN_PARAMETERS)
            plan = " ".join(str(step[3]) for step in steps)
            assert "TEMP B-TREE FOR GROUP BY" not in plan, (sql, plan)  # (ORDER BY of groups)
            for table in ("reviews", "review_tags"):
                scans = [step for step in plan.split("SCAN ")[1:] if step.startswith(table)]
                assert all("USING COVERING INDEX" in step for step in scans), (sql, plan)
    finally:
        connection.close()
    assert len(seen) >= 6


def test_stats_by_month_of_a_date_this_store_never_writes_falls_back_to_group_by(
    sqlite_url: str,
) -> None:
    # A damaged or hand-edited date must not stop `reviews stats`: the counts are then
    # grouped the slow, sure way.
    import sqlite3

    from scraper.store.stats import archive_stats

    build_archive(sqlite_url, captures=1).dispose()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        connection.execute(
            "UPDATE reviews SET date = 'not a date' WHERE id = (SELECT min(id) FROM reviews)"
        )
        grouped = [
            list(row)
            for row in connection.execute(
                "SELECT substr(date, 1, 7) AS m, count(*) FROM reviews GROUP BY m ORDER BY m"
            )
        ]
    assert ["not a d", 1] in grouped
    assert archive_stats(sqlite_url)["by_month"] == grouped
