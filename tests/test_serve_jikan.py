"""The Jikan v4-compatible API of ``reviews serve``: responses valid against Jikan's
own OpenAPI description (when ../shared has it), equal to ``reviews export``, read
by a real Jikan client from PyPI (jikanpy-v4), with Jikan's errors; and the extras
(``as_of``, history) and the generic v2 API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from test_serve_support import REPO, Server, jikan_openapi, json_schema, serving

sys.path.insert(0, str(REPO / "bench"))
from synth import generate

PAGE = 20


@pytest.fixture(scope="module")
def server(fixture_site: Server) -> Server:
    return fixture_site


@pytest.fixture(scope="module")
def synth_archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    """1,000 synthetic reviews over 10 entries: several pages each."""
    url = f"sqlite:///{tmp_path_factory.mktemp('synth') / 'synth.db'}"
    generate(url, 1000, quiet=True)
    return url


@pytest.fixture(scope="module")
def synth_server(synth_archive: str) -> Iterator[Server]:
    with serving(synth_archive) as running:
        yield running


def _export(db: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "scraper", "export", "--db", db, "--format", "jsonl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _as_jikan(record: dict[str, Any], *, entry: bool) -> dict[str, Any]:
    """What a stored record must look like through the Jikan API (the test's own mapping)."""
    user = record["user"]
    image = user["image_url"]
    expected = {
        "mal_id": record["mal_id"],
        "url": record["url"],
        "type": record["type"],
        "reactions": record["reactions"] or {},
        "date": record["date"],
        "review": record["review"],
        "score": record["score"],
        "tags": record["tags"],
        "is_spoiler": record["is_spoiler"],
        "is_preliminary": record["is_preliminary"],
        "user": {
            "url": user["url"],
            "username": user["username"],
            "images": {
                "jpg": {"image_url": image},
                "webp": {"image_url": image.replace(".jpg", ".webp") if image else None},
            },
        },
    }
    progress = "episodes_watched" if record["type"] == "anime" else "chapters_read"
    if record[progress] is not None:  # an unknown count is left out, never null
        expected[progress] = record[progress]
    if entry:
        item = record["entry"]
        sizes = ("image_url", "small_image_url", "large_image_url")
        expected["entry"] = {
            "mal_id": item["mal_id"],
            "url": item["url"],
            "title": item["title"],
            "images": {"jpg": dict.fromkeys(sizes), "webp": dict.fromkeys(sizes)},
        }
    return expected


def _walk(server: Server, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every review of a paged endpoint, page by page, checking the pagination."""
    found, page = [], 1
    while True:
        body = server.json(path, page=page, **params)
        found.extend(body["data"])
        pagination = body["pagination"]
        assert pagination["has_next_page"] == (page < pagination["last_visible_page"])
        assert len(body["data"]) == (PAGE if pagination["has_next_page"] else len(body["data"]))
        if not pagination["has_next_page"]:
            return found
        page += 1


# --- Jikan's schema ------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    spec = jikan_openapi()
    if spec is None:
        pytest.skip("no ../shared/jikan-openapi.json to validate against")
    return spec


def _validate(openapi: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    jsonschema.validate(body, json_schema(openapi, schema), cls=jsonschema.Draft7Validator)


def _item_schema(kind: str, with_entry: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"properties": {"user": {"$ref": "#/components/schemas/user_meta"}}, "type": "object"},
        {"$ref": f"#/components/schemas/{kind}_review"},
    ]
    if with_entry:
        parts.append(
            {
                "properties": {"entry": {"$ref": f"#/components/schemas/{kind}_meta"}},
                "type": "object",
                "required": ["entry"],
            }
        )
    return {"allOf": parts}


@pytest.mark.slow
def test_entry_reviews_match_jikans_schema(openapi: dict[str, Any], server: Server) -> None:
    body = server.json("/v4/anime/91234/reviews", preliminary="true", spoilers="true")
    assert len(body["data"]) == 3
    _validate(openapi, openapi["components"]["schemas"]["anime_reviews"], body)
    _validate(openapi, openapi["components"]["schemas"]["pagination"], body)
    assert all("chapters_read" not in r for r in body["data"])
    assert [("episodes_watched" in r) for r in body["data"]] == [
        r["is_preliminary"] for r in body["data"]
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", ["/v4/reviews/anime", "/v4/top/reviews", "/v4/users/Marrow-Finch/reviews"]
)
def test_entry_independent_endpoints_match_jikans_schema(
    openapi: dict[str, Any], server: Server, path: str
) -> None:
    body = server.json(path, preliminary="true", spoilers="true")
    assert body["data"]
    _validate(openapi, openapi["components"]["schemas"]["pagination"], body)
    _validate(openapi, openapi["components"]["schemas"]["reviews_collection"], body)
    for item in body["data"]:
        _validate(openapi, _item_schema(item["type"], True), item)


@pytest.mark.slow  # 1,000 generated reviews behind a second server process
def test_manga_reviews_match_jikans_schema(openapi: dict[str, Any], synth_server: Server) -> None:
    body = synth_server.json("/v4/manga/3/reviews", preliminary="true")
    assert body["data"] and body["pagination"]["has_next_page"]
    _validate(openapi, openapi["components"]["schemas"]["manga_reviews"], body)
    assert all("episodes_watched" not in r for r in body["data"])
    assert all(("chapters_read" in r) == r["is_preliminary"] for r in body["data"])
    recent = synth_server.json("/v4/reviews/manga")
    for item in recent["data"]:
        _validate(openapi, _item_schema("manga", True), item)


# --- the same reviews as `reviews export` -------------------------------------------------


@pytest.mark.slow  # 1,000 generated reviews behind a second server process
def test_every_entry_page_by_page_equals_the_export(
    synth_archive: str, synth_server: Server
) -> None:
    exported = _export(synth_archive, "--sort=-date")
    for kind, mal_id in (("anime", 1), ("anime", 2), ("manga", 3)):
        served = _walk(
            synth_server, f"/v4/{kind}/{mal_id}/reviews", preliminary="true", spoilers="true"
        )
        stored = [r for r in exported if r["entry"]["mal_id"] == mal_id]
        assert len(served) > PAGE
        assert served == [_as_jikan(r, entry=False) for r in stored]


@pytest.mark.slow
def test_fixture_reviews_equal_the_export(server: Server) -> None:
    exported = {r["mal_id"]: r for r in _export(server.db_url)}
    served = server.json("/v4/reviews/anime", preliminary="true", spoilers="true")["data"]
    assert {r["mal_id"] for r in served} == set(exported)
    for review in served:
        assert review == _as_jikan(exported[review["mal_id"]], entry=True)
    record = server.json("/api/reviews/myanimelist/900001")
    assert {k: record[k] for k in exported[900001]} == exported[900001]
    assert record["site"] == "myanimelist" and record["id"] == "900001"
    assert record["rating"] == {"value": 7, "best": 10, "worst": 1}
    assert record["body"] == exported[900001]["review"] and record["source"] == "mal-current"


@pytest.mark.slow  # 1,000 generated reviews behind a second server process
def test_recent_reviews_are_newest_first_and_leave_out_preliminary_and_spoilers(
    synth_archive: str, synth_server: Server
) -> None:
    body = synth_server.json("/v4/reviews/anime", page=2)
    dates = [r["date"] for r in body["data"]]
    assert dates == sorted(dates, reverse=True) and len(dates) == PAGE
    assert not any(r["is_preliminary"] or r["is_spoiler"] for r in body["data"])
    everything = _export(synth_archive, "--type", "anime", "--sort=-date")
    kept = [r for r in everything if not (r["is_preliminary"] or r["is_spoiler"])]
    assert body["pagination"]["last_visible_page"] == -(-len(kept) // PAGE)
    assert [r["mal_id"] for r in body["data"]] == [r["mal_id"] for r in kept[PAGE : 2 * PAGE]]


@pytest.mark.slow
def test_preliminary_and_spoiler_flags(server: Server) -> None:
    default = server.json("/v4/anime/91234/reviews")["data"]
    assert [r["mal_id"] for r in default] == [900002, 900001]
    with_preliminary = server.json("/v4/anime/91234/reviews", preliminary="true")["data"]
    assert [r["mal_id"] for r in with_preliminary] == [900003, 900002, 900001]
    assert with_preliminary[0]["episodes_watched"] == 3
    assert server.json("/v4/anime/91234/reviews", preliminary="false")["data"] == default


@pytest.mark.slow  # 1,000 generated reviews behind a second server process
def test_top_reviews_rank_by_reactions(synth_server: Server) -> None:
    data = _walk(synth_server, "/v4/top/reviews", type="manga")
    weights = [r["reactions"].get("overall", 0) for r in data]
    assert all(r["type"] == "manga" for r in data)
    assert weights[:50] == sorted(weights[:50], reverse=True)


def test_a_former_username_finds_the_user(server: Server) -> None:
    old = server.json("/v4/users/MarrowFinch/reviews")
    new = server.json("/v4/users/marrow-finch/reviews")
    assert old == new
    assert [r["mal_id"] for r in old["data"]] == [910001, 900001]
    assert old["data"][0]["entry"]["mal_id"] == 91299


# --- Jikan's errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v4/anime/91234/reviews", {"page": "0"}, "page"),
        ("/v4/anime/91234/reviews", {"page": "two"}, "page"),
        ("/v4/anime/91234/reviews", {"page": "²"}, "page"),
        ("/v4/anime/91234/reviews", {"page": "9" * 5000}, "page"),
        ("/v4/anime/91234/reviews", {"page": "999999999999"}, "page"),
        ("/v4/anime/91234/reviews", {"preliminary": "maybe"}, "preliminary"),
        ("/v4/reviews/anime", {"spoilers": "2"}, "spoilers"),
        ("/v4/top/reviews", {"type": "novel"}, "type"),
        ("/v4/anime/abc/reviews", {}, "id"),
        ("/v4/anime/²/reviews", {}, "id"),
        ("/v4/anime/91234/reviews", {"as_of": "soon"}, "as_of"),
    ],
)
def test_bad_parameters_are_jikans_400(
    server: Server, path: str, params: dict[str, str], field: str
) -> None:
    response = server.get(path, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["type"] == "ValidationException"
    assert list(body["messages"]) == [field] and body["messages"][field][0]
    assert body["error"].startswith("Invalid or incomplete request")


@pytest.mark.parametrize(
    "path",
    [
        "/v4/anime/1/reviews",
        "/v4/manga/91234/reviews",
        "/v4/users/nobody/reviews",
        "/v4/reviews/1/history",
    ],
)
def test_unknown_ids_are_jikans_404(server: Server, path: str) -> None:
    response = server.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and body["type"] == "BadResponseException"
    assert body["message"] == "Resource does not exist" and body["error"].startswith("404 on ")


def test_unknown_route_is_jikans_not_found(server: Server) -> None:
    response = server.get("/v4/anime/1/pictures")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "type": "HttpException",
        "message": "Not Found",
        "error": None,
    }


def test_past_the_last_page_is_empty(server: Server) -> None:
    body = server.json("/v4/anime/91234/reviews", page=5)
    assert body == {"pagination": {"last_visible_page": 1, "has_next_page": False}, "data": []}


# --- the extras: as_of and history --------------------------------------------------


@pytest.mark.slow
def test_as_of_reads_the_reviews_as_they_were_that_day(server: Server) -> None:
    then = server.json("/v4/anime/91234/reviews", as_of="2021-12-31")["data"]
    assert [r["mal_id"] for r in then] == [900002, 900001]
    first = then[1]
    assert first["score"] == 6 and first["user"]["username"] == "MarrowFinch"
    assert first["reactions"] == {}
    middle = server.json("/v4/anime/91234/reviews", as_of="2022-06")["data"][1]
    assert middle["score"] == 7 and middle["review"] != first["review"]
    now = server.json("/v4/anime/91234/reviews")["data"][1]
    assert now["user"]["username"] == "Marrow-Finch" and now["review"] == middle["review"]
    before = server.json("/v4/anime/91234/reviews", as_of="2020-01-01")
    assert before["data"] == []


@pytest.mark.slow
def test_history_lists_every_capture(server: Server) -> None:
    captures = server.json("/v4/reviews/900001/history")["data"]
    assert [c["observed_at"][:10] for c in captures] == ["2021-03-10", "2022-05-20", "2026-02-14"]
    assert [c["score"] for c in captures] == [6, 7, 7]
    assert [c["helpful_count"] for c in captures] == [12, 40, None]
    assert [c["user"]["username"] for c in captures] == [
        "MarrowFinch",
        "MarrowFinch",
        "Marrow-Finch",
    ]
    assert "review" in captures[1]["changes"] or "body" in captures[1]["changes"]
    assert captures[0]["review"] != captures[1]["review"]
    record = server.json("/api/reviews/myanimelist/900001")
    assert len(record["observations"]) == 3
    assert record["observations"][2]["body"] == record["body"]


# --- a real Jikan client ----------------------------------------------------------


@pytest.mark.slow
def test_jikanpy_reads_reviews_through_the_server(server: Server) -> None:
    from jikanpy import Jikan
    from jikanpy.exceptions import APIException

    jikan = Jikan(selected_base=f"{server.url}/v4")
    entry = jikan.anime(91234, extension="reviews", page=1)
    assert [r["mal_id"] for r in entry["data"]] == [900002, 900001]
    assert entry["pagination"] == {"last_visible_page": 1, "has_next_page": False}
    recent = jikan.reviews(type="anime")
    assert {r["mal_id"] for r in recent["data"]} >= {900001, 900002}
    assert all("entry" in r for r in recent["data"])
    user = jikan.users("MarrowFinch", extension="reviews")
    assert user["data"][-1]["user"]["username"] == "Marrow-Finch"
    top = jikan.top(type="reviews")
    assert [r["reactions"]["overall"] for r in top["data"][:2]] == [104, 104]  # 900001 and copy
    with pytest.raises(APIException) as raised:
        jikan.anime(1, extension="reviews")
    assert raised.value.status_code == 404


# --- the generic API -----------------------------------------------------------


@pytest.mark.slow  # 1,000 generated reviews behind a second server process
def test_generic_api_pages_v2_records_and_describes_itself(synth_server: Server) -> None:
    body = synth_server.json("/api/reviews", q="soundtrack", per_page=7, page=2)
    assert len(body["data"]) == 7 and body["pagination"]["page"] == 2
    for record in body["data"]:
        assert record["site"] == "myanimelist" and "soundtrack" in record["body"].lower()
        assert set(record) >= {"id", "item", "author", "rating", "body", "source", "tags"}
    spec = synth_server.json("/api/openapi.json")
    schema = spec["components"]["schemas"]["record"]
    for record in body["data"]:
        jsonschema.validate(record, json_schema(spec, schema), cls=jsonschema.Draft7Validator)
    assert set(spec["paths"]) == {"/api/reviews", "/api/reviews/{site}/{id}"}
    missing = synth_server.get("/api/reviews/myanimelist/99999999")
    assert missing.status_code == 404 and "error" in missing.json()
