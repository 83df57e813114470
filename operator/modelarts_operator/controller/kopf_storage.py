"""Kopf's annotation storages, made tolerant of garbage: anyone with `kubectl annotate` can write into
the operator's own annotations (last-handled-configuration, the handlers' progress records). Stock
Kopf fails to parse them on every event, with a traceback, and never reconciles the object again. Here
an unreadable record counts as absent (with one warning line, no traceback): Kopf then treats the
object as new to it and writes a good record over the bad one, which repairs it."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import kopf

log = logging.getLogger(__name__)

_TIMES = ("started", "stopped", "delayed")
_TYPES = {"purpose": str, "message": str, "retries": int, "success": bool, "failure": bool, "subrefs": list}


def _decode(encoded: Any) -> Any:
    if not isinstance(encoded, str):
        return None
    try:
        return json.loads(encoded)
    except ValueError:
        return None


def valid_progress(record: Any) -> bool:
    """A progress record Kopf can use: a mapping of known fields, each of its type or null."""
    if not isinstance(record, dict):
        return False
    for name, value in record.items():
        if value is None:
            continue
        if name in _TIMES:
            try:
                datetime.datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return False
        elif name not in _TYPES or not isinstance(value, _TYPES[name]) or (
                _TYPES[name] is int and isinstance(value, bool)):
            return False
    return True


def _warn(body: Any, key: str) -> None:
    metadata = body.get("metadata", {})
    log.warning("%s/%s: ignoring the unreadable annotation %s (it is rewritten at the next change)",
                metadata.get("namespace"), metadata.get("name"), key)


class TolerantDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def fetch(self, *, body):
        for full_key in self.make_keys(self.key, body=body):
            encoded = body.metadata.annotations.get(full_key)
            if encoded is None:
                continue
            decoded = _decode(encoded)
            if isinstance(decoded, dict):
                return decoded
            _warn(body, full_key)
        return None


class TolerantProgressStorage(kopf.AnnotationsProgressStorage):
    def fetch(self, *, key, body):
        for full_key in self.make_keys(key, body=body):
            encoded = body.metadata.annotations.get(full_key)
            if encoded is None:
                continue
            decoded = _decode(encoded)
            if valid_progress(decoded):
                return decoded
            _warn(body, full_key)
        return None
