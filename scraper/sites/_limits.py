"""Bounds on the work one page may cost, checked before the HTML parser sees it.

The C parser's work grows with the number of tags times the nesting depth:
100,000 nested ``<div>`` in a 500 KB page keep it busy for a minute. Real review
pages nest about 20 deep; browsers stop nesting at 512 (Blink's tree builder).
``check_depth`` estimates the depth and refuses a page past ``MAX_NESTING_DEPTH``
as "page too deep". The estimate follows the tags with a stack, as the HTML
standard's tree builder does in outline (see ``nesting_depth``), and stops once
past the limit, so a hostile page costs a few milliseconds.

A page with at most ``DEPTH_SCAN_TAGS`` tags is not scanned: however it nests, it
costs the parser a fraction of a second, while the scan would cost a real page
(4,000 tags, 3 ms to parse) as much again.
"""

from __future__ import annotations

import re

from scraper.config import DEPTH_SCAN_TAGS, MAX_NESTING_DEPTH
from scraper.errors import ParseError

__all__ = ["DEPTH_SCAN_TAGS", "MAX_NESTING_DEPTH", "check_depth", "nesting_depth"]


#: Elements with no end tag, and elements a new one of which closes the last
#: (``<p>`` in ``<p>``, ``<li>`` in ``<li>``, table parts): they add no depth.
_FLAT = frozenset(
    b"area base br col embed hr img input keygen link meta param source track wbr "
    b"basefont bgsound frame image menuitem "
    b"p li dd dt option optgroup rb rp rt rtc tr td th tbody thead tfoot caption colgroup "
    b"html head body".split()
)
#: The HTML standard's "special" elements: an end tag of another element never
#: closes one of these (``<span><div></span>`` leaves the div open).
_SPECIAL = frozenset(
    b"address applet article aside blockquote button center details dialog dir div dl "
    b"fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup listing main "
    b"marquee menu nav object ol pre search section select summary table template ul "
    b"svg math".split()
)
#: Comments, doctypes, and elements whose content the parser reads as text.
_NOT_TAGS = re.compile(
    rb"<!--.*?(?:-->|\Z)|<[!?][^>]*>?"
    rb"|<(script|style|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext)"
    rb"(?=[\s/>]).*?(?:</\1\s*>|\Z)",
    re.DOTALL,
)
#: A tag ends at its ">", or where the next one starts: every match stops at the next
#: "<", so a page of "<a<a<a..." with no ">" costs one pass, not one pass per "<".
_TAG = re.compile(rb"<(/?)([a-z][^\s/<>]*)[^<>]*?(/?)(?:>|(?=<)|\Z)")


def nesting_depth(html: bytes | str, *, limit: int = MAX_NESTING_DEPTH) -> int:
    """Return how deep *html* nests, as the parser would build it give or take a
    few elements, or any value above *limit* once it is deeper (the work stops).

    Tags are followed with a stack as the HTML standard's tree builder does, in
    outline: void and self-replacing elements (``<br>``, ``<p>``, ``<li>``) add no
    depth, an end tag closes its element and those opened inside it, unless one of
    them is "special" and the end tag's element is not, and a stray end tag is
    ignored. Comments, ``<script>`` and other raw-text bodies are skipped, and
    ``<path/>`` is closed only inside SVG or MathML.
    """
    data = html.encode("utf-8", "replace") if isinstance(html, str) else html
    data = _NOT_TAGS.sub(b"", data.lower())
    stack: list[bytes] = []
    where: dict[bytes, list[int]] = {}  # each open element's places in the stack
    specials: list[int] = []  # the places of the open special elements
    deepest = 0
    for tag in _TAG.finditer(data):
        closing, name, self_closed = tag.groups()
        if name in _FLAT:
            continue
        if not closing:
            if self_closed and (where.get(b"svg") or where.get(b"math")):
                continue
            where.setdefault(name, []).append(len(stack))
            if name in _SPECIAL:
                specials.append(len(stack))
            stack.append(name)
            if len(stack) > deepest:
                deepest = len(stack)
                if deepest > limit:
                    break
            continue
        places = where.get(name)
        if not places or (name not in _SPECIAL and specials and specials[-1] > places[-1]):
            continue  # nothing to close, or a special element in the way: ignored
        top = places[-1]
        while len(stack) > top:
            gone = stack.pop()
            where[gone].pop()
            if specials and specials[-1] == len(stack):
                specials.pop()
    return deepest


def _tag_count(html: bytes | str) -> int:
    """Return how many "<" *html* holds: for bytes, the count a deletion makes, as
    ``bytes.replace`` finds each with memchr, three times faster on a real page than
    ``bytes.count``'s byte-by-byte loop."""
    if isinstance(html, str):
        return html.count("<")
    return len(html) - len(html.replace(b"<", b""))


def check_depth(html: bytes | str, url: str | None, *, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raise ParseError ("page too deep") when *html* nests deeper than *limit*.

    Pages with at most ``DEPTH_SCAN_TAGS`` (or *limit*) tags pass unscanned.
    """
    if _tag_count(html) <= max(limit, DEPTH_SCAN_TAGS):
        return
    if nesting_depth(html, limit=limit) > limit:
        raise ParseError(
            f"page too deep: elements nested more than {limit} levels "
            "(MAX_NESTING_DEPTH); not parsed",
            url=url,
        )
