"""Find the Review nodes in JSON-LD-shaped data, wherever they sit, with the item that holds them.

The data is plain JSON values: what the JSON-LD blocks hold, or what
``markup.py`` builds from microdata and RDFa in the same shape. Two bounded,
iterative walks (no recursion, so no depth can blow the stack):

1. ``index`` records every node that has an ``@id`` (the richest one when an
   id is defined twice) and rewrites property names written as IRIs or
   ``schema:`` CURIEs to their short names.
2. ``find_reviews`` walks from the roots, following bare ``{"@id": ...}``
   references to the nodes they name (each node is entered once, so reference
   cycles end), and yields each review node once, with the node that holds it
   under its ``review`` / ``reviews`` property when there is one.

A node is a review when one of its types is ``Review``, ends with ``Review``
(``CriticReview``, ``UserReview``, ``EmployerReview``...) or is
``Recommendation`` (schema.org's other Review subtype), or when it sits
untyped under an item's ``review`` property and carries a ``reviewBody`` or
``reviewRating``. Types from vocabularies other than schema.org do not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # `reviews parse` starts without loading the settings module
    from scraper.config import SchemaOrgLimits

__all__ = [
    "MAIN_TYPES",
    "Found",
    "Graph",
    "find_reviews",
    "index",
    "local_name",
    "main_items",
    "type_names",
]

Node = dict[str, Any]

_REVIEW_PROPERTIES = frozenset({"review", "reviews"})
_REVIEW_FIELDS = ("reviewBody", "reviewRating")
_SCHEMA_HOSTS = ("schema.org/", "www.schema.org/", "schema.googleapis.com/")


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


#: Types that are the reviewed thing of the page they sit on (with any node
#: that carries an ``aggregateRating``): see ``main_items``.
MAIN_TYPES = frozenset({"Product", "ProductGroup", "Recipe"})


def main_items(nodes: Iterable[Node]) -> list[Node]:
    """Return the nodes among *nodes* that are a reviewed thing: a Product, a
    Recipe, or anything with an ``aggregateRating`` (not a review, not a page)."""
    found = []
    for node in nodes:
        names = type_names(node)
        if is_review_type(names) or any(name.endswith("Page") for name in names):
            continue
        if "aggregateRating" in node or MAIN_TYPES.intersection(names):
            found.append(node)
    return found


def local_name(name: str) -> str | None:
    """Return a schema.org term's short name (``http://schema.org/Review`` → ``Review``).

    None for a term of another vocabulary (``http://data-vocabulary.org/Review``).
    """
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


def is_review_type(names: Iterable[str]) -> bool:
    """Return True when one of the type *names* is Review or one of its subtypes."""
    for name in names:
        # "UserReview", or any spelling of "review" itself; not "VideoPreview".
        if name.endswith("Review") or name.lower() in ("review", "recommendation"):
            return True
    return False


def _normalise_keys(node: Node) -> None:
    """Rewrite IRI / CURIE property names of *node* in place to their short names."""
    odd = [key for key in node if not key.startswith("@") and (":" in key)]
    for key in odd:
        name = local_name(key)
        value = node.pop(key)
        if name and name not in node:
            node[name] = value


def index(roots: list[Any], limits: SchemaOrgLimits) -> Graph:
    """Return the ``@id`` index of every node under *roots* (see the module docstring)."""
    ids: dict[str, Node] = {}
    aggregate = False
    items: list[Node] = []
    stack: list[tuple[Any, int]] = [(root, 0) for root in roots]
    count = 0
    while stack:
        value, depth = stack.pop()
        if depth > limits.max_depth:
            continue
        if isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
            continue
        if not isinstance(value, dict):
            continue
        count += 1
        if count > limits.max_nodes:
            return Graph(ids, aggregate, True, main_items(items))
        _normalise_keys(value)
        identifier = value.get("@id")
        if isinstance(identifier, str) and len(value) > 1:
            known = ids.get(identifier)
            if known is None or len(value) > len(known):
                ids[identifier] = value
        names = type_names(value)
        if "aggregateRating" in value or MAIN_TYPES.intersection(names):
            items.append(value)
        if not aggregate and ("aggregateRating" in value or "AggregateRating" in names):
            aggregate = True
        stack.extend(
            (child, depth + 1)
            for key, child in value.items()
            if isinstance(child, dict | list) and (key == "@graph" or not key.startswith("@"))
        )
    return Graph(ids, aggregate, False, main_items(items))


def resolve(value: Any, ids: dict[str, Node]) -> Any:
    """Return the node a bare ``{"@id": ...}`` reference names, else *value* itself."""
    if isinstance(value, dict) and len(value) <= 2:
        identifier = value.get("@id")
        if isinstance(identifier, str):
            return ids.get(identifier, value)
    return value


def find_reviews(roots: list[Any], graph: Graph, limits: SchemaOrgLimits) -> list[Found]:
    """Return each review node under *roots* once, in document order, with its holder."""
    found: dict[int, Found] = {}
    entered: set[int] = set()
    # (value, the node it hangs from, whether it hangs from a review property, depth)
    stack: list[tuple[Any, Node | None, bool, int]] = [
        (root, None, False, 0) for root in reversed(roots)
    ]
    count = 0
    while stack and count < limits.max_nodes:
        value, parent, under_review, depth = stack.pop()
        if depth > limits.max_depth:
            continue
        if isinstance(value, list):
            stack.extend((item, parent, under_review, depth + 1) for item in reversed(value))
            continue
        value = resolve(value, graph.ids)
        if not isinstance(value, dict):
            continue
        count += 1
        key = id(value)
        if _is_review(value, under_review):
            holder = parent if under_review else None
            known = found.get(key)
            if known is None:
                if len(found) >= limits.max_reviews:
                    break
                found[key] = Found(value, holder)
            elif known.holder is None and holder is not None:
                found[key] = Found(value, holder)
        if key in entered:
            continue
        entered.add(key)
        children = [
            (child, value, name in _REVIEW_PROPERTIES, depth + 1)
            for name, child in value.items()
            if isinstance(child, dict | list) and (name == "@graph" or not name.startswith("@"))
        ]
        stack.extend(reversed(children))
    return list(found.values())


def _is_review(node: Node, under_review: bool) -> bool:
    names = type_names(node)
    if names:
        return is_review_type(names)
    return under_review and any(field in node for field in _REVIEW_FIELDS)
