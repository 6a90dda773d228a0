"""Review body text: what a browser renders, then with entities fully decoded.

The rules are the record contract's (shared/record-contract.md, "The body
text"): source whitespace collapses to one space, only ``<br>`` breaks a line,
entities left after parsing are decoded again until none is left (old reviews
were escaped twice: ``Ed&amp;rsquo;s``), lines are stripped and runs of blank
lines shrink to one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from selectolax.lexbor import LexborNode

__all__ = ["body_text", "clean_inline", "decode_entities", "normalise_body"]

# Source whitespace that renders as a single space (U+00A0 included: the
# contract counts non-breaking spaces as plain whitespace).
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_LINE_EDGES = re.compile(r"[ \t\u00a0]*\n[ \t\u00a0]*")
_BLANK_RUNS = re.compile(r"\n{3,}")
# Named or numeric references with their semicolon. Requiring the semicolon
# keeps ``?a=1&para=2`` in a quoted URL from turning into ``¶=2``.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# No page escapes more than a handful of times; the bound guards a pathological
# input like ``&amp;amp;amp;...`` from costing more than it must.
_MAX_DECODE_ROUNDS = 16

#: Decides whether an element inside a body is chrome to leave out entirely.
SkipRule = Callable[[LexborNode], bool]


def decode_entities(text: str) -> str:
    """Return *text* with HTML entities decoded repeatedly until none is left."""
    for _ in range(_MAX_DECODE_ROUNDS):
        if "&" not in text:
            break
        decoded = _ENTITY.sub(lambda match: html.unescape(match.group(0)), text)
        if decoded == text:
            break
        text = decoded
    return text


def clean_inline(text: str) -> str:
    """Return a one-line label/name: entities decoded, whitespace collapsed, stripped."""
    return _SPACES.sub(" ", decode_entities(_SPACES.sub(" ", text))).strip()


def normalise_body(raw: str) -> str:
    """Return the contract body from rendered text whose only newlines are ``<br>``s.

    *raw* still holds source whitespace inside its lines; newlines mark line
    breaks. Decoding happens before the final collapse because a decoded
    ``&amp;nbsp;`` is whitespace too.
    """
    lines = [_SPACES.sub(" ", line) for line in raw.split("\n")]
    text = decode_entities("\n".join(lines))
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _collect(node: LexborNode, skip: SkipRule, out: list[str]) -> None:
    # Iterative walk: review bodies can nest formatting deeply and recursion
    # would cost a Python frame per level on a hot path.
    stack: list[LexborNode] = [node]
    while stack:
        current = stack.pop()
        if current.is_text_node:
            out.append(_SPACES.sub(" ", current.text_content or ""))
            continue
        tag = current.tag
        if tag == "br":
            out.append("\n")
            continue
        if tag in ("script", "style", "template", "-comment") or skip(current):
            continue
        children = list(current.iter(include_text=True))
        children.reverse()
        stack.extend(children)


def body_text(node: LexborNode, skip: SkipRule) -> str:
    """Return the contract body text of *node*, leaving out elements *skip* accepts."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        _collect(child, skip, parts)
    return normalise_body("".join(parts))
