"""The few Kubernetes reads and writes the reconcilers need, on the official client."""

from __future__ import annotations

import base64
import logging

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.api.kinds import Kind
from modelarts_operator.controller.errors import SecretMissing

log = logging.getLogger(__name__)
FIELD_MANAGER = "modelarts-operator"  # names our writes in managedFields (server-side apply)


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None):
        self.api_client = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def secret(self, namespace: str, name: str) -> tuple[dict[str, bytes], client.V1ObjectMeta]:
        """The Secret's decoded data and its metadata."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise SecretMissing(f"Secret {namespace}/{name} not found") from None
            raise
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}, secret.metadata

    def add_finalizer_to_secret(self, namespace: str, name: str, meta: client.V1ObjectMeta, finalizer: str) -> None:
        """Add `finalizer` to the Secret read with `meta`; a concurrent change (409/422) is left for the next read."""
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version}]
        if meta.finalizers:
            patch.append({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer})
        else:
            patch.append({"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})
        try:
            self.core.patch_namespaced_secret(name, namespace, patch, field_manager=FIELD_MANAGER)
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise

    def remove_finalizer_from_secret(self, namespace: str, name: str, finalizer: str) -> None:
        for _ in range(5):  # optimistic: retried when someone else changed the finalizers meanwhile
            try:
                meta = self.core.read_namespaced_secret(name, namespace).metadata
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            if finalizer not in (meta.finalizers or []):
                return
            index = meta.finalizers.index(finalizer)
            patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
                     {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
            try:
                self.core.patch_namespaced_secret(name, namespace, patch, field_manager=FIELD_MANAGER)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status not in (409, 422):
                    raise
        log.warning("could not remove %s from Secret %s/%s: it kept changing", finalizer, namespace, name)

    def list(self, kind: Kind, namespace: str) -> list[dict]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural).get("items", [])

    def config_map(self, namespace: str, name: str) -> tuple[dict[str, str], str] | None:
        """The ConfigMap's data and resourceVersion, or None when it does not exist."""
        try:
            config_map = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(config_map.data or {}), config_map.metadata.resource_version

    def get(self, kind: Kind, namespace: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_status(self, kind: Kind, namespace: str, name: str, status: dict) -> None:
        """Merge-patch the status subresource; a vanished object is not an error (it is being deleted)."""
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, kind.plural, name, {"status": status}, field_manager=FIELD_MANAGER)
        except ApiException as exc:
            if exc.status != 404:
                raise
