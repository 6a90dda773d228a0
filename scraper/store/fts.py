"""Full-text search over review bodies, the same on SQLite and PostgreSQL.

SQLite keeps an FTS5 table ``reviews_fts`` (external content on ``reviews.body``,
kept in step by triggers; the ``<table>_fts`` name is what Datasette and
sqlite-utils look for). PostgreSQL keeps a generated tsvector column
``reviews.body_fts`` (``PG_BODY_VECTOR``) with a GIN index. Both are created by
migration 0002 (``schema/migrations/versions/0002_fulltext.py``; revision 0005 gives
``body_fts`` a cheaper expression of the same vectors); the names here must match
them (a test checks). How SQLite's index merges its segments is set in the archive
by revision 0007 (``StoreSettings.sqlite_fts_automerge``): it changes what a write
costs, never what a search finds.

Both engines are configured to tokenize alike: split on anything that is not a
letter or digit, fold case, no stemming, no accent removal (the ``simple``
configuration on PostgreSQL, ``unicode61 remove_diacritics 0`` on SQLite). The
user's ``--search`` text is tokenized here the same way and turned into each
engine's query, so plain words (all must occur) and "quoted phrases" (the words
in that order) give the same reviews on both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scraper.errors import UsageError

__all__ = [
    "FTS_INSERT_TRIGGER",
    "FTS_TABLE",
    "PG_BODY_VECTOR",
    "PG_FTS_COLUMN",
    "PG_FTS_INDEX",
    "PG_TS_CONFIG",
    "SearchTerms",
    "parse_search",
]

FTS_TABLE = "reviews_fts"
#: The SQLite trigger that indexes each new review (``scraper.store.ftsbatch`` defers it).
FTS_INSERT_TRIGGER = "reviews_fts_ai"
PG_FTS_INDEX = "ix_reviews_body_fts"
#: The generated tsvector column on PostgreSQL (migration 0002 defines it as below).
PG_FTS_COLUMN = "body_fts"
#: No stemming, no stop words: a word matches itself, as FTS5's unicode61 does.
PG_TS_CONFIG = "simple"
#: What ``body_fts`` holds. PostgreSQL's own parser keeps "8.5", "example.com" and
#: "well-written" whole; FTS5 cuts them at the punctuation. Replacing punctuation
#: (ASCII, Latin-1, general and CJK punctuation, full-width forms) with spaces
#: first makes both engines see the same words. Whitespace is left as it is: the
#: parser reads a run of it as one space, and a regexp match at every gap between
#: words was a third of the vector's cost (revision 0005).
PG_BODY_VECTOR = (
    f"to_tsvector('{PG_TS_CONFIG}'::regconfig, regexp_replace(body, "
    r"'[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e\u00a0-\u00bf\u00d7\u00f7"
    r"\u2000-\u206f\u3000-\u303f\uff01-\uff0f]+', ' ', 'g'))"
)

# A token is a run of letters and digits, which is how both tokenizers cut text
# ("don't" -> don, t; "well-written" -> well, written).
_TOKEN = re.compile(r"[^\W_]+")
_PHRASE_OR_WORD = re.compile(r'"([^"]*)"?|([^"\s]+)')


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """The user's search text cut into phrases; a plain word is a one-word phrase.

    A review matches when every phrase occurs in its body.
    """

    phrases: tuple[tuple[str, ...], ...]

    def sqlite_match(self) -> str:
        """Return the FTS5 MATCH expression (each phrase quoted, implicitly ANDed)."""
        return " ".join('"' + " ".join(words) + '"' for words in self.phrases)

    def postgres_tsquery(self) -> str:
        """Return a ``to_tsquery`` string: phrases with ``<->``, joined with ``&``."""
        parts = []
        for words in self.phrases:
            quoted = [f"'{word}'" for word in words]  # tokens hold no quote characters
            parts.append(quoted[0] if len(quoted) == 1 else "(" + " <-> ".join(quoted) + ")")
        return " & ".join(parts)


def parse_search(text: str, argument: str = "--search") -> SearchTerms:
    """Cut *text* into words and "quoted phrases" (lower-cased tokens).

    Returns the terms; raises UsageError naming *argument* when nothing
    searchable is left (empty text, or punctuation only) or a quote is not closed.
    """
    if text.count('"') % 2:
        raise UsageError(f"{argument}: {text!r} is malformed: a quote is not closed")
    phrases: list[tuple[str, ...]] = []
    for match in _PHRASE_OR_WORD.finditer(text):
        chunk = match.group(1) if match.group(1) is not None else match.group(2)
        words = tuple(token.lower() for token in _TOKEN.findall(chunk))
        if words:
            phrases.append(words)
    if not phrases:
        raise UsageError(f"{argument}: {text!r} has no word to search for")
    return SearchTerms(tuple(phrases))
