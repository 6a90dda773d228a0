"""Every policy number lives in ``scraper/config.py``, as a field of a settings object.

A policy number is an upper-case module- or class-level constant whose value is numeric
(a number, arithmetic on numbers, or a tuple/set of them), a parameter default that is
a number other than 0 and 1, or such a number written straight into a call: a keyword
argument (``maxsize=256``) or a wait (``time.sleep(0.5)``). None is left outside
config.py but the facts of formats and protocols listed in ``NOT_POLICY``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "scraper"

#: Named numbers that are facts of a format or protocol, not choices (never to move).
NOT_POLICY = {
    "scraper/cli/__init__.py:ExitCode.*": "the exit codes: a documented contract",
    "scraper/cli/_common.py:HelpFormatter.__init__(indent_increment)": "argparse's own",
    "scraper/cli/_common.py:HelpFormatter.__init__(max_help_position)": "argparse's own",
    "scraper/fetch/client.py:_REDIRECTS": "the statuses HTTP defines as redirects",
    "scraper/jobs/schedule.py:_FIELD_MAX": "cron's field ranges",
    "scraper/sites/mal/v1.py:BEST_SCORE": "MyAnimeList's rating scale",
    "scraper/sites/mal/v1.py:WORST_SCORE": "MyAnimeList's rating scale",
    "scraper/store/codec.py:DIGEST_SIZE": "the size of a sha256 digest",
    "scraper/store/ingest.py:_CAPTURE_LOCK_SPACE": "an advisory lock namespace",
    "scraper/store/migrate.py:_PG_MIGRATION_LOCK": "an advisory lock id",
    "scraper/cli/_common.py:_MAX_INT": "the largest 64-bit integer",
    "scraper/store/read.py:_MAX_ID": "the largest 64-bit integer",
    "scraper/store/ftsbatch.py:_MAX_ROWID": "SQLite's largest rowid",
    "scraper/store/sqlshell.py:_PG_MAX_TIMEOUT_MS": "PostgreSQL's largest statement_timeout",
    "scraper/sites/_decode.py:_MAX_LABEL": "the longest WHATWG encoding label",
    "scraper/store/read.py:_REACTIONS_AT": "a column index in a SELECT",
    "scraper/serve/pages.py:render(code)": "HTTP's 200 OK as the default status",
    "scraper/cli/_table.py:_COLUMN_COST": "a cell's padding and border in the table drawn",
    # Numbers written into calls.
    "scraper/cli/datasette.py:json.dumps(indent)": "how the printed metadata is indented",
    "scraper/export/warcframes.py:zlib.decompressobj(wbits)": "zlib's code for gzip framing",
    "scraper/fetch/client.py:RobotsFile(status)": "HTTP's 404: robots.txt not found",
    "scraper/fetch/client.py:HTTPStatusError(status)": "HTTP's 304 Not Modified",
    "scraper/serve/api.py:_param(maximum)": "the 1-10 rating scale the API documents",
    "scraper/store/authors.py:hashlib.blake2b(digest_size)": "a 64-bit key's size",
    "scraper/store/parsing.py:pickle.dumps(protocol)": "the pickle format's version",
    "scraper/store/read.py:timedelta(days)": "a month is at most 31 days",
    "scraper/schema/migrations/versions/0001_initial.py:sa.String(length)": (
        "a column's width in a migration already run: frozen history"
    ),
    "scraper/schema/migrations/versions/0007_fts_automerge.py:_AUTOMERGE": (
        "what a migration already run set: frozen history (a test checks StoreSettings)"
    ),
    "scraper/schema/migrations/versions/0007_fts_automerge.py:_CRISISMERGE": (
        "what a migration already run set: frozen history (a test checks StoreSettings)"
    ),
    "scraper/schema/migrations/versions/0007_fts_automerge.py:_FTS5_DEFAULTS": (
        "FTS5's own defaults"
    ),
}


def syntax(path: Path) -> ast.Module:
    """*path*'s syntax tree, parsed once for the three readers below (``policy_numbers``
    forgets each when it is done with it: trees kept for the run would slow every later
    garbage collection)."""
    return _parsed(path.read_text(encoding="utf-8"))


@cache
def _parsed(source: str) -> ast.Module:
    return ast.parse(source)


def is_number(node: ast.expr) -> bool:
    """A numeric literal, arithmetic on them, or a tuple/set/frozenset of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return is_number(node.operand)
    if isinstance(node, ast.BinOp):
        return is_number(node.left) and is_number(node.right)
    if isinstance(node, ast.Tuple | ast.Set | ast.List):
        return bool(node.elts) and all(is_number(element) for element in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in {"frozenset", "set", "tuple"} and all(map(is_number, node.args))
    return False


def named_numbers(path: Path) -> Iterator[tuple[str, int]]:
    """``Name`` / ``Class.NAME`` of the upper-case constants with a numeric value."""
    tree = syntax(path)
    scopes: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    scopes += [(f"{node.name}.", node.body) for node in tree.body if isinstance(node, ast.ClassDef)]
    for prefix, body in scopes:
        for statement in body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                name = getattr(target, "id", "")
                if name.lstrip("_").isupper() and is_number(value):
                    yield f"{prefix}{name}", statement.lineno


def numeric_defaults(path: Path) -> Iterator[tuple[str, int]]:
    """``Class.function(parameter)`` of the parameters whose default is a number other
    than 0 or 1 (those start counts and flags; any other is a choice someone made)."""

    def visit(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, int]]:
        for node in body:
            if isinstance(node, ast.ClassDef):
                yield from visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                positional = [*arguments.posonlyargs, *arguments.args]
                with_defaults = positional[len(positional) - len(arguments.defaults) :]
                pairs = [
                    *zip(with_defaults, arguments.defaults, strict=True),
                    *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True),
                ]
                for argument, default in pairs:
                    if default is None or not is_number(default):
                        continue
                    if not (isinstance(default, ast.Constant) and default.value in (0, 1)):
                        yield f"{prefix}{node.name}({argument.arg})", default.lineno
                yield from visit(node.body, f"{prefix}{node.name}.")

    yield from visit(syntax(path).body, "")


