"""Cloud clients per credentials Secret, and the in-use finalizer that keeps a Secret while it is needed.

`kubectl delete namespace` deletes Secrets and our resources in no particular order; a finalizer on
the Secret (as Crossplane's in-use protection of a ProviderConfig) keeps it readable until the last
resource that uses it has been finalized, even across operator restarts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from modelarts_operator.api.kinds import KINDS
from modelarts_operator.cloud import CloudCredentials, ModelArtsApi, ObsStore
from modelarts_operator.controller.kube import Kube
from modelarts_operator.controller.settings import FINALIZER, SECRET_FINALIZER, Settings


class SecretCredentials:
    """A credentials provider over a Kubernetes Secret, re-read at most every `ttl` seconds.

    Reading it also protects it: the Secret gets SECRET_FINALIZER (once per Secret uid)."""

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


class CloudClients:
    """One set of clients per (namespace, Secret), so their HTTP connections are reused."""

    def __init__(self, kube: Kube, settings: Settings):
        self.kube, self.settings = kube, settings
        self._clouds: dict[tuple[str, str], Cloud] = {}
        self._lock = threading.Lock()
        self._release_lock = threading.Lock()
        self._finalized: set[str] = set()

    def secret_of(self, spec) -> str:
        """The Secret a spec (a model, or the raw dict of an invalid one) names, or the default."""
        named = spec.get("credentialsSecret") if isinstance(spec, Mapping) else getattr(spec, "credentials_secret", None)
        return named or self.settings.credentials_secret

    def for_secret(self, namespace: str, secret: str) -> Cloud:
        key = (namespace, secret)
        with self._lock:
            if key not in self._clouds:
                provider = SecretCredentials(self.kube, namespace, secret, self.settings.secret_cache_s)
                self._clouds[key] = Cloud(ObsStore(provider), ModelArtsApi(provider))
            return self._clouds[key]

    def release(self, namespace: str, secret: str, uid: str) -> None:
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
