"""Server-side tables (`Accept: application/json;as=Table;...`) for `kubectl get`."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from .discovery import ResourceType
from .errors import bad_request

_TOKEN = re.compile(r"""\.([\w-]+)|\[\s*(?:'([^']*)'|"([^"]*)"|(\d+)|(\*)|\?\((.*?)\))\s*\]|\.\*""")
_FILTER = re.compile(r"""^@((?:\.[\w-]+)+)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$""")


def jsonpath(expression: str, obj: Any) -> list[Any]:
    """Evaluate the JSONPath subset printer columns use: `.a.b`, `['k']`, `[0]`, `[*]`, `[?(@.x=="y")]`."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    expression = expression.removeprefix("$")
    nodes = [obj]
    position = 0
    while position < len(expression):
        m = _TOKEN.match(expression, position)
        if not m:
            raise bad_request(f"unrecognized JSONPath {expression!r} at {position}")
        position = m.end()
        field, quoted1, quoted2, index, _, condition = m.groups()
        name = field or quoted1 or quoted2
        found: list[Any] = []
        for node in nodes:
            if name is not None:
                if isinstance(node, dict) and name in node:
                    found.append(node[name])
            elif index is not None:
                if isinstance(node, list) and int(index) < len(node):
                    found.append(node[int(index)])
            elif condition is not None:
                items = node if isinstance(node, list) else list(node.values()) if isinstance(node, dict) else []
                found.extend(item for item in items if _test(condition, item))
            elif isinstance(node, list):  # [*] or .*
                found.extend(node)
            elif isinstance(node, dict):
                found.extend(node.values())
        nodes = found
    return nodes


def _test(condition: str, item: Any) -> bool:
    m = _FILTER.match(condition.strip())
    if not m:
        raise bad_request(f"unrecognized JSONPath filter {condition!r}")
    path, op, literal = m.groups()
    values = jsonpath(path, item)
    if op is None:
        return bool(values)
    if not values:
        return False
    literal = literal.strip()
    try:
        expected = json.loads(literal.replace("'", '"'))
    except ValueError:
        expected = literal
    actual = values[0]
    try:
        return {"==": actual == expected, "!=": actual != expected, "<": actual < expected,
                ">": actual > expected, "<=": actual <= expected, ">=": actual >= expected}[op]
    except TypeError:
        return False


def age(timestamp: str | None) -> str:
    """Human-readable age as the server renders `date` columns: 45s, 3m4s, 5h, 2d3h, 400d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    seconds = max(0, int((datetime.now(timezone.utc) - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}
# Built-in columns, as kubectl shows them for these types (besides NAME).
_BUILTIN_COLUMNS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("", "namespaces"): [{"name": "Status", "type": "string", "jsonPath": ".status.phase"}, _AGE],
    ("", "secrets"): [{"name": "Type", "type": "string", "jsonPath": ".type"},
                      {"name": "Data", "type": "integer", "jsonPath": ".data", "count": True}, _AGE],
    ("", "configmaps"): [{"name": "Data", "type": "integer", "jsonPath": ".data", "count": True}, _AGE],
    ("", "events"): [{"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp"},
                     {"name": "Type", "type": "string", "jsonPath": ".type"},
                     {"name": "Reason", "type": "string", "jsonPath": ".reason"},
                     {"name": "Object", "type": "string", "jsonPath": ".involvedObject", "reference": True},
                     {"name": "Message", "type": "string", "jsonPath": ".message"}],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        {"name": "Created At", "type": "date", "jsonPath": ".metadata.creationTimestamp", "absolute": True}],
}


# Types whose table has no Name column (kubectl shows events by what they are about).
_NAMELESS = {("", "events")}


def columns(rt: ResourceType, version: str) -> list[dict[str, Any]]:
    if rt.custom:
        return rt.columns.get(version) or [_AGE]
    return _BUILTIN_COLUMNS.get(rt.key, [_AGE])


def _cell(column: dict[str, Any], obj: dict[str, Any]) -> Any:
    values = jsonpath(column["jsonPath"], obj)
    if column.get("reference"):  # kind/name, as kubectl shows an event's object
        ref = values[0] if values and isinstance(values[0], dict) else {}
        return f"{ref.get('kind', '').lower()}/{ref.get('name', '')}"
    if column.get("count"):
        return len(values[0]) if values and isinstance(values[0], (dict, list)) else 0
    if not values or values[0] is None:
        return None
    value = values[0]
    kind = column.get("type")
    if kind == "date":
        return value if column.get("absolute") else age(value) if isinstance(value, str) else value
    if kind == "string":
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return value


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(rt: ResourceType, version: str, objects: list[dict[str, Any]], resource_version: str | None,
          include_object: str = "Metadata") -> dict[str, Any]:
    cols = columns(rt, version)
    named = rt.key not in _NAMELESS
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.",
                    "priority": 0}] if named else []
    definitions += [{"name": c["name"], "type": "string" if c.get("type") == "date" else c.get("type", "string"),
                     "format": c.get("format", ""), "description": c.get("description", ""), "priority": c.get("priority", 0)}
                    for c in cols]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": ([obj["metadata"]["name"]] if named else []) + [_cell(c, obj) for c in cols]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows}
