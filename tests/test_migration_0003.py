"""Revision 0003 upgrades an archive of revision 0002 in place, with nothing lost.

The 0002 archive is written here with SQL into the 0002 tables, as the 0002-era
store wrote them (the newest capture's values on each review, a user renamed by
a newer capture, one observation per review per page), from the three
``fixtures/history`` captures. After the upgrade every row and observation is
checked, and ``reviews export`` (with history) and ``reviews query`` must print
what an archive built by today's code from the same pages prints: every v1 key
with its 0002 value, the v2 keys added.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import BOTH_DATABASES, HISTORY

from scraper.cli import main
from scraper.records import FetchedPage
from scraper.store.bodies import store_body
from scraper.store.engine import open_engine, write_transaction
from scraper.store.ingest import ingest_page
from scraper.store.migrate import alembic_config, schema_state, upgrade
from scraper.store.reparse import reparse

URL = "https://myanimelist.net/anime/91234/Paper_Lanterns_of_Kestrel_Bay/reviews"
CAPTURES = {
    "anime-91234-reviews-2021-03-legacy": datetime(2021, 3, 2, 10, 0, tzinfo=UTC),
    "anime-91234-reviews-2022-05-legacy": datetime(2022, 5, 10, 18, 30, tzinfo=UTC),
    "anime-91234-reviews-2026-02": datetime(2026, 2, 14, 8, 5, tzinfo=UTC),
}
KINDS = ("overall", "nice", "love_it", "funny", "confusing", "informative", "well_written")
KINDS += ("creative",)
V1_KEYS = ("mal_id", "url", "type", "entry", "user", "date", "score", "tags", "is_spoiler")
V1_KEYS += ("is_preliminary", "episodes_watched", "chapters_read", "reactions")
V1_KEYS += ("helpful_count", "scores", "review", "layout")
TABLES_0002 = ("entries", "users", "user_names", "reviews", "review_observations")
TABLES_0002 += ("review_tags", "tags", "raw_pages")


def v1_records(stem: str) -> list[dict[str, Any]]:
    """The page's records as the 0002-era parser printed them (v1 keys only)."""
    lines = (HISTORY / f"{stem}.expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [{key: json.loads(line)[key] for key in V1_KEYS} for line in lines if line]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stamp(moment: datetime, dialect: str) -> Any:
    """A timestamp as the 0002 store bound it (naive UTC text on SQLite)."""
    return moment.replace(tzinfo=None).isoformat(sep=" ") if dialect == "sqlite" else moment


def _reactions(record: dict[str, Any]) -> dict[str, Any]:
    values = record["reactions"] or {}
    return {f"reactions_{kind}": values.get(kind) for kind in KINDS}


def build_0002(url: str) -> None:
    """Create an archive at revision 0002 holding the three captures (oldest first)."""
    engine = open_engine(url, migrate=False)
    try:
        with write_transaction(engine) as conn:
            command.upgrade(alembic_config(conn), "0002")
        with write_transaction(engine) as conn:
            _write_0002(conn)
    finally:
        engine.dispose()


def _write_0002(conn: sa.Connection) -> None:
    d = conn.dialect.name
    users: dict[str, int] = {}  # every name seen -> user id
    owner: dict[int, int] = {}  # review id -> user id
    seen: dict[int, datetime] = {}
    for stem, at in CAPTURES.items():
        body = (HISTORY / f"{stem}.html").read_bytes()
        sha = store_body(conn, body, url=URL).sha256
        page_id = conn.execute(
            sa.text(
                "INSERT INTO raw_pages (requested_url, final_url, status, headers, fetched_at, "
                "body_sha256, source, page_kind, review_count, parser_version) VALUES "
                "(:u, :u, 200, '[]', :at, :sha, 'file', 'entry_reviews', :n, '0.2') RETURNING id"
            ),
            {"u": URL, "at": _stamp(at, d), "sha": sha, "n": len(v1_records(stem))},
        ).scalar_one()
        for record in v1_records(stem):
            _write_review(conn, record, page_id, at, users, owner, seen)


def _write_review(
    conn: sa.Connection,
    record: dict[str, Any],
    page_id: int,
    at: datetime,
    users: dict[str, int],
    owner: dict[int, int],
    seen: dict[int, datetime],
) -> None:
    d = conn.dialect.name
    stamp = _stamp(at, d)
    entry, user, review_id = record["entry"], record["user"], record["mal_id"]
    params = {"at": stamp, **entry, "name": user["username"], "uurl": user["url"]}
    conn.execute(
        sa.text(
            "INSERT INTO entries (type, mal_id, title, url, first_seen_at, last_seen_at) "
            "VALUES (:type, :mal_id, :title, :url, :at, :at) ON CONFLICT (type, mal_id) "
            "DO UPDATE SET title = excluded.title, url = excluded.url, last_seen_at = :at"
        ),
        params,
    )
    entry_id = conn.execute(
        sa.text("SELECT id FROM entries WHERE mal_id = :mal_id"), params
    ).scalar_one()
    # A known review keeps its user, whom a newer capture renames; else by name.
    user_id = owner.get(review_id) or users.get(user["username"])
    if user_id is None:
        user_id = conn.execute(
            sa.text(
                "INSERT INTO users (username, url, image_url, name_seen_at) "
                "VALUES (:name, :uurl, :img, :at) RETURNING id"
            ),
            {**params, "img": user["image_url"]},
        ).scalar_one()
    conn.execute(
        sa.text(
            "UPDATE users SET username = :name, url = :uurl, image_url = :img, "
            "name_seen_at = :at WHERE id = :uid"
        ),
        {**params, "img": user["image_url"], "uid": user_id},
    )
    conn.execute(
        sa.text(
            "INSERT INTO user_names (user_id, username, first_seen_at, last_seen_at) "
            "VALUES (:uid, :name, :at, :at) ON CONFLICT (user_id, username) "
            "DO UPDATE SET last_seen_at = :at"
        ),
        {**params, "uid": user_id},
    )
    users[user["username"]] = owner[review_id] = user_id
    row = {
        "id": review_id,
        "entry_id": entry_id,
        "user_id": user_id,
        "type": record["type"],
        "date": _stamp(datetime.fromisoformat(record["date"]), d),
        "score": record["score"],
        "is_spoiler": record["is_spoiler"],
        "is_preliminary": record["is_preliminary"],
        "episodes_watched": record["episodes_watched"],
        "chapters_read": record["chapters_read"],
        **_reactions(record),
        "helpful_count": record["helpful_count"],
        "scores": json.dumps(record["scores"]),
        "body": record["review"],
        "body_sha256": _sha(record["review"]),
        "layout": record["layout"],
        "first_seen_at": _stamp(seen.setdefault(review_id, at), d),
        "last_seen_at": stamp,
        "last_raw_page_id": page_id,
    }
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "first_seen_at")
    conn.execute(
        sa.text(
            f"INSERT INTO reviews ({columns}) VALUES ({values}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        ),
        row,
    )
    conn.execute(sa.text("DELETE FROM review_tags WHERE review_id = :id"), row)
    for position, name in enumerate(record["tags"]):
        conn.execute(
            sa.text("INSERT INTO tags (name) VALUES (:n) ON CONFLICT (name) DO NOTHING"),
            {"n": name},
        )
        conn.execute(
            sa.text(
                "INSERT INTO review_tags (review_id, tag_id, position) "
                "SELECT :id, id, :p FROM tags WHERE name = :n"
            ),
            {"id": review_id, "p": position, "n": name},
        )
    conn.execute(
        sa.text(
            "INSERT INTO review_observations (review_id, raw_page_id, observed_at, username, "
            "score, " + ", ".join(f"reactions_{k}" for k in KINDS) + ", helpful_count, scores, "
            "tags, review_sha256) VALUES (:id, :page, :at, :name, :score, "
            + ", ".join(f":reactions_{k}" for k in KINDS)
            + ", :helpful_count, :scores, :tags, :body_sha256)"
        ),
        {**row, "page": page_id, "at": stamp, "name": user["username"]}
        | {"tags": json.dumps(record["tags"])},
    )


def build_today(url: str) -> None:
    engine = open_engine(url)
    try:
        for stem, at in CAPTURES.items():
            body = (HISTORY / f"{stem}.html").read_bytes()
            report = ingest_page(engine, FetchedPage(URL, URL, 200, (), body, at), source="file")
            assert report.error is None
    finally:
        engine.dispose()


def _output(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main([*args, "--db", url]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(params=BOTH_DATABASES)
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh databases of one kind: the upgraded 0002 archive and today's."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    first = str(request.getfixturevalue("postgres_url"))
    second = str(request.getfixturevalue("postgres_url_2"))
    return first, second


@pytest.fixture
def postgres_url_2(request: pytest.FixtureRequest) -> str:
    """A second fresh PostgreSQL schema (``postgres_url`` gives one per test)."""
    import os
    import uuid
    from urllib.parse import quote

    base = os.environ["REVIEWS_TEST_POSTGRES_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={name}')}"


@pytest.mark.slow
def test_upgrade_keeps_every_row_and_prints_the_same_records(
    two_urls: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = two_urls
    build_0002(old)
    engine = open_engine(old, migrate=False)
    try:
        assert schema_state(engine).current == ("0002",)
        before = _rows_0002(engine)
        assert upgrade(engine).current == ("0002",)
        assert schema_state(engine).up_to_date
        _check_rows(engine, before)
    finally:
        engine.dispose()
    build_today(new)

    newest = {r["mal_id"]: r for r in v1_records("anime-91234-reviews-2026-02")}
    for args in (["export"], ["export", "--history"], ["query", "--format", "jsonl"]):
        upgraded, today = _output(old, capsys, *args), _output(new, capsys, *args)
        assert upgraded == today, args
        assert [r["mal_id"] for r in upgraded] == sorted(newest)
        for record in upgraded:  # the v1 keys first, with the 0002 values
            assert list(record)[: len(V1_KEYS)] == list(V1_KEYS)
            assert {k: record[k] for k in V1_KEYS} == newest[record["mal_id"]]
            assert record["site"] == "myanimelist" and record["id"] == str(record["mal_id"])
    history = _output(old, capsys, "export", "--history")[0]["observations"]
    assert [o["username"] for o in history] == ["MarrowFinch", "MarrowFinch", "Marrow-Finch"]
    assert [o["score"] for o in history] == [6, 7, 7]
    assert [o["helpful_count"] for o in history] == [12, 40, None]
    assert list(history[0])[:6] == [
        "observed_at",
        "score",
        "username",
        "reactions",
        "helpful_count",
        "review_sha256",
    ]
    csv_old = _csv(old, capsys)
    assert csv_old == _csv(new, capsys)
    # Today's parser, run over the upgraded archive's raw pages, finds nothing to change.
    exported = _output(old, capsys, "export", "--history")
    engine = open_engine(old)
    try:
        report = reparse(engine)
    finally:
        engine.dispose()
    assert (report.pages, report.reviews_changed) == (3, 0)
    assert _output(old, capsys, "export", "--history") == exported
    assert main(["query", "--db", old, "--entry", "anime:91234", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def _csv(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["export", "--db", url, "--format", "csv"]) == 0
    return capsys.readouterr().out


def _rows_0002(engine: sa.Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            table: [
                dict(row._mapping)
                for row in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            ]
            for table in TABLES_0002
        }


def _check_rows(engine: sa.Engine, before: dict[str, list[Any]]) -> None:
    """Every 0002 row is in the 0003 tables, its values where they now live."""
    with engine.connect() as conn:

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(row._mapping) for row in conn.execute(sa.text(sql))]

        def plain(value: Any) -> Any:
            return json.loads(value) if isinstance(value, str) and value[:1] in "{[n" else value

        items = rows("SELECT id, site, key, type, name, url FROM items ORDER BY id")
        assert items == [
            {"id": e["id"], "site": "myanimelist", "key": f"{e['type']}:{e['mal_id']}"}
            | {"type": e["type"], "name": e["title"], "url": e["url"]}
            for e in before["entries"]
        ]
        authors = rows("SELECT id, site, key, name, url, image_url FROM authors ORDER BY id")
        assert authors == [
            {"id": u["id"], "site": "myanimelist", "key": None, "name": u["username"]}
            | {"url": u["url"], "image_url": u["image_url"]}
            for u in before["users"]
        ]
        names = rows("SELECT author_id, name FROM author_names ORDER BY 1, 2")
        assert names == [
            {"author_id": n["user_id"], "name": n["username"]} for n in before["user_names"]
        ]
        reviews = {r["id"]: r for r in rows("SELECT * FROM reviews")}
        assert sorted(reviews) == [r["id"] for r in before["reviews"]]
        for old in before["reviews"]:
            new = reviews[old["id"]]
            assert (new["site"], new["key"]) == ("myanimelist", str(old["id"]))
            assert (new["item_id"], new["author_id"]) == (old["entry_id"], old["user_id"])
            assert (new["body"], new["body_sha256"]) == (old["body"], old["body_sha256"])
            assert (new["rating_value"], new["rating_best"]) == (old["score"], 10)
            assert new["source"] == f"mal-{old['layout']}"
            extra = plain(new["extra"])
            assert extra["helpful_count"] == old["helpful_count"]
            assert extra["scores"] == plain(old["scores"])
            assert bool(extra["is_spoiler"]) == bool(old["is_spoiler"])
            reactions = plain(new["reactions"])
            assert (reactions or {}).get("overall") == old["reactions_overall"]
        observations = rows("SELECT * FROM review_observations ORDER BY id")
        assert [o["id"] for o in observations] == [o["id"] for o in before["review_observations"]]
        for old, new in zip(before["review_observations"], observations, strict=True):
            assert (new["review_id"], new["raw_page_id"]) == (old["review_id"], old["raw_page_id"])
            assert (new["author_name"], new["rating_value"]) == (old["username"], old["score"])
            assert new["body_sha256"] == old["review_sha256"]
            assert plain(new["tags"]) == plain(old["tags"])
            assert plain(new["extra"])["helpful_count"] == old["helpful_count"]
        for table in ("review_tags", "tags"):
            assert rows(f"SELECT * FROM {table} ORDER BY 1, 2") == before[table], table
        # Revision 0004 adds the digest of what a page stored and its next link: unknown before.
        pages = rows("SELECT * FROM raw_pages ORDER BY 1, 2")
        assert [page.pop("records_sha256") for page in pages] == [None] * len(pages)
        assert [page.pop("next_url") for page in pages] == [None] * len(pages)
        assert pages == before["raw_pages"]
