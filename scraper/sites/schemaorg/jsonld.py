"""JSON-LD script blocks into plain JSON values, forgiving the breakage real pages ship.

Each ``<script type="application/ld+json">`` is read on its own, so one broken
block never loses another. A block that ``json.loads`` refuses is repaired
once, leniently, for what generators and hand edits really get wrong: HTML
comments or CDATA markers around the JSON, JavaScript ``/* */`` and ``//``
comments inside it (hand-edited theme templates), raw newlines and control
characters inside strings, trailing commas, several objects back to back (or
separated by commas or semicolons), a stray ``;`` at the end, a whole block
HTML-escaped (``{&quot;@type&quot;: ...}``). A block still
unreadable after that is skipped and named in the page's problem.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, NamedTuple

from selectolax.lexbor import LexborNode

__all__ = ["Block", "read_block"]

_WRAPPERS = re.compile(r"<!--|-->|//\s*<!\[CDATA\[|//\s*\]\]>|<!\[CDATA\[|\]\]>")
# A JSON string, or a comma that only closes nothing (before } or ]).
_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*"|,(\s*[}\]])', re.DOTALL)
# A JSON string (kept: "https://..." holds a "//"), or a JavaScript comment (dropped).
_JS_COMMENT = re.compile(r'("(?:[^"\\]|\\.)*")|/\*.*?\*/|//[^\n]*', re.DOTALL)
_BETWEEN = " \t\r\n,;"
_ESCAPED_QUOTES = ("&quot;", "&#34;", "&#x22;", "&#X22;")
_DECODER = json.JSONDecoder(strict=False)


class Block(NamedTuple):
    """What one script block gave: its values, or why it gave none."""

    values: list[Any]
    problem: str | None = None
    iri_keys: bool = False  # some property name is an IRI or CURIE ("schema:name")


# A JSON string followed by a colon is a key; one with a colon inside is an IRI
# or a CURIE. Most pages have none, which spares looking at every key.
_IRI_KEY = re.compile(r'"[A-Za-z][\w+.-]*:[^"]{0,200}"\s*:')


def read_block(script: LexborNode, number: int, max_chars: int) -> Block:
    """Return the JSON values of one JSON-LD script element (never raises)."""
    text = script.text(deep=True)
    if len(text) > max_chars:
        return Block([], f"JSON-LD block {number} skipped: {len(text)} characters is too long")
    stripped = text.strip()
    if not stripped:
        return Block([])
    iri_keys = _IRI_KEY.search(stripped) is not None
    try:
        return Block([json.loads(stripped)], None, iri_keys)
    except RecursionError:
        return Block([], f"JSON-LD block {number} skipped: nested too deeply")
    except ValueError as error:
        first_error = error
    try:
        values, whole = _lenient(stripped)
    except RecursionError:
        return Block([], f"JSON-LD block {number} skipped: nested too deeply")
    except ValueError:
        values, whole = [], False
    if values:
        problem = None if whole else f"JSON-LD block {number} read in part: the rest is broken"
        return Block(values, problem, iri_keys)
    reason = "unreadable JSON"
    if isinstance(first_error, json.JSONDecodeError):
        where = f"line {first_error.lineno} column {first_error.colno}"
        reason = f"unreadable JSON ({first_error.msg} at {where})"
    return Block([], f"JSON-LD block {number} skipped: {reason}")


def _lenient(text: str) -> tuple[list[Any], bool]:
    """Return the values of *text* after the repairs in the module docstring, and
    whether that was all of it (False: what follows the values is broken)."""
    text = _WRAPPERS.sub("", text)
    head = text[:200]
    if '"' not in head and any(quote in head for quote in _ESCAPED_QUOTES):  # all escaped
        text = html.unescape(text)
    if "/*" in text or "//" in text:  # "//" is mostly inside URLs, which stay
        text = _JS_COMMENT.sub(lambda match: match.group(1) or "", text)
    text = _TRAILING_COMMA.sub(lambda match: match.group(1) or match.group(0), text)
    values: list[Any] = []
    position = 0
    end = len(text)
    while True:
        while position < end and text[position] in _BETWEEN:
            position += 1
        if position >= end:
            return values, True
        try:
            value, position = _DECODER.raw_decode(text, position)
        except ValueError:
            if values:  # what came before the breakage is still good
                return values, False
            raise
        values.append(value)
