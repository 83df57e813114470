"""The three patch formats kubectl and Kopf send: JSON merge, JSON (RFC 6902) and strategic merge."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

# Strategic merge metadata of the built-in types served here: lists merged by key, and
# primitive lists merged as sets; all other lists are replaced, like in a merge patch.
_MERGE_KEYS = {"ownerReferences": "uid", "conditions": "type", "managedFields": "manager"}
_SET_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(name: str, current: list[Any], patch: list[Any]) -> list[Any]:
    merge_key = _MERGE_KEYS.get(name)
    if name in _SET_LISTS:
        merged = current + [v for v in patch if v not in current]
        identity: Any = lambda item: item  # noqa: E731
    elif merge_key:
        merged = list(current)
        identity = lambda item: item.get(merge_key) if isinstance(item, dict) else item  # noqa: E731
        for item in patch:
            index = next((i for i, c in enumerate(merged) if identity(c) == identity(item)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    merged.pop(index)
            elif index is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[index] = strategic_merge_patch(merged[index], item)
        patch = [item for item in patch if item.get("$patch") != "delete"]
    else:
        return copy.deepcopy(patch)
    return _order(merged, patch, current, identity)


def _order(merged: list[Any], patch: list[Any], current: list[Any], identity: Any) -> list[Any]:
    """The real server's element order (normalizeElementOrder): the patch's items in the patch's
    order, the server-only items in the live order, interleaved where the live order relates them,
    else the patch's item first."""
    patch_ids = [identity(p) for p in patch]
    live_ids = [identity(c) for c in current]
    in_patch = sorted((m for m in merged if identity(m) in patch_ids), key=lambda m: patch_ids.index(identity(m)))
    server_only = sorted((m for m in merged if identity(m) not in patch_ids),
                         key=lambda m: live_ids.index(identity(m)) if identity(m) in live_ids else len(live_ids))
    result, i, j = [], 0, 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            result.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            result.append(in_patch[j])
            j += 1
        else:
            left, right = identity(server_only[i]), identity(in_patch[j])
            if left in live_ids and right in live_ids and live_ids.index(left) < live_ids.index(right):
                result.append(server_only[i])
                i += 1
            else:
                result.append(in_patch[j])
                j += 1
    return result


def _invalid(why: str) -> ApiError:
    """A JSON patch that does not apply. `why` is for readers of this code: the real server says no
    more than the generic message to clients."""
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request", {})


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid(f"add operation does not apply: doc is missing path: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise _invalid(f"doc is missing path: {path!r}: missing value")
    return doc


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _invalid(f"add operation does not apply: doc is missing path: {path!r}")
    else:
        raise _invalid(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise _invalid("remove operation does not apply: the root cannot be removed")
    parent = _resolve(doc, parts[:-1], path)
    removed = _resolve(parent, parts[-1:], path)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        parent.pop(int(parts[-1]))
    return removed


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict):
            raise ApiError(400, "BadRequest", "error decoding patch: json: cannot unmarshal into Go value of type handlers.jsonPatchOp")
        kind, path = op.get("op"), op.get("path", "")
        if not isinstance(path, str):
            raise _invalid(f"invalid path {path!r}")
        op = {"value": None, **op}  # a missing value is null, as in the Go JSON patch library
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _resolve(doc, _pointer(path), path)
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "test":
            if _resolve(doc, _pointer(path), path) != op["value"]:
                raise _invalid(f"testing value {path} failed")
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            value = copy.deepcopy(_resolve(doc, _pointer(source), source))
            if kind == "move":
                _remove(doc, source)
            doc = _add(doc, path, value)
        else:
            raise _invalid(f"unexpected JSON patch operation: {kind!r}")
    return doc
