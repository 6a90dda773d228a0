"""Find the Review nodes in JSON-LD-shaped data, wherever they sit, with the item that holds them.

The data is plain JSON values: what the JSON-LD blocks hold, or what
``markup.py`` builds from microdata and RDFa in the same shape. One bounded,
iterative walk (no recursion, so no depth can blow the stack; each node
entered once, so shared nodes and cycles end) records every node that has an
``@id`` (the richest one when an id is defined twice), rewrites property
names written as IRIs or ``schema:`` CURIEs to their short names, and finds
each review node once, with the node that holds it under its ``review`` /
``reviews`` property when there is one. A bare ``{"@id": ...}`` reference
under ``review`` gives the node it names that holder, after the walk. The
field readers follow other references (an author, an ``itemReviewed``)
through the same index.

A node is a review when one of its types is ``Review``, ends with ``Review``
(``CriticReview``, ``UserReview``, ``EmployerReview``...) or is
``Recommendation`` or ``ReviewNewsArticle`` (schema.org's other Review
subtypes), or when it sits
untyped under an item's ``review`` property and carries a ``reviewBody`` or
``reviewRating``. Types from vocabularies other than schema.org do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from scraper.config import SchemaOrgLimits

if TYPE_CHECKING:  # `reviews parse` starts without loading the settings module
    from scraper.config import SchemaOrgLimits

__all__ = [
    "MAIN_TYPES",
    "Found",
    "Graph",
    "is_page_type",
    "local_name",
    "main_items",
    "resolve",
    "type_names",
    "walk",
]

Node = dict[str, Any]

_REVIEW_PROPERTIES = frozenset({"review", "reviews"})
_REVIEW_FIELDS = ("reviewBody", "reviewRating")
_SCHEMA_HOSTS = ("schema.org/", "www.schema.org/", "schema.googleapis.com/")
_BARE_HOSTS = (*_SCHEMA_HOSTS, "//schema.org/", "//www.schema.org/")


class Found(NamedTuple):
    """A review node and the item node holding it (None when it stands alone)."""

    node: Node
    holder: Node | None


class Graph(NamedTuple):
    """What the walks saw: the ``@id`` index, whether any AggregateRating was there,
    and the nodes that look like the page's reviewed thing (see ``main_items``)."""

    ids: dict[str, Node]
    aggregate: bool
    truncated: bool
    items: list[Node]
    found: list[Found]  # each review once, in document order, with its holder


#: Types that are the reviewed thing of the page they sit on (with any node
#: that carries an ``aggregateRating``): see ``main_items``.
MAIN_TYPES = frozenset({"Product", "ProductGroup", "Recipe"})


def main_items(nodes: Iterable[Node]) -> list[Node]:
    """Return the nodes among *nodes* that are a reviewed thing: a Product, a
    Recipe, or anything with an ``aggregateRating`` (not a review, not a page)."""
    found = []
    for node in nodes:
        names = type_names(node)
        if is_review_type(names) or any(is_page_type(name) for name in names):
            continue
        if "aggregateRating" in node or MAIN_TYPES.intersection(names):
            found.append(node)
    return found


@lru_cache(maxsize=SchemaOrgLimits().term_cache)
def local_name(name: str) -> str | None:
    """Return a schema.org term's short name (``http://schema.org/Review`` → ``Review``).

    None for a term of another vocabulary (``http://data-vocabulary.org/Review``).
    """
    if name.startswith(_BARE_HOSTS):  # "schema.org/Review", "//schema.org/Review"
        name = "http:" + name if name.startswith("//") else "http://" + name
    if "://" in name:
        rest = name.split("://", 1)[1]
        if not rest.startswith(_SCHEMA_HOSTS):
            return None
        return rest.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] or None
    if ":" in name:
        prefix, _, rest = name.partition(":")
        return rest if prefix.lower() == "schema" and rest else None
    return name or None


def type_names(node: Node) -> list[str]:
    """Return the node's schema.org type names, in the order given."""
    types = node.get("@type")
    if isinstance(types, str):
        name = local_name(types.strip())
        return [name] if name else []
    if not isinstance(types, list):
        return []
    names = []
    for entry in types[:16]:
        if isinstance(entry, str):
            name = local_name(entry.strip())
            if name:
                names.append(name)
    return names


def is_page_type(name: str) -> bool:
    """Return True for a type that is the web page itself (WebPage, ItemPage...,
    WebSite, its WPHeader/WPFooter): reviews inside it are not reviews *of* it."""
    return name.endswith("Page") or name.startswith(("WebSite", "WP"))


