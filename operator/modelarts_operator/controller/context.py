"""What a reconciler works with: the resource, its cloud clients, Kubernetes reads, status writes."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from pydantic import BaseModel

from modelarts_operator.api.kinds import Kind
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore
from modelarts_operator.cloud.naming import cloud_name
from modelarts_operator.controller.kube import Kube, SecretMissing
from modelarts_operator.controller.settings import Settings

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
    """A credentials provider over a Kubernetes Secret, re-read at most every `ttl` seconds."""

    def __init__(self, kube: Kube, namespace: str, name: str, ttl: float):
        self._kube, self._namespace, self._name, self._ttl = kube, namespace, name, ttl
        self._cached: tuple[float, CloudCredentials] | None = None
        self._lock = threading.Lock()
        self.last_known: CloudCredentials | None = None

    def __call__(self) -> CloudCredentials:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
        credentials = CloudCredentials.from_mapping(self._kube.secret_data(self._namespace, self._name))
        with self._lock:
            self._cached = (time.monotonic(), credentials)
            self.last_known = credentials
        return credentials


class LastKnownCredentials:
    """For finalizers: the Secret's credentials, or the last ones read when the Secret is gone.

    `kubectl delete namespace` deletes the Secret and our resources in no particular order; without
    this, a finalizer that outlives the 5 s cache fails with SecretMissing forever and the namespace
    stays Terminating (it cannot even be given the Secret back)."""

    def __init__(self, provider: SecretCredentials):
        self._provider = provider

    def __call__(self) -> CloudCredentials:
        try:
            return self._provider()
        except SecretMissing:
            if self._provider.last_known is None:
                raise
            log.warning("Secret gone: cleaning up with the credentials it last held")
            return self._provider.last_known


@dataclass
class Cloud:
    obs: ObsStore
    modelarts: ModelArtsApi


class Context:
    def __init__(self, kube: Kube, settings: Settings):
        self.kube = kube
        self.settings = settings
        self._providers: dict[tuple[str, str], SecretCredentials] = {}
        self._clouds: dict[tuple[str, str, bool], Cloud] = {}
        self._lock = threading.Lock()

    def cloud(self, resource: Resource, deleting: bool = False) -> Cloud:
        """Clients for the resource's Secret; shared per Secret so their HTTP clients are reused.
        `deleting` (finalizers): fall back to the last credentials read if the Secret is gone."""
        secret = getattr(resource.spec, "credentials_secret", None) or self.settings.credentials_secret
        key = (resource.namespace, secret)
        with self._lock:
            if key not in self._providers:
                self._providers[key] = SecretCredentials(self.kube, resource.namespace, secret,
                                                         self.settings.secret_cache_s)
            if (*key, deleting) not in self._clouds:
                provider = self._providers[key]
                if deleting:
                    provider = LastKnownCredentials(provider)
                self._clouds[(*key, deleting)] = Cloud(ObsStore(provider), ModelArtsApi(provider))
            return self._clouds[(*key, deleting)]

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