def numbers_in_calls(path: Path) -> Iterator[tuple[str, int]]:
    """``function(keyword)`` of the keyword arguments given a number other than 0 or 1,
    and ``time.sleep(...)`` of waits written with a number."""
    for node in ast.walk(syntax(path)):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            value = keyword.value
            if is_number(value) and not (isinstance(value, ast.Constant) and value.value in (0, 1)):
                yield f"{ast.unparse(node.func)}({keyword.arg})", node.lineno
        called = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if isinstance(node.func, ast.Name):
            called = node.func.id
        if called == "sleep" and any(
            isinstance(part, ast.Constant) and is_number(part)
            for argument in node.args
            for part in ast.walk(argument)
        ):
            yield f"{ast.unparse(node.func)}()", node.lineno


def policy_numbers() -> dict[str, str]:
    """Every named number outside config.py, as ``path:Name`` → ``path:line``."""
    found: dict[str, str] = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for file in files:
            path = Path(folder) / file
            relative = path.relative_to(REPO).as_posix()
            if file.endswith(".py") and relative != "scraper/config.py":
                found_here = [*named_numbers(path), *numeric_defaults(path)]
                for name, line in [*found_here, *numbers_in_calls(path)]:
                    found[f"{relative}:{name}"] = f"{relative}:{line}"
                _parsed.cache_clear()  # one module's tree at a time
    return {
        key: where
        for key, where in found.items()
        if key not in NOT_POLICY and f"{key.rpartition('.')[0]}.*" not in NOT_POLICY
    }


def test_no_policy_number_outside_config() -> None:
    found = policy_numbers()
    outside = sorted(f"{where} {key}" for key, where in found.items())
    assert outside == [], "a policy number belongs in scraper/config.py, as a settings field"


def test_the_reader_finds_numbers_in_their_usual_shapes(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "A = 3\nB: float = 0.5\n_C = 24 * 3600\nD = frozenset({403, 429})\nE = (1, 2)\n"
        "F = 'text'\nG = True\nlower = 4\nclass K:\n    LIMIT = 1000\n    name = 2\n",
        encoding="utf-8",
    )
    assert [name for name, _ in named_numbers(source)] == ["A", "B", "_C", "D", "E", "K.LIMIT"]


def test_the_reader_finds_numbers_written_into_calls(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "import time\nfrom functools import lru_cache\n"
        "@lru_cache(maxsize=256)\ndef f(x): return x\n"
        "time.sleep(0.05 * x)\ntime.sleep(pause)\nopen(name, buffering=1)\n"
        "g(limit=n, size=4 * 1024)\n",
        encoding="utf-8",
    )
    found = [name for name, _ in numbers_in_calls(source)]
    assert sorted(found) == ["g(size)", "lru_cache(maxsize)", "time.sleep()"]
    source.write_text(
        "def f(a, b=2, *, c=0.5, d=1, e=None, g=-3):\n    pass\n"
        "class K:\n    def m(self, n=0, top=20):\n        pass\n",
        encoding="utf-8",
    )
    found = [name for name, _ in numeric_defaults(source)]
    assert found == ["f(b)", "f(c)", "f(g)", "K.m(top)"]
