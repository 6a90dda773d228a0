"""Text out of schema.org values: review bodies by the contract's rules, and one-line labels.

A JSON-LD ``reviewBody`` is a string that may hold markup (``<p>``, ``<br>``),
entities (``&#039;``, even ``&amp;#039;`` escaped twice) or both; a microdata or
RDFa body is an element of the page. Both end as the contract's body text
(shared/record-contract.md, "The body text"): rendered as a browser would,
source whitespace collapsed, each ``<br>`` a line break, block elements on
their own lines (paragraphs with a blank line between), entities decoded until
none is left, lines stripped, no more than one blank line in a row.

A string without markup is the author's plain text: its own line breaks are
kept (``"Thanks!\\r\\nGreat recipe"`` is two lines), as they are when the
markup in it is only inline (``<a>``, ``<b>``), since such a string was never
meant to be laid out by a browser alone. Written for this reader alone (a
site of its own has its own rules for its own markup).
"""

from __future__ import annotations

import re
from html import unescape

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.config import SchemaOrgLimits
from scraper.sites._decode import LINE_MARK as BREAK

__all__ = ["inline_text", "node_body", "render_body"]

# Markup that a body or label may really hold. Only known tag names count, so
# plain text such as "x<y" or "I <3 it" is never handed to an HTML parser.
_MARKUP = re.compile(
    r"</?(?:p|br|div|span|b|i|u|s|em|strong|a|ul|ol|li|h[1-6]|blockquote|img|font|sup|sub"
    r"|small|big|hr|table|tbody|thead|tr|td|th|pre|code|q|cite|abbr|mark|del|ins|strike"
    r"|figure|figcaption|section|article|center|dl|dt|dd|wbr|script|style)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
# Tags that lay out lines themselves: with one of them, source newlines are
# source whitespace (as a browser treats them); without, they are the author's.
_LINE_TAGS = re.compile(r"<(?:br|p|div|li|h[1-6]|blockquote|tr|pre|dt|dd)\b", re.IGNORECASE)
_NEWLINE = re.compile(r"\r\n?|\n")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# "&amp;amp;amp;..." must not cost more than the handful of rounds a page needs.
_MAX_DECODE_ROUNDS = SchemaOrgLimits().entity_rounds
# Source whitespace (U+00A0 included, as the contract counts it).
_SPACE_RUN = re.compile(r"[ \t\n\r\f\v\u00a0]+")
_LINE_SPACE_RUN = re.compile(r"[ \t\f\v\u00a0]+")

_NOT_TEXT = "script, style, template, noscript, button, form, select, textarea, iframe, svg"
_NOT_TEXT_TAG = re.compile(
    r"<(?:script|style|template|noscript|button|form|select|textarea|iframe|svg)\b", re.IGNORECASE
)
_PARAGRAPH_TAGS = frozenset(
    [
        "p",
        "blockquote",
        "ul",
        "ol",
        "dl",
        "table",
        "pre",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
    ]
)
_LINE_TAGS_RENDERED = [
    "div",
    "li",
    "dt",
    "dd",
    "tr",
    "section",
    "article",
    "header",
    "footer",
    "figcaption",
    "center",
]
_LAYOUT = ", ".join(["br", *sorted(_PARAGRAPH_TAGS), *_LINE_TAGS_RENDERED])


def decode_entities(text: str) -> str:
    """Return *text* with HTML entities decoded repeatedly until none is left."""
    for _ in range(_MAX_DECODE_ROUNDS):
        if "&" not in text:
            return text
        entities = _ENTITY.findall(text)
        if not entities:
            return text
        if len(entities) == text.count("&"):  # every "&" opens an entity: one call does it
            decoded = unescape(text)
        else:  # "&para" with no ";" stays text, as it is no entity here
            decoded = _ENTITY.sub(lambda match: unescape(match.group(0)), text)
        if decoded == text:
            return text
        text = decoded
    return text


def _finish(text: str) -> str:
    """Return rendered *text* (``BREAK`` marks line breaks) by the contract's rules."""
    text = _SPACE_RUN.sub(" ", text)
    if "&" in text:
        text = _SPACE_RUN.sub(" ", decode_entities(text))
    if BREAK not in text:
        return text.strip(" ")
    text = "\n".join(line.strip(" ") for line in text.split(BREAK))
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n")


def _render_tree(root: LexborNode, markup: str) -> str:
    """Return the rendered text of *root*, a node of a tree this module owns, parsed
    from *markup* (which tells whether there is anything to remove first)."""
    if _NOT_TEXT_TAG.search(markup):
        for element in root.css(_NOT_TEXT):
            element.decompose()
    # One query for every element that lays out lines (their tags are disjoint,
    # so no element comes twice); none is removed, so every node stays valid.
    for element in root.css(_LAYOUT):
        tag = element.tag
        if tag == "br":
            element.replace_with(BREAK)
        elif tag in _PARAGRAPH_TAGS:
            element.insert_before(BREAK + BREAK)
            element.insert_after(BREAK + BREAK)
        else:
            element.insert_before(BREAK)
            element.insert_after(BREAK)
    return _finish(root.text())


def _render_markup(markup: str) -> str:
    if not _LINE_TAGS.search(markup):
        markup = _NEWLINE.sub(BREAK, markup)
    body = LexborHTMLParser(markup).body
    return "" if body is None else _render_tree(body, markup)


def _plain(text: str) -> str:
    if "\n" not in text and "\r" not in text:  # one line, as most reviews are
        return _LINE_SPACE_RUN.sub(" ", text).strip(" ")
    lines = [_LINE_SPACE_RUN.sub(" ", line).strip(" ") for line in _NEWLINE.split(text)]
    joined = "\n".join(lines)
    while "\n\n\n" in joined:
        joined = joined.replace("\n\n\n", "\n\n")
    return joined.strip("\n")


def render_body(value: str) -> str:
    """Return the contract body of a JSON-LD text value (markup rendered, entities decoded)."""
    if "<" in value and _MARKUP.search(value):
        return _render_markup(value)
    decoded = decode_entities(value)
    if decoded is not value and "<" in decoded and _MARKUP.search(decoded):  # escaped twice
        return _render_markup(decoded)
    return _plain(decoded)


def node_body(node: LexborNode) -> str:
    """Return the contract body of a page element (a microdata or RDFa ``reviewBody``).

    The element's HTML is parsed again into a tree of its own, so the page's
    tree is left as it was for every other reader.
    """
    if next(node.iter(include_text=False), None) is None:  # text alone: nothing to lay out
        return _finish(node.text(deep=True))
    markup = node.html or ""
    body = LexborHTMLParser(markup).body
    return "" if body is None else _render_tree(body, markup)


def inline_text(value: str) -> str:
    """Return a one-line label (a name, a title): markup rendered, entities decoded."""
    if "<" in value and _MARKUP.search(value):
        value = _render_markup(value)
    elif "&" in value:
        value = decode_entities(value)
    return " ".join(value.split())
