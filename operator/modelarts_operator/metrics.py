"""The operator's Prometheus metrics: their definitions, the registry that /metrics serves, and the
bookkeeping behind the two gauges. Every label is a bounded set (kinds, Ready reasons, operation names,
error kinds, results), never a namespace, a name or an id. What each metric means: docs/metrics.md.

The lowest layer: the cloud clients and the controller both record here; nothing here imports them.
"""

from __future__ import annotations

import re
import threading
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "modelarts_operator"

# Our own registry, not the library's global one: /metrics shows this operator and nothing an imported
# library may register. The process, platform and GC collectors are added on purpose: memory, CPU,
# open files and threads of a process that runs for months are what a leak shows in first.
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# A reconcile uploads files or waits for a cloud answer: up to a minute is normal, more is worth a look.
RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CLOUD_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# The local stack trains for seconds, ModelArts for minutes to hours; 30 days is the maxRuntime bound.
TRAINING_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 2592000)
ACCURACY_BUCKETS = (0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0)

RECONCILES = Counter(f"{PREFIX}_reconciles", "Reconciles run, by kind and result.", ["kind", "result"],
                     registry=REGISTRY)
RECONCILE_SECONDS = Histogram(f"{PREFIX}_reconcile_duration_seconds", "Time one reconcile took, status write "
                              "included.", ["kind"], buckets=RECONCILE_BUCKETS, registry=REGISTRY)
FINALIZER_RUNS = Counter(f"{PREFIX}_finalizer_runs", "Finalizer runs (clean-up of a deleted object), by kind "
                         "and result.", ["kind", "result"], registry=REGISTRY)
FINALIZER_SECONDS = Histogram(f"{PREFIX}_finalizer_duration_seconds", "Time one finalizer run took.",
                              ["kind"], buckets=RECONCILE_BUCKETS, registry=REGISTRY)
CLOUD_CALLS = Counter(f"{PREFIX}_cloud_api_calls", "Cloud API calls (each attempt), by service, operation "
                      "and outcome.", ["service", "operation", "outcome"], registry=REGISTRY)
CLOUD_CALL_SECONDS = Histogram(f"{PREFIX}_cloud_api_call_duration_seconds", "Time one cloud API call took, "
                               "waiting for the endpoint's concurrency slot included.", ["service"],
                               buckets=CLOUD_CALL_BUCKETS, registry=REGISTRY)
CLOUD_RETRIES = Counter(f"{PREFIX}_cloud_api_retries", "Cloud calls or steps retried after a retryable "
                        "failure, by service and reason.", ["service", "reason"], registry=REGISTRY)
TRAINING_SECONDS = Histogram(f"{PREFIX}_training_job_duration_seconds", "Running time of training jobs, "
                             "observed once when a job ends, by its final phase.", ["phase"],
                             buckets=TRAINING_BUCKETS, registry=REGISTRY)
TRAINING_ACCURACY = Histogram(f"{PREFIX}_training_job_accuracy_ratio", "Test accuracy (0 to 1) of completed "
                              "training jobs, observed once per job.", buckets=ACCURACY_BUCKETS,
                              registry=REGISTRY)

_OPERATION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def operation_label(operation: str) -> str:
    """The operation names the clients pass are identifiers (`show_service`, `putFile`); anything else
    might carry a name or an id, so it is counted as `other`, never as a label value of its own."""
    return operation if _OPERATION.fullmatch(operation) else "other"


def cloud_call(service: str, operation: str, outcome: str, seconds: float) -> None:
    CLOUD_CALLS.labels(service, operation_label(operation), outcome).inc()
    CLOUD_CALL_SECONDS.labels(service).observe(seconds)


def reconciled(kind: str, result: str, seconds: float) -> None:
    RECONCILES.labels(kind, result).inc()
    RECONCILE_SECONDS.labels(kind).observe(seconds)


def finalized(kind: str, result: str, seconds: float) -> None:
    FINALIZER_RUNS.labels(kind, result).inc()
    FINALIZER_SECONDS.labels(kind).observe(seconds)


class ObjectTracker(Collector):
    """The last Ready (status, reason) of every object this process reconciled, and the objects whose
    finalizer has not finished, by uid. The two gauges are counted from it at each scrape, so an object
    that changes reason or goes away is never counted twice or left behind. A (kind, ...) seen once stays
    at 0 rather than vanishing, so alerts see a zero, not a gap."""

    TOMBSTONES = 4096  # uids finalized lately: a reconcile that raced the finalizer must not re-add them

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[str, tuple[str, str, str]] = {}  # uid -> (kind, Ready status, Ready reason)
        self._finalizing: dict[str, str] = {}  # uid -> kind
        self._gone: OrderedDict[str, None] = OrderedDict()
        self._seen_ready: set[tuple[str, str, str]] = set()
        self._seen_kinds: set[str] = set()

    def ready(self, uid: str, kind: str, status: str, reason: str) -> None:
        with self._lock:
            if uid in self._gone:
                return
            self._ready[uid] = (kind, status, reason)
            self._seen_ready.add((kind, status, reason))

    def finalizing(self, uid: str, kind: str) -> None:
        with self._lock:
            self._finalizing[uid] = kind
            self._seen_kinds.add(kind)

    def gone(self, uid: str) -> None:
        """The object's finalizer finished: it counts nowhere any more."""
        with self._lock:
            self._ready.pop(uid, None)
            self._finalizing.pop(uid, None)
            self._gone[uid] = None
            while len(self._gone) > self.TOMBSTONES:
                self._gone.popitem(last=False)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families({}, {})

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            ready = Tally(self._ready.values())
            ready.update(dict.fromkeys(self._seen_ready, 0))
            finalizing = Tally(self._finalizing.values())
            finalizing.update(dict.fromkeys(self._seen_kinds, 0))
        yield from self._families(ready, finalizing)

    @staticmethod
    def _families(ready: dict, finalizing: dict) -> Iterator[GaugeMetricFamily]:
        resources = GaugeMetricFamily(f"{PREFIX}_resources", "Objects by kind and Ready condition (status, "
                                      "reason), as last reconciled by this process.",
                                      labels=["kind", "ready", "reason"])
        for labels, count in sorted(ready.items()):
            resources.add_metric(list(labels), count)
        pending = GaugeMetricFamily(f"{PREFIX}_finalizers_pending", "Objects being deleted whose cloud "
                                    "clean-up has not finished, by kind.", labels=["kind"])
        for kind, count in sorted(finalizing.items()):
            pending.add_metric([kind], count)
        yield resources
        yield pending


TRACKER = ObjectTracker()
REGISTRY.register(TRACKER)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve REGISTRY at http://host:port/metrics from a daemon thread (prometheus_client's own server)."""
    start_http_server(port, addr=host, registry=REGISTRY)
