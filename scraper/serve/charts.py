"""Geometry for the pages' small SVG charts and marked search snippets.

Charts are drawn by the templates from the numbers computed here (so every label
goes through the templates' escaping); nothing is fetched by the browser.
Snippets are escaped first and only then wrapped in ``<mark>``: text from the
archive never becomes markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from scraper.config import ServeSettings

__all__ = ["bar_chart", "line_chart", "months", "snippet"]

WIDTH, HEIGHT, PAD = 560, 160, 28


def bar_chart(pairs: Sequence[tuple[Any, int]]) -> dict[str, Any]:
    """Return bars (x, y, w, h, label, value) for (label, count) pairs, left to right."""
    top = max((count for _, count in pairs), default=0) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(1, len(pairs))
    bars = []
    for index, (label, count) in enumerate(pairs):
        height = inner_h * count / top
        bars.append(
            {
                "x": round(PAD + index * step + step * 0.1, 1),
                "y": round(PAD + inner_h - height, 1),
                "w": round(step * 0.8, 1),
                "h": round(height, 1),
                "label": str(label),
                "value": count,
                "label_x": round(PAD + index * step + step / 2, 1),
            }
        )
    label_every = max(1, len(pairs) // 12)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "bars": bars,
        "top": top,
        "label_every": label_every,
        "base_y": PAD + inner_h,
    }


def months(pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return (YYYY-MM, count) for every month from the first to the last of *pairs*
    (months without reviews as 0), so the chart's x axis is time."""
    if not pairs:
        return []
    counts = dict(pairs)
    year, month = (int(part) for part in pairs[0][0].split("-"))
    last = pairs[-1][0]
    filled = []
    while True:
        key = f"{year:04d}-{month:02d}"
        filled.append((key, counts.get(key, 0)))
        if key >= last:
            return filled
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def line_chart(series: Mapping[str, Sequence[tuple[datetime, int | None]]]) -> dict[str, Any]:
    """Return polylines for named series of (time, value) points on shared axes."""
    points = [(t, v) for values in series.values() for t, v in values if v is not None]
    if not points:
        return {"width": WIDTH, "height": HEIGHT, "lines": [], "top": 0}
    start = min(t for t, _ in points).timestamp()
    end = max(t for t, _ in points).timestamp()
    span = (end - start) or 1.0
    top = max(v for _, v in points) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    lines = []
    for name, values in series.items():
        dots = [
            {
                "x": round(PAD + inner_w * (t.timestamp() - start) / span, 1),
                "y": round(PAD + inner_h - inner_h * v / top, 1),
                "value": v,
                "when": t.date().isoformat(),
            }
            for t, v in values
            if v is not None
        ]
        if dots:
            path = " ".join(f"{d['x']},{d['y']}" for d in dots)
            lines.append({"name": name, "points": path, "dots": dots})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "lines": lines,
        "top": top,
        "base_y": PAD + inner_h,
        "start": min(t for t, _ in points).date().isoformat(),
        "end": max(t for t, _ in points).date().isoformat(),
    }


@lru_cache(maxsize=ServeSettings().word_patterns)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern matching any of *words* as a whole token (as the full-text index cuts text)."""
    alternatives = "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def snippet(
    body: str | None, words: Sequence[str], *, width: int = ServeSettings().snippet_chars
) -> Markup:
    """Return an escaped excerpt of *body* around the first searched word, each
    occurrence of a searched word wrapped in ``<mark>`` (escaped first, then wrapped)."""
    text = " ".join((body or "").split())
    pattern = _words_pattern(tuple(word.lower() for word in words)) if words else None
    found = pattern.search(text) if pattern else None
    first = found.start() if found else 0
    start = max(0, first - width // 3)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    piece = text[start : start + width]
    out: list[str] = ["…" if start else ""]
    last = 0
    for match in pattern.finditer(piece) if pattern else ():
        out.append(str(escape(piece[last : match.start()])))
        out.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    out.append(str(escape(piece[last:])))
    if start + width < len(text):
        out.append("…")
    return Markup("".join(out))
