"""Contract records as JSON text, fast: what ``json.dumps(record, ensure_ascii=False)``
returns, with the body (most of a record's bytes, printed once as v2 ``body`` and,
for a site that keeps its own copy, once more as v1 ``review``) escaped once.

Shared by ``reviews parse`` and the JSON Lines export; nothing heavy is imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

__all__ = ["json_bytes", "json_string", "record_bytes", "record_text"]

#: One encoder for every record (``json.dumps`` with options builds one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
#: Stands in for the body while the rest of a record is encoded. A NUL never
#: survives parsing (the parser turns it into U+FFFD), so no field can hold it;
#: should one hold it all the same, the record is encoded the slow, exact way.
_BODY_SLOT = "\x00body\x00"
_BODY_SLOT_JSON = _ENCODE(_BODY_SLOT)
_BODY_SLOT_BYTES = _BODY_SLOT_JSON.encode()
#: What ``json.dumps`` escapes besides ``"``, ``\\`` and the line feed is the other
#: control characters (in UTF-8, each one byte below 0x20). This table changes
#: them (to a space) and nothing else: ``bytes.translate`` hands back the very
#: same object when it changed nothing, which is how their absence is seen.
_CONTROLS_CHANGED = bytes(0x20 if code < 0x20 and code != 0x0A else code for code in range(256))
#: The keys that hold a body: v2 ``body``, and a site's own copy of it (a v1 ``review``).
_BODY_KEYS = ("review", "body")


def json_string(text: str) -> str:
    """Return *text* as a JSON string, exactly as ``json.dumps(ensure_ascii=False)`` does.

    The C encoder checks it character by character; three ``str.replace`` calls
    and one ``isprintable`` scan do the same job several times faster, and any
    text they cannot vouch for (control characters, separators) goes to the
    encoder itself.
    """
    if text.isascii():
        return encode_basestring_ascii(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if escaped.isprintable():
        return f'"{escaped}"'
    return encode_basestring(text)


def json_bytes(text: str) -> bytes:
    """Return ``json_string(text).encode()``: *text* as a JSON string in UTF-8.

    Escaping the UTF-8 bytes is cheaper than escaping the text: ``bytes.replace``
    and ``in`` run at memchr speed whatever the characters, and one
    ``bytes.translate`` finds any other control character (then the encoder
    itself escapes the text). A long review body saves most of its cost.
    """
    data = text.encode()
    if data.translate(_CONTROLS_CHANGED) is not data:
        return encode_basestring(text).encode()
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")
    if b'"' in data:
        data = data.replace(b'"', b'\\"')
    return b'"%b"' % data.replace(b"\n", b"\\n")


def record_text(record: Mapping[str, Any]) -> str:
    """Return contract record *record* (a dict) as one line of JSON text."""
    text, body = _with_body_slot(record)
    return text if body is None else text.replace(_BODY_SLOT_JSON, json_string(body))


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """Return *record* as one line of JSON in UTF-8: ``record_text(record).encode()``,
    with the body (written once or twice) escaped and encoded once."""
    text, body = _with_body_slot(record)
    if body is None:
        return text.encode()
    return text.encode().replace(_BODY_SLOT_BYTES, json_bytes(body))


def _with_body_slot(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """Return *record* as JSON with the stand-in where the body goes, and the body;
    or the exact JSON and None where there is nothing to stand in."""
    data = dict(record)
    body = data.get("body")
    if not isinstance(body, str):
        return _ENCODE(data), None
    slots = [key for key in _BODY_KEYS if data.get(key) == body]
    for key in slots:
        data[key] = _BODY_SLOT
    text = _ENCODE(data)
    if text.count(_BODY_SLOT_JSON) != len(slots):  # a field holds the stand-in: stay exact
        return _ENCODE(dict(record)), None
    return text, body
