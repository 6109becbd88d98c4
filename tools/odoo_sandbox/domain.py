"""Odoo search domains, the subset clients send: leaves `[field, operator, value]`, the prefix operators `&`, `|`
and `!`, implicit AND between consecutive terms, and the constant leaves `(1, '=', 1)` / `(0, '=', 1)`."""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .exceptions import builtin_error
from .models import Model

OPERATORS = (
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "in",
    "not in",
    "like",
    "ilike",
    "not like",
    "not ilike",
    "=like",
    "=ilike",
)

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {"<": op.lt, ">": op.gt, "<=": op.le, ">=": op.ge}
# The display name of a many2one's target record (model, id), for like / ilike on a many2one.
Names = Callable[[str, int], str]


@dataclass(frozen=True)
class Leaf:
    field: str
    operator: str
    value: Any


@dataclass(frozen=True)
class Node:
    operator: str  # "&", "|", "!", or "leaf" / "true" / "false"
    children: tuple[Node, ...] = ()
    leaf: Leaf | None = None


TRUE = Node("true")
FALSE = Node("false")


def parse(domain: Any, model: Model) -> Node:
    """The domain as a tree; raises Odoo's ValueError on a malformed term or an unknown field."""
    if domain in (None, False):
        return TRUE
    if not isinstance(domain, list | tuple):
        raise builtin_error("ValueError", f"Invalid domain {domain!r}")
    stack: list[Node] = []
    for term in reversed(domain):
        if term in ("&", "|"):
            if len(stack) < 2:
                raise builtin_error("ValueError", f"Domain {list(domain)!r} is syntactically not correct.")
            first, second = stack.pop(), stack.pop()
            stack.append(Node(term, (first, second)))
        elif term == "!":
            if not stack:
                raise builtin_error("ValueError", f"Domain {list(domain)!r} is syntactically not correct.")
            stack.append(Node("!", (stack.pop(),)))
        else:
            stack.append(_leaf(term, model))
    if not stack:
        return TRUE
    node = stack.pop()
    while stack:  # consecutive terms without an operator are ANDed
        node = Node("&", (node, stack.pop()))
    return node


def _leaf(term: Any, model: Model) -> Node:
    if not isinstance(term, list | tuple) or len(term) != 3:
        raise builtin_error("ValueError", f"Invalid leaf {term!r}")
    name, operator, value = term
    if [name, operator, value] == [1, "=", 1]:
        return TRUE
    if [name, operator, value] == [0, "=", 1]:
        return FALSE
    if not isinstance(name, str) or name not in model.fields:
        raise builtin_error("ValueError", f"Invalid field {model.name}.{name} in condition {tuple(term)!r}")
    if operator not in OPERATORS:
        raise builtin_error("ValueError", f"Invalid operator {operator!r} in condition {tuple(term)!r}")
    if operator in ("in", "not in") and not isinstance(value, list | tuple):
        value = [value]
    return Node("leaf", leaf=Leaf(name, operator, value))


def matches(node: Node, record: dict[str, Any], model: Model, names: Names) -> bool:
    if node.operator == "true":
        return True
    if node.operator == "false":
        return False
    if node.operator == "&":
        return all(matches(child, record, model, names) for child in node.children)
    if node.operator == "|":
        return any(matches(child, record, model, names) for child in node.children)
    if node.operator == "!":
        return not matches(node.children[0], record, model, names)
    assert node.leaf is not None
    return _holds(node.leaf, record, model, names)


def _is_set(value: Any) -> bool:
    return value not in (None, False, "")


def _holds(leaf: Leaf, record: dict[str, Any], model: Model, names: Names) -> bool:
    field = model.fields[leaf.field]
    current: Any = record.get(leaf.field)
    operator, value = leaf.operator, leaf.value
    if operator in ("=", "!="):
        equal = not _is_set(current) if value in (False, None) else current == value
        return equal if operator == "=" else not equal
    if operator in ("in", "not in"):
        wanted = list(value)
        found = current in wanted or (not _is_set(current) and False in wanted)
        return found if operator == "in" else not found
    if operator in ("<", ">", "<=", ">="):
        if not _is_set(current) and field.type not in ("integer", "float"):
            return False
        try:
            return bool(_COMPARISONS[operator](current, value))
        except TypeError:
            return False
    # like / ilike and their negations and =like / =ilike: SQL patterns, on the target's name for a many2one.
    text = current
    if field.type == "many2one":
        text = names(field.relation or "", int(current)) if _is_set(current) else ""
    negated = operator.startswith("not ")
    base = operator.removeprefix("not ")
    if value in (False, None):
        found = not _is_set(text)
    else:
        pattern = str(value) if base.startswith("=") else f"%{value}%"
        found = _is_set(text) and _like(pattern, str(text), insensitive=base.endswith("ilike"))
    return not found if negated else found


def _like(pattern: str, text: str, *, insensitive: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    flags = re.IGNORECASE | re.DOTALL if insensitive else re.DOTALL
    return re.fullmatch(regex, text, flags) is not None
