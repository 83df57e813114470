"""Fault injection and request counters, shared by the API thread and the caller's thread.

A fault rule gives, for one operation (or all: key "*"), the probability of a 429 answer, of a
500 answer, and a latency added before answering. An operation's own rule replaces the "*" rule.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass

ALL = "*"


@dataclass(frozen=True)
class FaultRule:
    error_429: float = 0.0
    error_500: float = 0.0
    latency_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("error_429", "error_500"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
        if self.error_429 + self.error_500 > 1.0:
            raise ValueError("error_429 + error_500 must not exceed 1")
        if not isinstance(self.latency_ms, int) or isinstance(self.latency_ms, bool) or self.latency_ms < 0:
            raise ValueError(f"latency_ms must be a non-negative integer, not {self.latency_ms!r}")


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self._counters: Counter[str] = Counter()
        self._random = random.Random(seed)

    def set(self, operation: str | None, rule: FaultRule) -> None:
        """Set the rule of one operation (None = the default for all); an all-zero rule clears it."""
        key = operation or ALL
        with self._lock:
            if operation is None:
                self._rules.clear()  # "all operations" replaces every specific rule too
            if rule == FaultRule():
                self._rules.pop(key, None)
            else:
                self._rules[key] = rule

    def rules(self) -> dict[str, dict]:
        with self._lock:
            return {key: asdict(rule) for key, rule in self._rules.items()}

    def draw(self, operation: str) -> tuple[int, int | None]:
        """Count one request of `operation`; return (latency in ms, injected status or None)."""
        with self._lock:
            self._counters[operation] += 1
            rule = self._rules.get(operation) or self._rules.get(ALL) or FaultRule()
            roll = self._random.random()
        if roll < rule.error_429:
            return rule.latency_ms, 429
        if roll < rule.error_429 + rule.error_500:
            return rule.latency_ms, 500
        return rule.latency_ms, None

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def reset_counters(self) -> None:
        with self._lock:
            self._counters.clear()
