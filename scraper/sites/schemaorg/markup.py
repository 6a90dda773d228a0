"""Microdata and RDFa Lite items into the JSON-LD shape ``graph.py`` walks.

Both syntaxes are the same idea spelled with other attributes: an element
opens an item (``itemscope`` + ``itemtype`` / ``typeof``), elements below it
name its properties (``itemprop`` / ``property``), and a property element that
opens an item of its own has that item as its value. Only the items that
contain a review are built (a review, the items around it, the items inside
it), so a page whose microdata is only navigation costs one CSS query.

Values follow the microdata rules (``content``, then the URL attribute of
``a``/``link``/``img``..., ``datetime`` of ``time``, ``value`` of
``data``/``meter``, else the text): a link keeps its text *and* its address
(``<a itemprop="author" href="/u/jo">Jo</a>`` is an author named Jo with that
URL), and a body property (``reviewBody``, ``description``, ``text``) is
rendered to the contract's body text right away, from the element itself.
A review item with no property name inside another item (sloppy, but common)
counts as a review of that item, unless the outer item is the web page itself.
Microdata ``itemref`` is followed. RDFa is read in its Lite subset: bare
terms count when the page declares the schema.org vocabulary; ``schema:``
CURIEs and full IRIs always do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper.sites.schemaorg.graph import MAIN_TYPES, is_page_type, is_review_type, local_name
from scraper.sites.schemaorg.text import node_body

if TYPE_CHECKING:  # `reviews parse` starts without loading the settings module
    from scraper.config import SchemaOrgLimits

__all__ = ["MICRODATA", "RDFA", "Items", "Literal", "Syntax", "items_with_reviews"]

Node = dict[str, Any]

#: Properties whose value is a body: rendered from the element, not read as a label.
BODY_PROPERTIES = frozenset({"reviewBody", "description", "text"})
_URL_ATTRIBUTES = {
    "a": "href",
    "area": "href",
    "link": "href",
    "img": "src",
    "audio": "src",
    "embed": "src",
    "iframe": "src",
    "source": "src",
    "track": "src",
    "video": "src",
    "object": "data",
}


def _page_item(types: list[str]) -> bool:
    return any(is_page_type(name) for name in types)


class Syntax(NamedTuple):
    """The attributes one syntax spells items with."""

    name: str
    scope: str  # the attribute that opens an item
    prop: str  # the attribute that names a property
    types: str  # the attribute that holds the item's types
    ids: tuple[str, ...]  # attributes that name the item (become "@id")


MICRODATA = Syntax("microdata", "itemscope", "itemprop", "itemtype", ("itemid",))
RDFA = Syntax("rdfa", "typeof", "property", "typeof", ("resource", "about"))


class Literal(str):
    """A text value read from an element, with the address it links to, if any.

    ``rendered`` marks a body already turned into the contract's body text.
    """

    href: str | None
    rendered: bool

    def __new__(cls, text: str, href: str | None = None, rendered: bool = False) -> Literal:
        value = super().__new__(cls, text)
        value.href = href
        value.rendered = rendered
        return value


class _Reader:
    """One page's items of one syntax, built on demand and bounded."""

    def __init__(
        self,
        tree: LexborHTMLParser,
        syntax: Syntax,
        base: str | None,
        limits: SchemaOrgLimits,
        bare_terms: bool,
    ) -> None:
        self.tree = tree
        self.syntax = syntax
        self.base = base
        self.limits = limits
        self.bare_terms = bare_terms
        # Elements looked at so far, against limits.max_nodes; and each item
        # built once (items of nested reviews are shared, not rebuilt).
        self.work = 0
        self.built: dict[int, Node] = {}

    def types(self, element: LexborNode) -> list[str]:
        raw = element.attrs.get(self.syntax.types) or ""
        names = []
        for term in raw.split()[:16]:
            if ":" not in term and not self.bare_terms:
                continue
            name = local_name(term)
            if name:
                names.append(name)
        return names

    def is_scope(self, element: LexborNode) -> bool:
        return self.syntax.scope in element.attrs

    def owner(self, element: LexborNode) -> LexborNode | None:
        """Return the item element *element*'s property belongs to (its nearest item above)."""
        parent = element.parent
        for _ in range(self.limits.max_climb):
            if parent is None or not parent.is_element_node:  # above <html>: the document
                return None
            if self.syntax.scope in parent.attrs:  # <html itemscope ...> too
                return parent
            if parent.tag == "html":
                return None
            parent = parent.parent
        return None

    def root(self, review: LexborNode) -> LexborNode:
        """Return the outermost item that holds *review* through properties (or sloppily)."""
        element = review
        for _ in range(self.limits.max_depth):
            outer = self.owner(element)
            if outer is None:
                return element
            if self.syntax.prop not in element.attrs and (
                element.mem_id != review.mem_id or _page_item(self.types(outer))
            ):
                return element
            element = outer
        return element

    def item(self, element: LexborNode, depth: int) -> Node:
        """Return the item *element* opens, as a JSON-LD-shaped node."""
        known = self.built.get(element.mem_id)
        if known is not None:
            return known
        node: Node = {}
        self.built[element.mem_id] = node
        types = self.types(element)
        if types:
            node["@type"] = types
        for attribute in self.syntax.ids:
            identifier = element.attrs.get(attribute)
            if identifier:
                node["@id"] = self.absolute(identifier)
                break
        if depth >= self.limits.max_depth or self.work > self.limits.max_nodes:
            return node
        for child in self.members(element):
            if self.syntax.prop in child.attrs:
                value = self.value(child, depth)
                for name in (child.attrs.get(self.syntax.prop) or "").split()[:8]:
                    short = local_name(name)
                    if short:
                        node.setdefault(short, []).append(value)
            elif (
                self.is_scope(child) and is_review_type(self.types(child)) and not _page_item(types)
            ):
                node.setdefault("review", []).append(self.item(child, depth + 1))
        return node

    def members(self, element: LexborNode) -> list[LexborNode]:
        """Return the property elements (and unnamed review items) that belong to *element*."""
        selector = f"[{self.syntax.prop}], [{self.syntax.scope}]"
        mine: list[LexborNode] = []
        previous = 0
        children = element.css(selector)
        self.work += len(children)
        if self.work > self.limits.max_nodes:
            return mine
        for child in children:
            if child.mem_id == previous:  # matched by both selectors of the list
                continue
            previous = child.mem_id
            owner = self.owner(child)
            if owner is not None and owner.mem_id == element.mem_id:
                mine.append(child)
        if self.syntax is MICRODATA:
            for reference in (element.attrs.get("itemref") or "").split()[:16]:
                try:
                    target = self.tree.css_first(f'[id="{_css_string(reference)}"]')
                except Exception:  # the CSS engine's refusals have no common class
                    continue
                if target is not None and self.syntax.prop in target.attrs:
                    mine.append(target)
        return mine

    def value(self, element: LexborNode, depth: int) -> Any:
        if self.is_scope(element):
            return self.item(element, depth + 1)
        attrs = element.attrs
        names = (attrs.get(self.syntax.prop) or "").split()
        if any(local_name(name) in BODY_PROPERTIES for name in names):
            content = attrs.get("content")
            if content is not None:
                return Literal(content)
            text = node_body(element)
            return Literal(text[: self.limits.max_text_chars], rendered=True)
        content = attrs.get("content")
        if content is not None:
            return Literal(content)
        tag = element.tag or ""
        if tag == "time":
            return Literal(attrs.get("datetime") or element.text(deep=True))
        if tag in ("data", "meter") and attrs.get("value") is not None:
            return Literal(attrs.get("value") or "")
        url_attribute = _URL_ATTRIBUTES.get(tag)
        href = attrs.get(url_attribute) if url_attribute else None
        if href is None and self.syntax is RDFA:
            href = attrs.get("resource") or attrs.get("href") or attrs.get("src")
        text = element.text(deep=True)[: self.limits.max_text_chars]
        return Literal(text, self.absolute(href) if href else None)

    def absolute(self, address: str) -> str:
        address = address.strip()
        if not self.base:
            return address
        try:
            return urljoin(self.base, address)
        except ValueError:
            return address


