"""What a reconciler works with: the typed resource, its cloud clients, Kubernetes reads, checkpoints."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from modelarts_operator.api.conditions import Cond
from modelarts_operator.api.kinds import Kind
from modelarts_operator.cloud.naming import cloud_name
from modelarts_operator.controller.credentials import Cloud, CloudClients
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.settings import Settings

log = logging.getLogger(__name__)

CRASH_ENV = "MODELARTS_OPERATOR_CRASH_AFTER_CREATE"
SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


def dump_status(status: BaseModel) -> dict[str, Any]:
    """A status model as the API stores it (camelCase, JSON types)."""
    return status.model_dump(by_alias=True, mode="json")


def status_patch(stored: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch from `stored` to `wanted` (top-level keys; None deletes). Empty: no write."""
    return {key: value for key, value in wanted.items()
            if stored.get(key) != value and not (value is None and key not in stored)}


@dataclass
class Resource(Generic[SpecT, StatusT]):
    """One object: its identity, parsed spec, and the typed status that reconcilers fill in."""

    kind: Kind
    namespace: str
    name: str
    uid: str
    generation: int
    spec: SpecT
    status: StatusT
    stored: dict[str, Any] = field(default_factory=dict)  # the status as last written (dumped form)
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, kind: Kind, body: dict, spec: BaseModel) -> Resource:
        metadata = body.get("metadata") or {}
        raw = body.get("status") or {}
        try:
            status = kind.status.model_validate(raw)
        except ValidationError:  # a status we cannot read: start afresh (ids are found again by name)
            log.warning("%s %s/%s: unreadable status, rebuilding it", kind.kind, metadata.get("namespace"),
                        metadata.get("name"))
            status = kind.status()
        return cls(kind=kind, namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"],
                   generation=metadata.get("generation") or 0, spec=spec, status=status,
                   stored={k: v for k, v in dump_status(status).items() if k in raw},
                   annotations=dict(metadata.get("annotations") or {}))

    @property
    def cloud_name(self) -> str:
        return cloud_name(self.namespace, self.name, self.uid)

    @property
    def ref(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"

    def pending(self, what: str, name: str | None = None) -> str:
        """The pending-create record of `what` (algorithm, trainingjob, model, service) named `name`."""
        return f"{what}/{name or self.cloud_name}"

    def is_pending(self, what: str, name: str | None = None) -> bool:
        return self.pending(what, name) in self.status.pending_creates

    def pending_names(self, what: str) -> list[str]:
        """The names of every pending create of `what`."""
        return [p.split("/", 1)[1] for p in self.status.pending_creates if p.startswith(what + "/")]

    def created(self, what: str, name: str | None = None) -> None:
        """The create's answer is recorded in status: clear its pending record (written by the next checkpoint)."""
        record = self.pending(what, name)
        self.status.pending_creates = [p for p in self.status.pending_creates if p != record]

    def cloud_id(self, field_name: str, what: str, find) -> str | None:
        """The id recorded in status; else, when a create of `what` was pending (its answer was lost),
        the one found by the deterministic name; else None without asking the cloud."""
        recorded = getattr(self.status, field_name)
        if recorded:
            return recorded
        if not self.is_pending(what):
            return None
        found = find(self.cloud_name)
        return found.id if found else None


class Requeue(Enum):
    """When to look again; the seconds are settings (poll_fast_s, poll_stable_s, poll_terminal_s)."""

    FAST = "fast"  # the cloud side is changing (uploading, training, deploying)
    STABLE = "stable"  # nothing changes by itself: check for drift and behind-the-back deletions
    TERMINAL = "terminal"  # finished for good (a Completed job, an InvalidSpec): a spec change wakes it


@dataclass
class Outcome:
    """A reconcile's result besides the status fields: conditions, events, when to look again."""

    conditions: list[Cond] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (Normal|Warning, reason, message)
    requeue: Requeue = Requeue.STABLE

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


class Context:
    def __init__(self, kube: Kube, settings: Settings):
        self.kube = kube
        self.settings = settings
        self.clients = CloudClients(kube, settings)

    def cloud(self, resource: Resource) -> Cloud:
        """Clients for the resource's credentials Secret."""
        return self.clients.for_secret(resource.namespace, self.clients.secret_of(resource.spec))

    def checkpoint(self, resource: Resource) -> None:
        """Write the status fields changed so far now, not at the end: a cloud id must survive a crash."""
        wanted = dump_status(resource.status)
        patch = status_patch(resource.stored, {k: v for k, v in wanted.items() if k != "conditions"})
        if patch:
            self.kube.patch_status(resource.kind, resource.namespace, resource.name, patch)
            resource.stored.update(patch)

    def begin_create(self, resource: Resource, what: str, name: str | None = None) -> None:
        """Record, before a cloud create, that `what` may exist from now on (Crossplane's
        external-create-pending): a finalizer after a lost answer looks it up by name."""
        record = resource.pending(what, name)
        if record not in resource.status.pending_creates:
            resource.status.pending_creates = [*resource.status.pending_creates, record]
            self.checkpoint(resource)

    @staticmethod
    def crashpoint(what: str) -> None:
        """Test hook: die right after creating `what` in the cloud, before recording it (see docs/testing.md)."""
        if what in os.environ.get(CRASH_ENV, "").split(","):
            log.warning("crash point after creating %s (%s is set)", what, CRASH_ENV)
            os._exit(137)
