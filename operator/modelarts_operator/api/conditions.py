"""The public condition vocabulary: every reason a Ready or Synced condition can carry, with what it
means for a user and for tools (Argo CD, the demo, the tests), and the condition helpers.

One list: the operator sets only these reasons, `docs/api.md` renders its table from them, and the
Argo CD health check is tested against them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    READY = "ready"  # Ready=True
    PROGRESS = "progress"  # Ready=False, will change by itself: wait
    ERROR = "error"  # Ready=False or Synced=False, retried; may need a fix outside the spec (a Secret, a quota)
    TERMINAL = "terminal"  # Ready=False for good: Argo CD shows Degraded; a new resource or spec is needed


class Reason(str, Enum):
    """A condition reason. `severity` says what it means; `meaning` and `action` are the docs' table."""

    def __new__(cls, value: str, severity: Severity, meaning: str, action: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.severity = severity
        member.meaning = meaning
        member.action = action
        return member

    @property
    def terminal(self) -> bool:
        return self.severity is Severity.TERMINAL

    @property
    def progress(self) -> bool:
        return self.severity is Severity.PROGRESS

    # Ready=True
    UPLOADED = "Uploaded", Severity.READY, "the dataset's files are in OBS, verified"
    CREATED = "Created", Severity.READY, "the algorithm exists and runs the uploaded code"
    COMPLETED = "Completed", Severity.READY, "the training job finished; its model package is in the output folder"
    RUNNING = "Running", Severity.PROGRESS, "the training job runs (Ready=False), or the service runs (Ready=True)", \
        "wait"
    SYNCED = "Synced", Severity.READY, "(Synced=True) the last reconcile reached the cloud"
    # progress
    CREATING = "Creating", Severity.PROGRESS, "the cloud resource is being created", "wait"
    PENDING = "Pending", Severity.PROGRESS, "the training job waits for resources", "wait"
    TERMINATING = "Terminating", Severity.PROGRESS, "the training job is being stopped", "wait"
    IMPORTING = "Importing", Severity.PROGRESS, "the model is being imported", "wait"
    DEPLOYING = "Deploying", Severity.PROGRESS, "the service is being deployed or updated", "wait"
    WAITING_FOR_DEPENDENCY = "WaitingForDependency", Severity.PROGRESS, \
        "a referenced resource is missing or not Ready yet", "create it, or wait for it"
    # errors: retried, fixed outside the spec or by themselves
    CREDENTIALS_MISSING = "CredentialsMissing", Severity.ERROR, "the credentials Secret does not exist", \
        "create the Secret: picked up within seconds, no restart"
    INVALID_CREDENTIALS = "InvalidCredentials", Severity.ERROR, "the Secret lacks a key or holds a malformed one", \
        "fix the Secret"
    UNAUTHORIZED = "Unauthorized", Severity.ERROR, "the cloud refused the keys", "fix the keys in the Secret"
    CLOUD_UNAVAILABLE = "CloudUnavailable", Severity.ERROR, \
        "(Synced=False) throttled or a 5xx from the cloud; Ready keeps its value", "none: retried with backoff"
    QUOTA_EXCEEDED = "QuotaExceeded", Severity.ERROR, "a cloud quota is used up", "free quota or raise it"
    CLOUD_REJECTED = "CloudRejected", Severity.ERROR, "the cloud refused the request", "see the message"
    CODE_MISSING = "CodeMissing", Severity.ERROR, "the training code or its boot file is not where the spec says", \
        "fix the ConfigMap, the OBS folder or bootFile"
    SOURCE_UNAVAILABLE = "SourceUnavailable", Severity.ERROR, "no MNIST source could be read", "see the message"
    CONCERNING = "Concerning", Severity.ERROR, "some service instances are unhealthy", "see the message"
    KUBERNETES_ERROR = "KubernetesError", Severity.ERROR, "(Synced=False) a Kubernetes API call failed", \
        "none: retried"
    INTERNAL_ERROR = "InternalError", Severity.ERROR, "(Synced=False) an unexpected error in the operator", \
        "report it with the operator log"
    DELETE_FAILED = "DeleteFailed", Severity.ERROR, "(Synced=False) cleaning up the cloud side failed", \
        "see the message; retried"
    # terminal: Argo CD Degraded
    FAILED = "Failed", Severity.TERMINAL, \
        "the training job, model import or service failed; the message and status.logTail say why", \
        "fix the code, create a new TrainingJob"
    TERMINATED = "Terminated", Severity.TERMINAL, "the training job was stopped", "create a new TrainingJob"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded", Severity.TERMINAL, "the operator stopped the job at maxRuntime", \
        "create a new TrainingJob with a longer maxRuntime"
    STOPPED = "Stopped", Severity.TERMINAL, "the service was stopped (auto-stop or by hand)", \
        "start it in ModelArts, or recreate the resource"
    INVALID_SPEC = "InvalidSpec", Severity.TERMINAL, "the spec cannot work as written", "fix the spec"
    CLOUD_RESOURCE_MISSING = "CloudResourceMissing", Severity.TERMINAL, \
        "the training job was deleted in the cloud behind the operator's back (others are recreated)", \
        "delete the TrainingJob and create a new one"
    ADOPTION_FAILED = "AdoptionFailed", Severity.TERMINAL, \
        "the cloud resource named by the annotation modelarts.mlops.dev/external-name (or external-model) does not " \
        "exist: nothing is created", "fix or remove the annotation (or create the resource, then change the annotation)"
    DEPENDENCY_FAILED = "DependencyFailed", Severity.TERMINAL, "a referenced resource failed for good", \
        "fix or replace the referenced resource"
    BELOW_QUALITY_GATE = "BelowQualityGate", Severity.TERMINAL, \
        "the new model is below spec.minAccuracy or minF1 (or lacks the figure) and is not imported: Ready=False " \
        "with nothing deployed yet, Ready=True while the service keeps serving its current model", \
        "train a better model (a new TrainingJob, or the same one again), or lower the gate"


@dataclass(frozen=True)
class Cond:
    """A condition to set: status True/False with a reason and a human message."""

    type: str
    status: str
    reason: Reason
    message: str = ""


def ready(reason: Reason, message: str = "") -> Cond:
    return Cond("Ready", "True", reason, message)


def not_ready(reason: Reason, message: str) -> Cond:
    return Cond("Ready", "False", reason, message)


def synced(message: str = "") -> Cond:
    return Cond("Synced", "True", Reason.SYNCED, message)


def not_synced(reason: Reason, message: str) -> Cond:
    return Cond("Synced", "False", reason, message)


def find_condition(status: Mapping[str, Any] | None, type_: str = "Ready") -> dict:
    """The condition of that type in a status mapping, or {}."""
    for cond in (status or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return dict(cond)
    return {}


def is_ready(status: Mapping[str, Any] | None) -> bool:
    return find_condition(status).get("status") == "True"


def reason_of(status: Mapping[str, Any] | None, type_: str = "Ready") -> Reason | None:
    """The condition's reason as a Reason (None if absent or not one of ours)."""
    value = find_condition(status, type_).get("reason")
    try:
        return Reason(value) if value else None
    except ValueError:
        return None


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge_conditions(existing: Iterable[Mapping] | None, updates: Iterable[Cond], generation: int | None,
                     now: str | None = None) -> list[dict]:
    """Set each updated condition; lastTransitionTime moves only when the status value changes."""
    now = now or now_rfc3339()
    by_type = {c["type"]: dict(c) for c in existing or [] if isinstance(c, Mapping) and "type" in c}
    for cond in updates:
        previous = by_type.get(cond.type)
        changed = previous is None or previous.get("status") != cond.status
        by_type[cond.type] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason.value,
            "message": cond.message[:1024],
            "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
            "observedGeneration": generation,
        }
    order = {"Ready": 0, "Synced": 1}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], 9), c["type"]))


TERMINAL_REASONS = frozenset(r.value for r in Reason if r.terminal)
