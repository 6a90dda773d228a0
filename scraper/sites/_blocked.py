"""Recognise block, captcha and "access denied" pages, whatever site sent them.

Sites and CDNs in front of them answer a refused client with a page of their
own, often with status 200. Such a page must never pass for "no reviews here",
or the crawler would record an empty success and move on.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from scraper.config import BLOCK_PAGE_MAX_CHARS

__all__ = ["block_reason"]

#: Phrases of refusal and challenge pages (matched on lower-cased text).
BLOCK_PHRASES = (
    "access denied",
    "are you a robot",
    "verify you are human",
    "confirm you are a person",
    "unusual traffic",
    "too many requests",
    "request blocked",
    "attention required",
    "just a moment",
    "rate limit",
)
#: Words that mark a challenge only in a title or heading: ordinary pages say
#: "protected by reCAPTCHA" in their footer.
_HEADLINE_ONLY = ("captcha", "forbidden")

#: Elements only challenge pages carry.
BLOCK_ELEMENTS = (
    'form[action*="captcha"], div.g-recaptcha, div.h-captcha, iframe[src*="captcha"], '
    "#challenge-form, #cf-wrapper, #challenge-running"
)


_HEADLINES = "title, h1, h2"


def block_reason(tree: LexborHTMLParser) -> str | None:
    """Return why *tree* looks like a block/challenge page, or None when it does not."""
    if tree.css_first(BLOCK_ELEMENTS) is not None:
        return "a captcha / challenge form"
    headlines = " ".join(node.text() for node in tree.css(_HEADLINES)).lower()
    for phrase in BLOCK_PHRASES + _HEADLINE_ONLY:
        if phrase in headlines:
            return f"a page titled {phrase!r}"
    body = tree.body
    text = body.text(separator=" ") if body is not None else ""
    if len(text) < BLOCK_PAGE_MAX_CHARS:
        lowered = " ".join(text.split()).lower()
        for phrase in BLOCK_PHRASES:
            if phrase in lowered:
                return f"a short page saying {phrase!r}"
    return None
