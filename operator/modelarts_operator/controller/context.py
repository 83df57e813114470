"""What a reconciler works with: the resource, its cloud clients, Kubernetes reads, status writes."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from pydantic import BaseModel

from modelarts_operator.api.kinds import KINDS, Kind
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore
from modelarts_operator.cloud.naming import cloud_name
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.settings import FINALIZER, SECRET_FINALIZER, Settings

log = logging.getLogger(__name__)

CRASH_ENV = "MODELARTS_OPERATOR_CRASH_AFTER_CREATE"


class WaitingForDependency(Exception):
    """A referenced resource is missing or not Ready yet; the reconcile is retried on the fast poll."""


class ResourceProblem(Exception):
    """The resource cannot progress until its spec or surroundings change (reason, message)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass
class Resource:
    kind: Kind
    namespace: str
    name: str
    uid: str
    generation: int
    spec: BaseModel
    status: dict

    @property
    def secret_name(self) -> str | None:
        return getattr(self.spec, "credentials_secret", None)

    @property
    def cloud_name(self) -> str:
        return cloud_name(self.namespace, self.name, self.uid)

    def cloud_id(self, field: str, find) -> str | None:
        """The id recorded in status, else the one found by the deterministic name (a crash came first)."""
        if self.status.get(field):
            return self.status[field]
        found = find(self.cloud_name)
        return found.id if found else None

    @property
    def ref(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"


@dataclass
class Outcome:
    """A reconcile's result: status fields to merge, conditions, events, and whether to poll fast."""

    status: dict = field(default_factory=dict)
    conditions: list = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (Normal|Warning, reason, message)
    changing: bool = False

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))


class SecretCredentials:
    """A credentials provider over a Kubernetes Secret, re-read at most every `ttl` seconds.

    Reading it also protects it: the Secret gets SECRET_FINALIZER (once per Secret uid), so it stays
    readable until the last resource that uses it has been finalized (`Context.release_secret`)."""

    def __init__(self, kube: Kube, namespace: str, name: str, ttl: float):
        self._kube, self._namespace, self._name, self._ttl = kube, namespace, name, ttl
        self._cached: tuple[float, CloudCredentials] | None = None
        self._protected_uid: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> CloudCredentials:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
        data, meta = self._kube.secret(self._namespace, self._name)
        credentials = CloudCredentials.from_mapping(data)
        if meta.uid != self._protected_uid and not meta.deletion_timestamp:
            if SECRET_FINALIZER not in (meta.finalizers or []):
                self._kube.add_finalizer_to_secret(self._namespace, self._name, meta, SECRET_FINALIZER)
            self._protected_uid = meta.uid
        with self._lock:
            self._cached = (time.monotonic(), credentials)
        return credentials


@dataclass
class Cloud:
    obs: ObsStore
    modelarts: ModelArtsApi


class Context:
    def __init__(self, kube: Kube, settings: Settings):
        self.kube = kube
        self.settings = settings
        self._clouds: dict[tuple[str, str], Cloud] = {}
        self._lock = threading.Lock()
        self._release_lock = threading.Lock()
        self._finalized: set[str] = set()

    def cloud(self, resource: Resource) -> Cloud:
        """Clients for the resource's Secret; shared per Secret so their HTTP clients are reused."""
        key = (resource.namespace, self.secret_of(resource.spec))
        with self._lock:
            if key not in self._clouds:
                provider = SecretCredentials(self.kube, *key, self.settings.secret_cache_s)
                self._clouds[key] = Cloud(ObsStore(provider), ModelArtsApi(provider))
            return self._clouds[key]

    def secret_of(self, spec) -> str:
        """The credentials Secret a spec (a model, or the raw dict of an invalid one) names, or the default."""
        named = spec.get("credentialsSecret") if isinstance(spec, dict) else getattr(spec, "credentials_secret", None)
        return named or self.settings.credentials_secret

    def release_secret(self, namespace: str, secret: str, uid: str) -> None:
        """Object `uid` is finalized: unprotect its Secret when no other object of ours still needs it.

        An object still needs it while it carries our finalizer and has not been finalized here: the
        finalized ones keep our finalizer until Kopf removes it after this handler, so they are
        remembered, or two last objects finalized at once would each wait for the other."""
        with self._release_lock:
            self._finalized.add(uid)
            objects = [obj for kind in KINDS for obj in self.kube.list(kind, namespace)]
            self._finalized &= {obj["metadata"]["uid"] for obj in objects}
            users = [obj for obj in objects
                     if obj["metadata"]["uid"] not in self._finalized
                     and FINALIZER in (obj["metadata"].get("finalizers") or [])
                     and self.secret_of(obj.get("spec") or {}) == secret]
            if not users:
                self.kube.remove_finalizer_from_secret(namespace, secret, SECRET_FINALIZER)

    def record(self, resource: Resource, **fields) -> None:
        """Write status fields now, not at the end of the reconcile: a cloud id must survive a crash."""
        resource.status.update(fields)
        self.kube.patch_status(resource.kind, resource.namespace, resource.name, fields)

    @staticmethod
    def crashpoint(what: str) -> None:
        """Test hook: die right after creating `what` in the cloud, before recording it (see docs/testing.md)."""
        if what in os.environ.get(CRASH_ENV, "").split(","):
            log.warning("crash point after creating %s (%s is set)", what, CRASH_ENV)
            os._exit(137)
