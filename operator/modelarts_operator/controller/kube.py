"""The few Kubernetes reads and writes the reconcilers need, on the official client."""

from __future__ import annotations

import base64
import logging

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.api.kinds import Kind

log = logging.getLogger(__name__)


class SecretMissing(Exception):
    pass


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None):
        self.api_client = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise SecretMissing(f"Secret {namespace}/{name} not found") from None
            raise
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

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
                GROUP, VERSION, namespace, kind.plural, name, {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise
