"""Every policy number lives in ``scraper/config.py``, as a field of a settings object.

A policy number is an upper-case module- or class-level constant whose value is numeric
(a number, arithmetic on numbers, or a tuple/set of them), or a parameter default that
is a number other than 0 and 1. Outside config.py the ones still waiting to move are
listed below by owner (issue 10, item 3), and the list can only shrink: a new one
fails, and so does one that has gone.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
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
    "scraper/store/sqlshell.py:_PG_MAX_TIMEOUT_MS": "PostgreSQL's largest statement_timeout",
    "scraper/sites/_decode.py:_MAX_LABEL": "the longest WHATWG encoding label",
    # Copies of config.py's values where config may not be imported at start-up; a
    # test keeps the two equal.
    "scraper/sites/_limits.py:MAX_NESTING_DEPTH": "config.MAX_NESTING_DEPTH",
    "scraper/sites/_limits.py:DEPTH_SCAN_TAGS": "config.DEPTH_SCAN_TAGS",
    "scraper/store/read.py:_REACTIONS_AT": "a column index in a SELECT",
    "scraper/serve/pages.py:render(code)": "HTTP's 200 OK as the default status",
    "scraper/cli/_table.py:_COLUMN_COST": "a cell's padding and border in the table drawn",
}

#: Policy numbers still outside config.py, each in a module another part owns.
WAITING: set[str] = {
    # `reviews parse` loads cli/parse.py and sites/ but not scraper.config: importing
    # it costs dataclasses and the settings classes, ~14 ms CPU on a ~134 ms start-up
    # (tests/test_parse_cli.py checks it is not loaded). Until config is that light:
    # cli/parse.py's fork pool...
    "scraper/cli/parse.py:_PARALLEL_FROM",
    "scraper/cli/parse.py:_MAX_WORKERS",
    "scraper/cli/parse.py:_CHUNK",
    # ...and sites/: how much of a page is read to decide what it is...
    "scraper/sites/_blocked.py:_SHORT_PAGE_CHARS",
    "scraper/sites/_decode.py:_META_SCAN_BYTES",
    "scraper/sites/mal/text.py:_MAX_DECODE_ROUNDS",
    "scraper/sites/mal/text.py:_DECODED_MAX",
    "scraper/sites/mal/site.py:_summary(limit)",  # problems named in one message
    # ...and the schema.org reader's bounds beside SchemaOrgLimits (config.py).
    "scraper/sites/schemaorg/fields.py:_LIST_LOOK",
    "scraper/sites/schemaorg/identity.py:_KEY_CHARS",
    "scraper/sites/schemaorg/text.py:_MAX_DECODE_ROUNDS",
}


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
    tree = ast.parse(path.read_text(encoding="utf-8"))
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

    yield from visit(ast.parse(path.read_text(encoding="utf-8")).body, "")


def policy_numbers() -> dict[str, str]:
    """Every named number outside config.py, as ``path:Name`` → ``path:line``."""
    found: dict[str, str] = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for file in files:
            path = Path(folder) / file
            relative = path.relative_to(REPO).as_posix()
            if file.endswith(".py") and relative != "scraper/config.py":
                for name, line in [*named_numbers(path), *numeric_defaults(path)]:
                    found[f"{relative}:{name}"] = f"{relative}:{line}"
    return {
        key: where
        for key, where in found.items()
        if key not in NOT_POLICY and f"{key.rpartition('.')[0]}.*" not in NOT_POLICY
    }


def test_no_new_policy_number_outside_config() -> None:
    found = policy_numbers()
    new = sorted(f"{where} {key}" for key, where in found.items() if key not in WAITING)
    assert new == [], "a policy number belongs in scraper/config.py, as a settings field"
    gone = sorted(WAITING - set(found))
    assert gone == [], "moved to config.py: remove it from WAITING"


def test_the_reader_finds_numbers_in_their_usual_shapes(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "A = 3\nB: float = 0.5\n_C = 24 * 3600\nD = frozenset({403, 429})\nE = (1, 2)\n"
        "F = 'text'\nG = True\nlower = 4\nclass K:\n    LIMIT = 1000\n    name = 2\n",
        encoding="utf-8",
    )
    assert [name for name, _ in named_numbers(source)] == ["A", "B", "_C", "D", "E", "K.LIMIT"]
    source.write_text(
        "def f(a, b=2, *, c=0.5, d=1, e=None, g=-3):\n    pass\n"
        "class K:\n    def m(self, n=0, top=20):\n        pass\n",
        encoding="utf-8",
    )
    found = [name for name, _ in numeric_defaults(source)]
    assert found == ["f(b)", "f(c)", "f(g)", "K.m(top)"]
