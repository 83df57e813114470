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


# The field labels each built-in type can be selected by (the real server's field label conversion
# functions), and the path of the value each stands for. Types not listed take only the two
# metadata labels, refused in the words of DefaultMetaV1FieldSelectorConversion.
_META = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}
_BUILTIN_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("", "secrets"): {**_META, "type": "type"},
    ("", "namespaces"): {"metadata.name": "metadata.name", "status.phase": "status.phase"},
    ("", "events"): {**_META, **{f"involvedObject.{f}": f"involvedObject.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": "reason", "reportingComponent": "reportingComponent", "source": "source.component", "type": "type"},
    ("events.k8s.io", "events"): {**_META, **{f"regarding.{f}": f"regarding.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": "reason", "reportingController": "reportingController", "type": "type"},
}


def selectable_fields(rt: Any, version: str) -> tuple[dict[str, str], bool]:
    """(field label -> path, whether unknown labels are refused in the short form)."""
    if rt.custom:
        fields = {"metadata.name": "metadata.name"}
        if rt.namespaced:
            fields["metadata.namespace"] = "metadata.namespace"
        for path in rt.selectable_fields.get(version, []):
            fields[path.lstrip(".")] = path.lstrip(".")
        return fields, True
    if rt.key in _BUILTIN_FIELDS:
        return _BUILTIN_FIELDS[rt.key], True
    return _META, False


def field_selector(selector: str | None, rt: Any = None, version: str = "") -> Predicate:
    """Field selectors on the labels the type supports (any dotted path when no type is given)."""
    if not selector:
        return lambda obj: True
    fields, short = selectable_fields(rt, version) if rt is not None else (None, True)
    checks: list[Predicate] = []
    for term in _split_terms(selector):
        m = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        label, op, value = m.groups()
        if fields is not None and label not in fields:
            if short:
                raise bad_request(f"field label not supported: {label}")
            raise bad_request(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        path = fields[label] if fields is not None else label
        if op == "!=":
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) != v)
        else:
            checks.append(lambda obj, p=path, v=value: field_value(obj, p) == v)
    return lambda obj: all(check(obj) for check in checks)