#: schema.org's Review subtypes whose names do not end with "Review" (and "review"
#: in any case): ``Recommendation``; ``ReviewNewsArticle``, a CriticReview too.
_OTHER_REVIEW_TYPES = frozenset({"review", "recommendation", "reviewnewsarticle"})


def is_review_type(names: Iterable[str]) -> bool:
    """Return True when one of the type *names* is Review or one of its subtypes."""
    # "UserReview", or any spelling of "review" itself; not "VideoPreview".
    return any(name.endswith("Review") or name.lower() in _OTHER_REVIEW_TYPES for name in names)


def _normalise_keys(node: Node) -> None:
    """Rewrite IRI / CURIE property names of *node* in place to their short names."""
    odd = [key for key in node if not key.startswith("@") and (":" in key)]
    for key in odd:
        name = local_name(key)
        value = node.pop(key)
        if name and name not in node:
            node[name] = value


def walk(roots: list[Any], limits: SchemaOrgLimits, iri_keys: bool = True) -> Graph:
    """Return what one walk of *roots* finds (see the module docstring and ``Graph``).

    A review given under an item's ``review`` only as a bare ``{"@id": ...}``
    reference is the node of that id, wherever the walk met it; it takes the
    item as its holder. *iri_keys* False skips looking for property names
    written as IRIs (the caller saw none in the text).
    """
    ids: dict[str, Node] = {}
    aggregate = False
    items: list[Node] = []
    found: dict[int, Found] = {}
    references: list[tuple[str, Node]] = []
    entered: set[int] = set()
    # (value, the node it hangs from, whether it hangs from a review property, depth)
    stack: list[tuple[Any, Node | None, bool, int]] = [
        (root, None, False, 0) for root in reversed(roots)
    ]
    count = 0
    truncated = False
    while stack:
        value, parent, under_review, depth = stack.pop()
        if depth > limits.max_depth:
            continue
        if isinstance(value, list):
            stack.extend((item, parent, under_review, depth + 1) for item in reversed(value))
            continue
        if not isinstance(value, dict) or id(value) in entered:
            continue
        count += 1
        if count > limits.max_nodes:
            truncated = True
            break
        entered.add(id(value))
        if iri_keys:
            _normalise_keys(value)
        identifier = value.get("@id")
        if isinstance(identifier, str):
            if len(value) > 2 or (len(value) == 2 and "@type" not in value):
                known = ids.get(identifier)
                if known is None or len(value) > len(known):
                    ids[identifier] = value
            elif under_review and parent is not None:
                references.append((identifier, parent))
        names = type_names(value)
        review = is_review_type(names) if names else under_review and _reviewish(value)
        if review:
            if len(found) < limits.max_reviews:
                found[id(value)] = Found(value, parent if under_review else None)
        elif "aggregateRating" in value or MAIN_TYPES.intersection(names):
            items.append(value)
            aggregate = aggregate or "aggregateRating" in value
        elif "AggregateRating" in names:
            aggregate = True
        stack.extend(
            reversed(
                [
                    (child, value, name in _REVIEW_PROPERTIES, depth + 1)
                    for name, child in value.items()
                    if isinstance(child, dict | list)
                    and (name == "@graph" or not name.startswith("@"))
                ]
            )
        )
    _hold_referenced(found, references, ids, limits)
    return Graph(ids, aggregate, truncated, main_items(items), list(found.values()))


def _hold_referenced(
    found: dict[int, Found],
    references: list[tuple[str, Node]],
    ids: dict[str, Node],
    limits: SchemaOrgLimits,
) -> None:
    """Give each review named by a bare reference under an item's ``review`` that item."""
    for identifier, holder in references:
        node = ids.get(identifier)
        if node is None:
            continue
        seen = found.get(id(node))
        unheld = seen is not None and seen.holder is None
        if unheld or (seen is None and _reviewish(node) and len(found) < limits.max_reviews):
            found[id(node)] = Found(node, holder)


def resolve(value: Any, ids: dict[str, Node]) -> Any:
    """Return the node a bare ``{"@id": ...}`` reference names, else *value* itself."""
    if isinstance(value, dict) and len(value) <= 2:
        identifier = value.get("@id")
        if isinstance(identifier, str):
            return ids.get(identifier, value)
    return value


def _reviewish(node: Node) -> bool:
    """Return True for a node that is a review by its type or, untyped, by its fields."""
    names = type_names(node)
    if names:
        return is_review_type(names)
    return any(field in node for field in _REVIEW_FIELDS)
