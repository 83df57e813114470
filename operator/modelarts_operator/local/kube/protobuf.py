"""Just enough Kubernetes protobuf to read what kubectl's typed clients send.

`kubectl create secret|configmap|namespace` post protobuf bodies and client-go does not fall
back to JSON, so those three kinds are decoded here; everything else must come as JSON.
"""

from __future__ import annotations

import base64
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs; length-delimited values stay bytes."""
    fields, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            size, position = _varint(data, position)
            value, position = data[position:position + size], position + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = data[position:position + size], position + size
        else:
            raise ValueError(f"illegal wireType {wire}")
        fields.append((number, value))
    return fields


def _map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    result = {}
    for entry in entries:
        pair = dict(_fields(entry))
        value = pair.get(2, b"")
        result[pair.get(1, b"").decode()] = base64.b64encode(value).decode() if binary else value.decode()
    return result


def _group(fields: list[tuple[int, Any]]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for number, value in fields:
        grouped.setdefault(number, []).append(value)
    return grouped


def _metadata(data: bytes) -> dict[str, Any]:
    f = _group(_fields(data))
    meta: dict[str, Any] = {}
    for number, name in ((1, "name"), (2, "generateName"), (3, "namespace"), (6, "resourceVersion")):
        if f.get(number, [b""])[-1]:
            meta[name] = f[number][-1].decode()
    if 11 in f:
        meta["labels"] = _map(f[11])
    if 12 in f:
        meta["annotations"] = _map(f[12])
    if 14 in f:
        meta["finalizers"] = [v.decode() for v in f[14]]
    return meta


def _configmap(f: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in f:
        obj["data"] = _map(f[2])
    if 3 in f:
        obj["binaryData"] = _map(f[3], binary=True)
    if 4 in f:
        obj["immutable"] = bool(f[4][-1])
    return obj


def _secret(f: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in f:
        obj["data"] = _map(f[2], binary=True)
    if 3 in f:
        obj["type"] = f[3][-1].decode()
    if 4 in f:
        obj["stringData"] = _map(f[4])
    if 5 in f:
        obj["immutable"] = bool(f[5][-1])
    return obj


def _namespace(f: dict[int, list[Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if 2 in f:
        finalizers = [v.decode() for n, v in _fields(f[2][-1]) if n == 1]
        obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    return obj


_KINDS = {"ConfigMap": _configmap, "Secret": _secret, "Namespace": _namespace}


def decode(body: bytes, expected_kind: str = "") -> dict[str, Any]:
    """A ConfigMap, Secret or Namespace from its protobuf body; other kinds answer 415 (the real
    server would decode them: send JSON), bodies that are not protobuf at all 400, as there."""
    def unrecognized(why: str) -> ApiError:
        return ApiError(400, "BadRequest", f"the object provided is unrecognized (must be of type {expected_kind}): "
                                           f"proto: {why} ({body[:32].hex()})")

    if not body.startswith(MAGIC):
        raise unrecognized("no Kubernetes protobuf envelope")
    try:
        envelope = _group(_fields(body[len(MAGIC):]))
        type_meta = dict(_fields(envelope.get(1, [b""])[-1]))
        api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
    except (ValueError, UnicodeDecodeError) as error:
        raise unrecognized(str(error)) from error
    if kind not in _KINDS:
        raise ApiError(415, "UnsupportedMediaType", f"the emulator decodes no protobuf {kind!r}; send application/json")
    try:
        fields = _group(_fields(envelope.get(2, [b""])[-1]))
        obj = {"apiVersion": api_version, "kind": kind, "metadata": _metadata(fields.get(1, [b""])[-1])}
        obj.update(_KINDS[kind](fields))
    except (ValueError, UnicodeDecodeError) as error:
        raise unrecognized(str(error)) from error
    return obj
