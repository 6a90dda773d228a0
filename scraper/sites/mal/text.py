"""Review body text: what a browser renders, then with entities fully decoded.

The rules are the record contract's (shared/record-contract.md, "The body
text"): source whitespace collapses to one space, only ``<br>`` breaks a line,
entities left after parsing are decoded again until none is left (old reviews
were escaped twice: ``Ed&amp;rsquo;s``), lines are stripped and runs of blank
lines shrink to one.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.config import MAL_ENTITY_CACHE, MAL_ENTITY_PROBES, MAL_ENTITY_ROUNDS
from scraper.sites._decode import LINE_MARK as BREAK

__all__ = ["body_text", "clean_inline", "decode_entities", "normalise_body"]

# Source whitespace that renders as a single space (U+00A0 included: the
# contract counts non-breaking spaces as plain whitespace). Other Unicode
# spaces (U+2003...) are text, not source whitespace, and are kept. Each is
# first turned into " " with str.replace (a memchr-speed scan when absent),
# then each run of spaces, found with str.find, shrinks to one: about five
# times faster than str.split()/join, which builds one string per word.
_SOURCE_SPACES = "\n\t\r\f\v\u00a0"
_SPACE_RUN = re.compile("  +")
# Named or numeric references with their semicolon. Requiring the semicolon
# keeps ``?a=1&para=2`` in a quoted URL from turning into ``¶=2``.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")

#: ``<br>``'s tag id in the parser, and the mark put in its place as the parser
#: takes it (UTF-8: a ``str`` would be encoded again for every line).
_BR_TAG_ID = LexborHTMLParser("<br>").css_first("br").tag_id  # type: ignore[union-attr]
_BREAK_BYTES = BREAK.encode()

# Never review text wherever they sit: code, and form controls (Helpful /
# spoiler buttons of older pages).
_NOT_TEXT = "script, style, template, noscript, button, form, select, textarea"


#: Decoded references, by their text: a page repeats the same few (&rsquo;,
#: &quot;, &amp;) hundreds of times. Bounded (``MAL_ENTITY_CACHE``) so odd pages
#: cannot grow it.
_DECODED: dict[str, str] = {}


def _decode_reference(match: re.Match[str]) -> str:
    reference = match.group(0)
    value = _DECODED.get(reference)
    if value is None:
        # Imported here: most pages need no second decoding, and the entity
        # table costs start-up time every `reviews parse` would pay.
        from html import unescape

        value = unescape(reference)
        if len(_DECODED) < MAL_ENTITY_CACHE:
            _DECODED[reference] = value
    return value


def _has_reference(text: str) -> bool:
    """Return True when a reference starts at one of *text*'s ``&``.

    A body holds a few ``&`` (``Black & White``), often none that starts a
    reference: looking at each is far cheaper than the regex's scan of the
    whole text, which only a body with a reference left then pays (and one
    with more than ``MAL_ENTITY_PROBES`` of them, from there on).
    """
    at = text.find("&")
    for _ in range(MAL_ENTITY_PROBES):
        if at < 0:
            return False
        if _ENTITY.match(text, at) is not None:
            return True
        at = text.find("&", at + 1)
    return at >= 0 and _ENTITY.search(text, at) is not None


def decode_entities(text: str) -> str:
    """Return *text* with HTML entities decoded repeatedly until none is left."""
    if not _has_reference(text):
        return text
    for _ in range(MAL_ENTITY_ROUNDS):
        decoded = _ENTITY.sub(_decode_reference, text)
        if decoded == text or "&" not in decoded:
            return decoded
        text = decoded
    return text


def clean_inline(text: str) -> str:
    """Return a one-line label/name: entities decoded, whitespace collapsed, stripped."""
    text = " ".join(text.split())
    return " ".join(decode_entities(text).split()) if "&" in text else text


def _collapse(text: str) -> str:
    """Return *text* with each run of source whitespace as one space."""
    for space in _SOURCE_SPACES:
        if space in text:
            text = text.replace(space, " ")
    # Runs are few (a dozen per body): str.find jumps to each far faster
    # than the regex engine scans for one, and the regex only measures it.
    run = text.find("  ")
    if run < 0:
        return text
    pieces = []
    start = 0
    while run >= 0:
        pieces.append(text[start : run + 1])
        spaces = _SPACE_RUN.match(text, run)  # always matches: text[run:] starts "  "
        start = spaces.end() if spaces is not None else run + 2
        run = text.find("  ", start)
    pieces.append(text[start:])
    return "".join(pieces)


def normalise_body(raw: str, line_break: str = "\n") -> str:
    """Return the contract body from rendered text.

    In *raw*, *line_break* marks each ``<br>``; every other whitespace run is
    source whitespace and collapses to one space. Entities are decoded first
    (whitespace never sits inside a reference, so this finds the same ones),
    which lets one collapse also take in a decoded ``&amp;nbsp;``.
    Each pass over the text costs about as much as the rest together, so
    there are few: the decode (only when an ``&`` is left), the collapse, the
    split into lines, and a join; blank lines are counted in the list.
    """
    text = raw.replace(line_break, BREAK) if line_break != BREAK else raw
    if "&" in text:
        text = decode_entities(text)
    text = _collapse(text)
    if BREAK not in text:
        return text.strip(" ")
    lines = [line.strip(" ") for line in text.split(BREAK)]
    if lines.count("") > 1:  # two blank lines in a row leave one
        kept: list[str] = []
        blank = False
        for line in lines:
            if line or not blank:
                kept.append(line)
            blank = not line
        lines = kept
    return "\n".join(lines).strip("\n")


def body_text(node: LexborNode, chrome: str | None = None) -> str:
    """Return the contract body text of *node*.

    Elements matching the CSS selector *chrome* (and scripts, styles) are
    removed from the tree: this consumes *node*, so read every other field
    from it before. Line breaks are marked in the tree and the text read
    by the parser in one call, which is many times faster than walking nodes
    from Python.
    """
    # One query for both: each walk of the body costs as much as the rest of
    # the work on it. A <br> inside chrome is marked, then removed with it.
    selector = f"br, {_NOT_TEXT}, {chrome}" if chrome else f"br, {_NOT_TEXT}"
    for element in node.css(selector):
        if element.tag_id == _BR_TAG_ID:  # an int: .tag builds a string each time
            element.replace_with(_BREAK_BYTES)
        else:
            element.decompose()
    return normalise_body(node.text(), BREAK)
