"""The HTML of the stand-in MAL site (tests/standin.py): its reviews and entries, and
pages written the way MAL's current layout writes them (``div.review-element`` with
``data-reactions``, tags, a cut body, permalinks, "More Reviews", canonical links).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

MAL = "https://myanimelist.net"

_TAGS = {
    "recommended": "Recommended",
    "mixed-feelings": "Mixed Feelings",
    "not-recommended": "Not Recommended",
    "funny": "Funny",
    "informative": "Informative",
    "well-written": "Well-written",
    "creative": "Creative",
}


@dataclass(frozen=True)
class StandinReview:
    """One generated review (ids are unique across the whole site)."""

    id: int
    kind: str
    entry_id: int
    username: str
    date: datetime
    score: int
    verdict: str  # recommended / mixed-feelings / not-recommended
    spoiler: bool
    preliminary: int | None  # episodes or chapters seen, for preliminary reviews
    #: nice, love it, funny, confusing, informative, well-written, creative
    reactions: tuple[int, ...]
    paragraphs: tuple[str, ...]


@dataclass
class StandinEntry:
    kind: str
    mal_id: int
    slug: str
    title: str
    reviews: list[StandinReview] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.mal_id}/{self.slug}/reviews"


def _body_html(review: StandinReview) -> str:
    text = "<br />\n<br />\n".join(html.escape(p, quote=True) for p in review.paragraphs)
    # Cut like MAL does: a visible start, the "..." marker, the hidden rest.
    cut = text.find(" ", min(len(text) - 1, 120))
    if cut < 0:
        cut = len(text)
    return (
        f"{text[:cut]}\n"
        '                  <span class="js-visible" style="margin-left: -4px;">...</span>\n'
        f'          <span class="js-hidden" style="display: none;">{text[cut + 1 :]}</span>'
    )


def _tags_html(review: StandinReview, entry: StandinEntry) -> str:
    href = f"{MAL}{entry.path}"
    parts = [
        f'<div class="tag {review.verdict} btn-label js-btn-label" data-id="1" '
        f'data-href="{href}"><i class="fas fa-star"></i>{_TAGS[review.verdict]}</div>'
    ]
    if review.preliminary is not None:
        unit = "eps" if review.kind == "anime" else "chp"
        parts.append(
            '<div class="tag preliminary">Preliminary'
            f"<span>({review.preliminary}/24 {unit})</span></div>"
        )
    if review.spoiler:
        parts.append('<div class="tag spoiler">Spoiler</div>')
    return f'<div class="tags">{"".join(parts)}</div>'


def render_review(review: StandinReview, entry: StandinEntry) -> str:
    """Return one ``div.review-element`` as MAL's current layout writes it."""
    counts = [str(n) for n in review.reactions]
    reactions = json.dumps(
        {"icon": ["1", "2"], "num": sum(review.reactions), "count": counts},
        separators=(",", ":"),
    )
    profile = f"{MAL}/profile/{review.username}"
    avatar = f"https://cdn.myanimelist.net/images/userimages/{review.id % 9000}.jpg"
    date = review.date
    hour = date.hour % 12 or 12
    time_text = f"{hour}:{date.minute:02d} {'AM' if date.hour < 12 else 'PM'}"
    permalink = f"{MAL}/reviews.php?id={review.id}"
    more_by = f'More reviews by {review.username} (<span class="num">3</span>)'
    hidden = 'style="display: none;"'
    return f"""
<div class="review-element js-review-element" data-reactions='{reactions}'>
  <div class="thumbbody mt8">
    <div class="thumb">
      <a href="{profile}" class="ga-click" data-ga-click-type="review-anime-reviewer-pic">
        <img src="{avatar}" data-src="{avatar}" class="lazyloaded" width="48">
      </a>
    </div>
    <div class="body">
      <div title="{time_text}" class="update_at">{date:%b} {date.day}, {date.year}</div>
      <div class="username">
          <a href="{profile}" class="ga-click">{review.username}</a>
      </div>{_tags_html(review, entry)}
      <div class="text">
                {_body_html(review)}
              </div>
      <div class="rating mt20 mb20 js-hidden" {hidden}>
        Reviewer’s Rating: <span class="num">{review.score}</span>
      </div>
      <div class="reaction-box mb8 js-hidden" {hidden}>
        <div class="btn-reaction js-btn-reaction nice" data-id="{review.id}">
          Nice <span class="num">0</span></div>
        <div class="more_reviews js-more_reviews" {hidden}>
          <a href="/profile/{review.username}/reviews">{more_by}</a></div>
      </div>
      <div class="bottom-navi"><div class="open">
        <a href="{permalink}" class="ga-click" data-ga-click-type="review-permalink">Open</a>
      </div></div>
    </div>
  </div>
</div>"""


def render_listing(
    entry: StandinEntry, reviews: list[StandinReview], next_query: dict[str, str] | None
) -> str:
    """Return a whole entry reviews page (head, filters, reviews, "More Reviews")."""
    canonical = f"{MAL}{entry.path}"
    title = html.escape(entry.title)
    more = ""
    if next_query is not None:
        href = html.escape(f"{canonical}?{urlencode(next_query)}")
        more = (
            f'<div class="ml4 mb8"><a href="{href}" class="ga-click" '
            'data-ga-click-type="review-more-reviews">More Reviews</a></div>'
        )
    body = "".join(render_review(review, entry) for review in reviews)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<title>
{title} - Reviews - MyAnimeList.net
</title>
<link rel="canonical" href="{canonical}" />
<meta property="og:title" content="{title}">
<meta property="og:url" content="{canonical}">
</head>
<body>
<h1 class="title-name"><strong>{title}</strong></h1>
<div class="reviews-horiznav-nav-sort-block">
  <span class="mr12 btn-crossedbox js-reviews-chk-preliminary on">Preliminary</span>
  <span class="mr12 btn-crossedbox js-reviews-chk-spoiler">Spoiler</span>
</div>
{more}
{body}
{more}
</body>
</html>
"""


BLOCK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>Access denied - MyAnimeList.net</title></head>
<body><h1>Access denied</h1>
<p>We have detected unusual traffic from your network. Please complete the captcha
below to continue.</p><div class="g-recaptcha" data-sitekey="x"></div>
</body></html>
"""
