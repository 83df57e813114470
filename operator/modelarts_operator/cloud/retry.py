"""Bounded retries with exponential backoff and full jitter, and a concurrency limit per endpoint.
Every attempt's outcome and every retry is counted in the metrics (docs/metrics.md)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from modelarts_operator import metrics
from modelarts_operator.cloud.errors import CloudError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    # Bounded to seconds: a reconcile thread must not sleep through throttling while other objects
    # wait for a worker; the reconcile's next requeue is the retry (level-triggered).
    attempts: int = 4  # calls in all, the first included
    base_delay_s: float = 0.5
    max_delay_s: float = 4.0
    deadline_s: float = 10.0  # no new attempt starts after this much time
    max_concurrent_per_endpoint: int = 8

    def delay(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog): spreads a burst of throttled clients apart."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** attempt))


DEFAULT_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)

_limits: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_limits_lock = threading.Lock()


def endpoint_slot(endpoint: str, limit: int) -> threading.BoundedSemaphore:
    """One semaphore per endpoint, shared by every client in the process."""
    with _limits_lock:
        return _limits.setdefault((endpoint, limit), threading.BoundedSemaphore(limit))


def with_retries(operation: str, call: Callable[[], T], policy: RetryPolicy, sleep=time.sleep, *,
                 service: str, api_call: bool = True) -> T:
    """Run `call`, retrying CloudErrors that are retryable until attempts or the deadline run out.
    Each attempt counts as one call of `service` (modelarts, obs) with its outcome, unless `api_call` is
    False: a step made of other calls (find-or-create), whose own calls are counted where they are made."""
    started = time.monotonic()
    for attempt in range(policy.attempts):
        began = time.monotonic()
        try:
            answer = call()
        except CloudError as exc:
            outcome = exc.kind.name.lower()  # not_found, throttled, auth, ...: a fixed set
            if api_call:
                metrics.cloud_call(service, operation, outcome, time.monotonic() - began)
            delay = policy.delay(attempt)
            last = attempt + 1 >= policy.attempts or time.monotonic() - started + delay > policy.deadline_s
            if not exc.retryable or last:
                raise
            metrics.CLOUD_RETRIES.labels(service, outcome).inc()
            log.info("%s: %s; retry %d/%d in %.2fs", operation, exc.kind.value, attempt + 1, policy.attempts - 1, delay)
            sleep(delay)
        except Exception:  # not a classified cloud answer: a bug, counted so that it shows
            if api_call:
                metrics.cloud_call(service, operation, "internal", time.monotonic() - began)
            raise
        else:
            if api_call:
                metrics.cloud_call(service, operation, "ok", time.monotonic() - began)
            return answer
    raise AssertionError("unreachable: the loop returns or raises")
