"""What the runner tells the metrics (`modelarts_operator.metrics`): each reconcile and finalizer run
with its result and duration, each object's Ready reason, and training jobs as they end. Translating
statuses here keeps the metrics module free of the API types and the reconcilers free of metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelarts_operator import metrics
from modelarts_operator.api.conditions import find_condition
from modelarts_operator.cloud.resources import TERMINAL_JOB_PHASES
from modelarts_operator.controller.context import Resource
from modelarts_operator.controller.errors import (
    CleanupFailed,
    DependencyFailed,
    ReconcileError,
    RetryLater,
    WaitingForDependency,
)

TERMINAL_PHASES = frozenset(phase.value for phase in TERMINAL_JOB_PHASES)


def reconcile_result(error: Exception | None) -> str:
    """One of ok, waiting (a dependency is not Ready yet), failed (stopped for good until the spec or a
    dependency changes), error (retried soon: the cloud, credentials, Kubernetes, a bug)."""
    if error is None:
        return "ok"
    if isinstance(error, WaitingForDependency):
        return "waiting"
    if isinstance(error, DependencyFailed) or (isinstance(error, ReconcileError) and error.reason.terminal):
        return "failed"
    return "error"


@dataclass
class Run:
    error: Exception | None = None


@contextmanager
def reconcile_run(kind: str) -> Iterator[Run]:
    """Time a reconcile; the caller sets `run.error` when the reconciler raised. An exception that leaves
    the block (the status write failed) counts as an error."""
    run, started, result = Run(), time.monotonic(), "error"
    try:
        yield run
        result = reconcile_result(run.error)
    finally:
        metrics.reconciled(kind, result, time.monotonic() - started)


@contextmanager
def finalizer_run(kind: str, uid: str) -> Iterator[None]:
    """Time a finalizer run and keep the object among the pending ones until a run finishes: done, or
    waiting (RetryLater: the cloud side is going), or error (CleanupFailed or anything else)."""
    metrics.TRACKER.finalizing(uid, kind)
    started, result = time.monotonic(), "error"
    try:
        yield
        result = "done"
        metrics.TRACKER.gone(uid)
    except RetryLater as exc:
        result = "error" if isinstance(exc, CleanupFailed) else "waiting"
        raise
    finally:
        metrics.finalized(kind, result, time.monotonic() - started)


def status_written(res: Resource, before: dict, after: dict) -> None:
    """After a reconcile's status is stored (or found unchanged), from the status it started with to the
    one it wrote: the object's Ready reason, and for a training job that has just ended, its running time
    and accuracy, observed once (every later reconcile, after a restart too, starts from an ended job)."""
    ready = find_condition(after, "Ready")
    status, reason = ready.get("status") or "Unknown", ready.get("reason") or "Unknown"
    metrics.TRACKER.ready(res.uid, res.kind.kind, status, reason)
    if res.kind.kind == "TrainingJob":
        _training_job(before, after)


def _training_job(before: dict, after: dict) -> None:
    phase = after.get("phase")
    if phase in TERMINAL_PHASES and before.get("phase") not in TERMINAL_PHASES:
        metrics.TRAINING_SECONDS.labels(phase).observe(after.get("durationSeconds") or 0)
    accuracy = (after.get("metrics") or {}).get("accuracy")
    if isinstance(accuracy, int | float) and (before.get("metrics") or {}).get("accuracy") is None:
        metrics.TRAINING_ACCURACY.observe(accuracy)