def _css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class Items(NamedTuple):
    """What one syntax holds on a page: items with reviews, and what else the page says."""

    with_reviews: list[Node]  # the top items that hold a review, in document order
    aggregate: bool  # an AggregateRating item is there
    main: list[Node]  # Products, Recipes and items with an AggregateRating (names only)


def items_with_reviews(
    tree: LexborHTMLParser,
    syntax: Syntax,
    base: str | None,
    limits: SchemaOrgLimits,
) -> Items:
    """Return the items of *syntax* on the page (see ``Items``); each is built once."""
    scopes = tree.css(f"[{syntax.scope}]")
    if not scopes:
        return Items([], False, [])
    bare_terms = syntax is MICRODATA or tree.css_first('[vocab*="schema.org"]') is not None
    reader = _Reader(tree, syntax, base, limits, bare_terms)
    roots: list[LexborNode] = []
    seen: set[int] = set()
    mains: list[LexborNode] = []
    aggregate = False
    for scope in scopes[: limits.max_nodes]:
        types = reader.types(scope)
        if "AggregateRating" in types:
            aggregate = True
            holder = reader.owner(scope)
            if holder is not None:
                mains.append(holder)
        elif MAIN_TYPES.intersection(types):
            mains.append(scope)
        if not is_review_type(types):
            continue
        root = reader.root(scope)
        if root.mem_id not in seen:
            seen.add(root.mem_id)
            roots.append(root)
    items = [reader.item(root, 0) for root in roots]
    if not items:
        return Items([], aggregate, [])
    # Only their names and types are wanted: built one level deep.
    main = [reader.item(element, limits.max_depth - 1) for element in mains[:16]]
    return Items(items, aggregate, main)
