"""Runs a kind's reconcile or finalize for one object: parsing, error-to-condition mapping, the one
status write per reconcile (none when nothing changed), events, and when to look again.

Reconcilers raise; this module turns every failure into conditions a user can read, so the Kopf
wiring stays thin and nothing here depends on Kopf.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelarts_operator.api.conditions import (
    Cond,
    Reason,
    find_condition,
    merge_conditions,
    not_ready,
    not_synced,
    synced,
)
from modelarts_operator.cloud import CloudError, CredentialsError, ErrorKind
from modelarts_operator.controller import telemetry
from modelarts_operator.controller.base import KindController
from modelarts_operator.controller.context import (
    Context,
    Outcome,
    Requeue,
    Resource,
    dump_status,
    status_patch,
)
from modelarts_operator.controller.errors import (
    CleanupFailed,
    DependencyFailed,
    ReconcileError,
    RetryLater,
    WaitingForDependency,
)
from modelarts_operator.controller.settings import ABANDON_ANNOTATION

log = logging.getLogger(__name__)

EventPoster = Callable[[str, str, str], None]  # (Normal|Warning, reason, message)

CLOUD_REASONS = {ErrorKind.AUTH: Reason.UNAUTHORIZED, ErrorKind.THROTTLED: Reason.CLOUD_UNAVAILABLE,
                 ErrorKind.TRANSIENT: Reason.CLOUD_UNAVAILABLE, ErrorKind.QUOTA: Reason.QUOTA_EXCEEDED}


def invalid_spec_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = "spec." + ".".join(str(p) for p in error["loc"]) if error["loc"] else "spec"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(controller: KindController, body: dict) -> Resource:
    kind = controller.kind
    try:
        spec = kind.spec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise ReconcileError(invalid_spec_message(exc), Reason.INVALID_SPEC) from None
    return Resource.from_body(kind, body, spec)


def error_outcome(exc: Exception, ready_known: bool = True) -> Outcome:
    """Conditions and requeue for a reconcile that could not finish (pure: unit-tested for every failure).
    A passing cloud fault keeps the Ready an object has; one that has none yet gets Ready=False."""
    message = str(exc)
    if isinstance(exc, WaitingForDependency):
        return Outcome([not_ready(exc.reason, message), synced(f"waiting: {message}")], requeue=Requeue.FAST)
    if isinstance(exc, DependencyFailed):  # may heal when the dependency is fixed: look again now and then
        return Outcome([not_ready(exc.reason, message), synced(f"waiting: {message}")], requeue=Requeue.STABLE)
    if isinstance(exc, ReconcileError):
        requeue = Requeue.TERMINAL if exc.reason.terminal else Requeue.FAST
        return Outcome([not_ready(exc.reason, message), not_synced(exc.reason, message)], requeue=requeue)
    if isinstance(exc, CredentialsError):
        reason = Reason.INVALID_CREDENTIALS
        return Outcome([not_ready(reason, message), not_synced(reason, message)], requeue=Requeue.FAST)
    if isinstance(exc, CloudError):
        reason = CLOUD_REASONS.get(exc.kind, Reason.CLOUD_REJECTED)
        outcome = Outcome([not_synced(reason, message)], requeue=Requeue.FAST)
        if exc.kind not in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT) or not ready_known:
            outcome.conditions.insert(0, not_ready(reason, message))
        return outcome
    if isinstance(exc, ApiException):
        return Outcome([not_synced(Reason.KUBERNETES_ERROR, f"Kubernetes API: {exc.status} {exc.reason}")],
                       requeue=Requeue.FAST)
    return Outcome([not_synced(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")], requeue=Requeue.FAST)


def expected(exc: Exception) -> bool:
    """Failures that are conditions, not bugs: no traceback in the log."""
    return isinstance(exc, ReconcileError | CloudError | CredentialsError)


def final_status(res: Resource, conditions: list[Cond]) -> dict:
    """The whole status after a reconcile: the kind's fields, merged conditions, observedGeneration and
    the message that says what is wrong (Synced=False) or what is happening (Ready)."""
    status = dump_status(res.status)
    status["observedGeneration"] = res.generation
    status["conditions"] = merge_conditions(res.stored.get("conditions"), conditions, res.generation)
    synced_now, ready_now = find_condition(status, "Synced"), find_condition(status, "Ready")
    problem = synced_now if synced_now.get("status") == "False" else ready_now
    if problem:
        status["message"] = problem.get("message")
    return status


def way_out(res: Resource, secret: str) -> str:
    """How a user finishes a deletion that cannot reach the cloud."""
    return (f"To finish: fix or restore the Secret {res.namespace}/{secret} (the cloud side may still exist), "
            f"or leave the cloud side in place: kubectl annotate {res.kind.singular} {res.name} "
            f"{ABANDON_ANNOTATION}=true")


def reasons(status: dict) -> tuple[str | None, str | None]:
    return find_condition(status, "Ready").get("reason"), find_condition(status, "Synced").get("reason")


class Runner:
    def __init__(self, ctx: Context, controllers: dict[str, KindController]):
        self.ctx = ctx
        self.controllers = controllers

    def reconcile(self, kind: str, body: dict, post: EventPoster, lock: threading.Lock | None = None) -> Outcome:
        """Reconcile one object and write its status if it changed; never raises for cloud or spec problems."""
        controller = self.controllers[kind]
        with lock or threading.Lock(), telemetry.reconcile_run(kind) as run:
            res = None
            try:
                res = parse(controller, body)
                outcome = controller.reconcile(res, self.ctx)
            except Exception as exc:  # every failure becomes a readable condition
                run.error = exc
                if not expected(exc):
                    log.exception("reconcile of %s %s failed", kind, body["metadata"].get("name"))
                outcome = error_outcome(exc, ready_known=bool(find_condition(body.get("status"), "Ready")))
            if res is None:  # the spec did not parse: keep the stored status, set the conditions
                res = Resource.from_body(controller.kind, body, None)
            status = self._write(res, outcome, post)
            telemetry.status_written(res, body.get("status") or {}, status)
            return outcome

    def _write(self, res: Resource, outcome: Outcome, post: EventPoster) -> dict:
        """Store the status if it changed, post the events; returns the status as it now is."""
        status = final_status(res, outcome.conditions)
        patch = status_patch(res.stored, status)
        if patch:
            self.ctx.kube.patch_status(res.kind, res.namespace, res.name, patch)
        for event in outcome.events:
            post(*event)
        failing = [c for c in outcome.conditions if c.status == "False" and not c.reason.progress]
        said = {reason for _, reason, _ in outcome.events}
        if failing and reasons(res.stored) != reasons(status) and failing[0].reason.value not in said:
            # say it once, when it starts (unless the reconciler just said it in its own words)
            post("Warning", failing[0].reason.value, failing[0].message)
        return status

    def finalize(self, kind: str, body: dict, post: EventPoster, lock: threading.Lock | None = None) -> None:
        """Clean up the cloud side per deletionPolicy; raise RetryLater while it is not finished.
        Once it is, the credentials Secret is released if no other object needs it."""
        metadata = body["metadata"]
        with telemetry.finalizer_run(kind, metadata["uid"]):
            with lock or threading.Lock():
                self._clean_up(self.controllers[kind], body, post)
            secret = self.ctx.clients.secret_of(body.get("spec") or {})
            try:
                self.ctx.clients.release(metadata["namespace"], secret, metadata["uid"])
            except ApiException as exc:  # the clean-up is idempotent: run it again later
                raise CleanupFailed(f"releasing the credentials Secret: {exc.status} {exc.reason}",
                                    self.ctx.settings.poll_fast_s) from None

    def _clean_up(self, controller: KindController, body: dict, post: EventPoster) -> None:
        try:
            res = parse(controller, body)
        except ReconcileError as exc:  # an object that never passed validation created nothing
            post("Warning", "InvalidSpec", f"deleted without cloud clean-up: {exc}")
            return
        if res.spec.deletion_policy == "Retain":
            post("Normal", "Retained", "deletionPolicy Retain: cloud resources left in place")
            return
        if (body["metadata"].get("annotations") or {}).get(ABANDON_ANNOTATION) == "true":
            post("Warning", "Abandoned", f"{ABANDON_ANNOTATION}=true: cloud resources left in place, not deleted")
            return
        try:
            summary = controller.finalize(res, self.ctx)
        except Exception as exc:
            message = f"cleanup failed, will retry: {exc}. {way_out(res, self.ctx.clients.secret_of(body.get('spec') or {}))}"
            if not expected(exc):
                log.exception("finalizer of %s %s failed", controller.kind.kind, res.name)
            self._patch_deleting(res, message, [not_synced(Reason.DELETE_FAILED, message)])
            post("Warning", "DeleteFailed", message)
            raise CleanupFailed(message, self.ctx.settings.poll_fast_s * 2) from None
        if summary is None:
            self._patch_deleting(res, "deleting the cloud side, waiting until it is gone", [])
            raise RetryLater("waiting for the cloud side to be deleted", self.ctx.settings.poll_fast_s)
        post("Normal", "Deleted", summary)

    def _patch_deleting(self, res: Resource, message: str, conditions: list[Cond]) -> None:
        patch = status_patch(res.stored, {
            "message": message,
            "conditions": merge_conditions(res.stored.get("conditions"), conditions, res.generation),
        })
        if patch:
            self.ctx.kube.patch_status(res.kind, res.namespace, res.name, patch)
