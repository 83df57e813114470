"""Runs a reconciler or finalizer for one object: parsing, locking, error-to-status mapping, status writes.

Reconcilers raise; this module turns every failure into conditions a user can read, so Kopf
handlers stay one line and nothing here depends on Kopf.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelarts_operator.api.kinds import ALGORITHM, MNIST_DATASET, SERVICE, TRAINING_JOB, Kind
from modelarts_operator.cloud import CloudError, CredentialsError, ErrorKind
from modelarts_operator.controller import algorithm, dataset, service, trainingjob
from modelarts_operator.controller import status as st
from modelarts_operator.controller.context import (
    Context,
    Outcome,
    Resource,
    ResourceProblem,
    WaitingForDependency,
)
from modelarts_operator.controller.kube import SecretMissing

log = logging.getLogger(__name__)

RECONCILERS = {MNIST_DATASET.kind: dataset, ALGORITHM.kind: algorithm, TRAINING_JOB.kind: trainingjob,
               SERVICE.kind: service}

EventPoster = Callable[[str, str, str], None]  # (Normal|Warning, reason, message)


class RetryLater(Exception):
    """Cleanup is under way or failed; the finalizer stays and the handler is retried after `delay`."""

    def __init__(self, message: str, delay: float):
        self.delay = delay
        super().__init__(message)


def invalid_spec_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = "spec." + ".".join(str(p) for p in error["loc"]) if error["loc"] else "spec"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse(kind: Kind, body: dict) -> Resource:
    metadata = body.get("metadata") or {}
    try:
        spec = kind.spec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise ResourceProblem("InvalidSpec", invalid_spec_message(exc)) from None
    return Resource(kind=kind, namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"],
                    generation=metadata.get("generation") or 0, spec=spec, status=dict(body.get("status") or {}))


def error_outcome(exc: Exception) -> Outcome:
    """Conditions for a reconcile that could not finish (pure: unit-tested for every kind of failure)."""
    outcome = Outcome(changing=True)
    if isinstance(exc, ResourceProblem):
        outcome.changing = exc.reason not in ("InvalidSpec",)
        outcome.conditions = [st.not_ready(exc.reason, str(exc)), st.not_synced(exc.reason, str(exc))]
    elif isinstance(exc, WaitingForDependency):
        outcome.conditions = [st.not_ready("WaitingForDependency", str(exc)),
                              st.synced(f"waiting: {exc}")]
    elif isinstance(exc, SecretMissing):
        outcome.conditions = [st.not_ready("CredentialsMissing", str(exc)), st.not_synced("CredentialsMissing", str(exc))]
    elif isinstance(exc, CredentialsError):
        outcome.conditions = [st.not_ready("InvalidCredentials", str(exc)),
                              st.not_synced("InvalidCredentials", str(exc))]
    elif isinstance(exc, CloudError):
        reason = {
            ErrorKind.AUTH: "Unauthorized", ErrorKind.THROTTLED: "CloudUnavailable",
            ErrorKind.TRANSIENT: "CloudUnavailable", ErrorKind.QUOTA: "QuotaExceeded",
        }.get(exc.kind, "CloudRejected")
        outcome.conditions = [st.not_synced(reason, str(exc))]
        if exc.kind not in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT):  # a passing fault keeps the Ready it had
            outcome.conditions.insert(0, st.not_ready(reason, str(exc)))
    elif isinstance(exc, ApiException):
        outcome.conditions = [st.not_synced("KubernetesError", f"Kubernetes API: {exc.status} {exc.reason}")]
    else:
        outcome.conditions = [st.not_synced("InternalError", f"{type(exc).__name__}: {exc}")]
    return outcome


class Runner:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def _write(self, kind: Kind, body: dict, outcome: Outcome, post: EventPoster) -> None:
        metadata = body["metadata"]
        previous = body.get("status") or {}
        status = dict(outcome.status)
        status["observedGeneration"] = metadata.get("generation")
        status["conditions"] = st.merge_conditions(previous.get("conditions"), outcome.conditions,
                                                   metadata.get("generation"))
        if "message" not in status:
            ready_now = next((c for c in status["conditions"] if c["type"] == "Ready"), None)
            synced_now = next((c for c in status["conditions"] if c["type"] == "Synced"), None)
            problem = synced_now if synced_now and synced_now["status"] == "False" else ready_now
            if problem:
                status["message"] = problem["message"]
        self.ctx.kube.patch_status(kind, metadata["namespace"], metadata["name"], status)
        for event in outcome.events:
            post(*event)
        old_reason = (st.ready_reason(previous), _synced_reason(previous))
        new_reason = (st.ready_reason(status), _synced_reason(status))
        failing = [c for c in outcome.conditions if c.status == "False" and c.reason not in _PROGRESS]
        if failing and old_reason != new_reason:  # say it once, when it starts
            post("Warning", failing[0].reason, failing[0].message)

    def reconcile(self, kind: Kind, body: dict, post: EventPoster) -> Outcome:
        """Reconcile one object and write its status; never raises for cloud or spec problems."""
        with self._locks[body["metadata"]["uid"]]:
            try:
                resource = parse(kind, body)
                outcome = RECONCILERS[kind.kind].reconcile(resource, self.ctx)
                body = dict(body, status=resource.status)  # ids recorded during the reconcile
            except Exception as exc:  # every failure becomes a readable condition
                if not isinstance(exc, ResourceProblem | WaitingForDependency | CloudError | SecretMissing
                                  | CredentialsError):
                    log.exception("reconcile of %s %s failed", kind.kind, body["metadata"].get("name"))
                outcome = error_outcome(exc)
            self._write(kind, body, outcome, post)
            return outcome

    def finalize(self, kind: Kind, body: dict, post: EventPoster) -> None:
        """Clean up the cloud side per deletionPolicy; raise RetryLater while it is not finished.
        Once it is, the credentials Secret is released if no other object needs it."""
        metadata = body["metadata"]
        with self._locks[metadata["uid"]]:
            self._clean_up(kind, body, post)
        try:
            self.ctx.release_secret(metadata["namespace"], self.ctx.secret_of(body.get("spec") or {}), metadata["uid"])
        except ApiException as exc:  # the clean-up is idempotent: run it again later
            raise RetryLater(f"releasing the credentials Secret: {exc.status} {exc.reason}",
                             self.ctx.settings.poll_fast_s) from None

    def _clean_up(self, kind: Kind, body: dict, post: EventPoster) -> None:
        try:
            resource = parse(kind, body)
        except ResourceProblem as exc:  # an object that never passed validation created nothing
            post("Warning", "InvalidSpec", f"deleted without cloud clean-up: {exc}")
            return
        if resource.spec.deletion_policy == "Retain":
            post("Normal", "Retained", "deletionPolicy Retain: cloud resources left in place")
            return
        try:
            summary = RECONCILERS[kind.kind].finalize(resource, self.ctx)
        except Exception as exc:
            message = f"cleanup failed, will retry: {exc}"
            if not isinstance(exc, CloudError | SecretMissing | CredentialsError):
                log.exception("finalizer of %s %s failed", kind.kind, resource.name)
            self.ctx.kube.patch_status(kind, resource.namespace, resource.name, {
                "message": message,
                "conditions": st.merge_conditions(resource.status.get("conditions"),
                                                  [st.not_synced("DeleteFailed", message)], resource.generation),
            })
            post("Warning", "DeleteFailed", message)
            raise RetryLater(message, self.ctx.settings.poll_fast_s * 2) from None
        if summary is None:
            self.ctx.kube.patch_status(kind, resource.namespace, resource.name,
                                       {"message": "deleting the cloud side, waiting until it is gone"})
            raise RetryLater("waiting for the cloud side to be deleted", self.ctx.settings.poll_fast_s)
        post("Normal", "Deleted", summary)


_PROGRESS = frozenset({"Creating", "Pending", "Running", "Terminating", "Importing", "Deploying",
                       "WaitingForDependency", "Synced"})


def _synced_reason(status: dict) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Synced":
            return cond.get("reason")
    return None
