"""What a reconcile or finalizer raises when it cannot go on: each error carries its reason and
whether it is expected (a condition, no traceback). The runner turns them into conditions."""

from __future__ import annotations

from modelarts_operator.api.conditions import Reason


class ReconcileError(Exception):
    """Expected: shown as Ready=False/Synced=False with `reason` and the message, never as a traceback."""

    reason: Reason = Reason.INTERNAL_ERROR

    def __init__(self, message: str, reason: Reason | None = None):
        if reason is not None:
            self.reason = reason
        super().__init__(message)


class ResourceProblem(ReconcileError):
    """The resource cannot progress until its spec or surroundings change."""


class WaitingForDependency(ReconcileError):
    """A referenced resource is missing or not Ready yet."""

    reason = Reason.WAITING_FOR_DEPENDENCY


class DependencyFailed(ReconcileError):
    """A referenced resource failed for good: waiting will not help."""

    reason = Reason.DEPENDENCY_FAILED


class SecretMissing(ReconcileError):
    reason = Reason.CREDENTIALS_MISSING


class RetryLater(Exception):
    """Clean-up is under way or failed; the finalizer stays and runs again after `delay` seconds."""

    def __init__(self, message: str, delay: float):
        self.delay = delay
        super().__init__(message)


class CleanupFailed(RetryLater):
    """Clean-up failed (not merely under way): the same retry, counted as an error in the metrics."""
