"""Deterministic cloud names: the same Kubernetes object always maps to the same cloud name, so a
crash between "created" and "recorded in status" is healed by a lookup, never by a second create."""

from __future__ import annotations

import re

MAX_NAME = 64  # ModelArts names: 1-64 letters, digits, hyphens, underscores


def cloud_name(namespace: str, name: str, uid: str, max_length: int = MAX_NAME) -> str:
    """`<namespace>-<name>-<first 8 of uid>`, cut to fit; the uid part keeps re-created objects apart."""
    suffix = re.sub(r"[^0-9a-z]", "", uid.lower())[:8]
    if not suffix:
        raise ValueError("an object uid is needed to name its cloud resource")
    stem = re.sub(r"[^0-9A-Za-z_-]+", "-", f"{namespace}-{name}").strip("-_") or "resource"
    stem = stem[: max_length - len(suffix) - 1].rstrip("-_")
    return f"{stem}-{suffix}"
