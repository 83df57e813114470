"""Label and field selectors, parsed into predicates on objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_LABEL_TERM = re.compile(
    r"""^\s*(?:
        (?P<not>!)\s*(?P<absent>[\w./-]+)
      | (?P<setkey>[\w./-]+)\s+(?P<setop>in|notin)\s+\((?P<values>[^)]*)\)
      | (?P<key>[\w./-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)
      | (?P<exists>[\w./-]+)
    )\s*$""",
    re.X,
)


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c`)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def label_selector(selector: str | None) -> Predicate:
    if not selector:
        return lambda obj: True
    checks: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_terms(selector):
        m = _LABEL_TERM.match(term)
        if not m:
            raise bad_request(f'unable to parse requirement: found {term.strip()!r}, expected: key, !key, key=value or key in (values)')
        if m["absent"]:
            checks.append(lambda labels, k=m["absent"]: k not in labels)
        elif m["setkey"]:
            values = {v.strip() for v in m["values"].split(",") if v.strip()}
            if m["setop"] == "in":
                checks.append(lambda labels, k=m["setkey"], vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=m["setkey"], vs=values: labels.get(k) not in vs)
        elif m["key"]:
            if m["op"] == "!=":
                checks.append(lambda labels, k=m["key"], v=m["value"]: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=m["key"], v=m["value"]: labels.get(k) == v)
        else:
            checks.append(lambda labels, k=m["exists"]: k in labels)

    def accepts(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return accepts


def field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def field_selector(selector: str | None) -> Predicate:
    """Field selectors on any dotted path (the real server allows only a few per type)."""
    if not selector:
        return lambda obj: True
    checks: list[Predicate] = []
    for term in _split_terms(selector):
        m = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        path, op, value = m.groups()
        if op == "!=":
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) != v)
        else:
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) == v)
    return lambda obj: all(check(obj) for check in checks)
