"""CSS selectors for MyAnimeList pages, one named constant per thing we read.

When MAL changes its markup, this is the file to change. The two layouts are
told apart by structure alone (which review container the page holds), never
by host, URL shape or date: mirrors and archives serve old pages today.
"""

from __future__ import annotations

# --- whole page --------------------------------------------------------------

#: The page's own address; names the entry on entry pages.
CANONICAL = 'link[rel="canonical"]'
#: Open Graph fallbacks: og:url for the address, og:title for the entry title.
OG_URL = 'meta[property="og:url"]'
OG_TITLE = 'meta[property="og:title"]'
#: The entry title heading on entry pages (fallback when og:title is missing).
ENTRY_HEADING = "h1.title-name, h1 span[itemprop='name']"
#: The profile owner's picture on a user's reviews page.
PROFILE_IMAGE = "div.user-image img"
#: "More Reviews": current pages mark it for analytics; legacy pages only by its text.
MORE_REVIEWS = 'a[data-ga-click-type="review-more-reviews"]'
#: Links that carry a page number: where a legacy "More Reviews" is looked for.
PAGER_LINKS = 'a[href*="p="]'

MORE_REVIEWS_TEXT = "More Reviews"
#: The attribute that marks the current layout's "More Reviews" link.
MORE_REVIEWS_ATTR = ("data-ga-click-type", "review-more-reviews")

# --- current layout (late 2022 on) ---------------------------------------------

#: One review. ``data-reactions`` holds the real reaction counts as JSON.
CUR_REVIEW = "div.review-element.js-review-element"
CUR_REACTIONS_ATTR = "data-reactions"
#: Reviewer avatar; ``data-src`` holds the image even before lazy loading.
CUR_AVATAR = 'div.thumb a[href*="/profile/"] img'
#: Date as text (``Aug 24, 2008``), time in its ``title`` (``5:46 AM``).
CUR_DATE = "div.update_at"
CUR_USERNAME = "div.username a"
#: One tag each; the kind is a class (``recommended``, ``preliminary``...).
CUR_TAG = "div.tags div.tag"
#: The label each tag kind displays (used when a tag's words sit only in
#: child elements).
TAG_LABELS = {
    "recommended": "Recommended",
    "mixed-feelings": "Mixed Feelings",
    "not-recommended": "Not Recommended",
    "preliminary": "Preliminary",
    "spoiler": "Spoiler",
    "funny": "Funny",
    "informative": "Informative",
    "well-written": "Well-written",
    "creative": "Creative",
}
#: The body: visible start, ``span.js-visible`` ("..."), ``span.js-hidden`` rest.
CUR_TEXT = "div.text"
#: Chrome inside the body: the "..." marker and, on pages mixing entries, the
#: entry's picture floated into the text.
CUR_TEXT_CHROME = "span.js-visible, div.thumb-right"
CUR_SCORE = "div.rating span.num"
CUR_PERMALINK = "div.open a"
#: On pages mixing entries (recent, a user's reviews, permalinks): the entry link.
CUR_TITLEBLOCK = "div.titleblock a"
#: (Each field keeps its own query. Folding them into the tags' walk of the review,
#: told apart by tag and class as ``PAGE_PARTS`` is, was measured slower by
#: callgrind: 37.75 M instructions a page with the permalink, date, score, body and
#: avatar folded in, 37.52 M with the date and body only, against 37.17 M. Every
#: selector of a list is tried at every node of the review, body included, which
#: costs more than the parsing of the selectors saves; ``css_first`` stops early.)

# --- legacy layout (2018 to mid 2022) ------------------------------------------

#: One review: a bordered box that holds a readable text block.
LEG_REVIEW = "div.borderDark"
LEG_BODY = "div.textReadability"
#: Right column: date (time in ``title``), "N of M episodes seen", "Overall Rating: N".
LEG_META = "div.mb8"
LEG_DATE = "div[title]"
#: (On pages mixing entries the box's picture may be the entry's: only a
#: picture linking to a profile is the reviewer's.)
LEG_AVATAR = 'div.picSurround a[href*="/profile/"] img'
LEG_PROFILE_LINK = 'a[href*="/profile/"]'
#: ``<span id="rhelp{id}">1488</span> people found this review helpful``
LEG_HELPFUL = 'span[id^="rhelp"]'
#: Hidden sub-score table ``div#score{id}``: rows of (label, value).
LEG_SCORE_TABLE = 'div[id^="score"]'
LEG_SCORE_ROW = "tr"
#: Left-column preliminary marker: ``<i class="fa fa-tag"></i> Preliminary``.
LEG_TAG_ICON = "i.fa-tag"
#: Links that name the review: the footer permalink, the read-more toggle.
LEG_PERMALINK = 'a[href*="reviews.php?id="]'
LEG_ENTRY_LINK = 'a[href*="/anime/"], a[href*="/manga/"]'

#: Inside a legacy body, elements that are page chrome, not review text: the
#: sub-score table, the Helpful button and the read-more toggle.
LEG_BODY_CHROME = (
    'div[id^="score"], div[id^="revhelp_output_"], a[id^="reviewToggle"], '
    'a.js-toggle-review-button, div.js-review-btn-helpful, a[href^="javascript:"]'
)

# --- one walk per page ------------------------------------------------------------

#: Every walk of the tree costs a good part of parsing the page, so the page's
#: review containers of both layouts and its marked "More Reviews" link are
#: found in one walk, then told apart by tag and class (``mal.page_parts``).
#: (``PAGER_LINKS`` is not in it: it matches many links, each costing a Python
#: object, and is only needed on pages without the marked link.) The walk also
#: says whether the page holds any ``div.titleblock``: on pages that hold none
#: (an entry's reviews), no review is searched for its ``CUR_TITLEBLOCK`` links.
TITLEBLOCK = "div.titleblock"
PAGE_PARTS = ", ".join((CUR_REVIEW, LEG_REVIEW, MORE_REVIEWS, TITLEBLOCK))

# --- page kinds ---------------------------------------------------------------

#: Things that make a page look like a review listing even when no review reads.
REVIEW_PAGE_HINTS = (
    "div.review-element, div.js-review-element, div.textReadability, "
    'a[data-ga-click-type="review-more-reviews"], div.reviews-horiznav-nav-sort-block'
)
