"""Request-body checks that answer 400 (ModelArts.0104) naming the offending field."""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def obj(value: Any, where: str, required: bool = True) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{where} must be an object" if value is not None else f"{where} is required")
    return value


def array(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{where} must be an array")
    return value


def string(parent: dict, key: str, where: str, required: bool = True, pattern: re.Pattern | None = None) -> str | None:
    value = parent.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(f"{where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{where}.{key} must be a string")
    if pattern is not None and not pattern.match(value):
        raise bad_request(f"{where}.{key} {value!r} does not match {pattern.pattern}")
    return value


def integer(parent: dict, key: str, where: str, default: int, low: int, high: int) -> int:
    value = parent.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # ModelArts' own examples send numbers as strings ("weight": "100")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"{where}.{key} must be an integer from {low} to {high}, not {value!r}")
    return value


def query_int(query, key: str, default: int, low: int, high: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter {key} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise bad_request(f"query parameter {key} must be from {low} to {high}, not {value}")
    return value


def paging(query, default_limit: int, max_limit: int) -> tuple[int, int, str]:
    """offset, limit and order (asc|desc) of a list request, each checked."""
    offset = query_int(query, "offset", 0, 0, 10**9)
    limit = query_int(query, "limit", default_limit, 1, max_limit)
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise bad_request(f"query parameter order must be asc or desc, not {order!r}")
    return offset, limit, order
