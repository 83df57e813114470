"""The cluster as kubectl sees it: kubeconfig, context and namespace as kubectl resolves them; reads of
our four kinds and of credentials Secrets, with errors turned into one-line messages."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.api.kinds import KINDS, Kind
from modelarts_operator.cloud import CloudCredentials, CredentialsError
from modelarts_operator.controller.settings import Settings
from modelarts_operator.kubectl_plugin.errors import PluginError

DEFAULT_SECRET = Settings.credentials_secret  # the operator's --credentials-secret default
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_TIMEOUT_S = 30


def kubeconfig_paths(kubeconfig: str | None) -> str:
    """--kubeconfig, else $KUBECONFIG (a list separated by the OS's path separator), else ~/.kube/config."""
    return kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def resolve_context(kubeconfig: str | None, context: str | None) -> tuple[str, str]:
    """The context to use and its namespace ("default" when it names none), as kubectl picks them."""
    from kubernetes.config import ConfigException, list_kube_config_contexts

    try:
        contexts, current = list_kube_config_contexts(config_file=kubeconfig_paths(kubeconfig))
    except ConfigException as exc:
        raise PluginError(f"cannot read the kubeconfig ({kubeconfig_paths(kubeconfig)}): {exc}") from None
    chosen = context or (current or {}).get("name")
    if not chosen:
        raise PluginError("the kubeconfig has no current context: use --context")
    for entry in contexts or []:
        if entry.get("name") == chosen:
            return chosen, (entry.get("context") or {}).get("namespace") or "default"
    raise PluginError(f'context "{chosen}" does not exist')


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT_NAMESPACE.exists()


class Cluster:
    """One namespace of one cluster, read as the kubeconfig's user."""

    def __init__(self, api_client: Any, namespace: str, where: str):
        from kubernetes import client

        self.namespace, self.where = namespace, where
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                namespace: str | None = None) -> Cluster:
        from kubernetes import config

        explicit = kubeconfig or context or os.environ.get("KUBECONFIG")
        if not explicit and not Path(kubeconfig_paths(None)).exists() and in_cluster():
            config.load_incluster_config()  # a pod: its ServiceAccount, its namespace
            from kubernetes import client

            own = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
            return cls(client.ApiClient(), namespace or own, "the in-cluster API")
        chosen, context_namespace = resolve_context(kubeconfig, context)
        try:
            api_client = config.new_client_from_config(config_file=kubeconfig_paths(kubeconfig), context=chosen,
                                                       persist_config=False)
        except config.ConfigException as exc:
            raise PluginError(f'context "{chosen}": {exc}') from None
        return cls(api_client, namespace or context_namespace, f'context "{chosen}"')

    # --- reads -----------------------------------------------------------------------------------

    def find(self, kind: Kind, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        with self._errors(f'{kind.singular} "{name}"', missing_ok=True):
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, name,
                                                            _request_timeout=REQUEST_TIMEOUT_S)
        return None

    def get(self, kind: Kind, name: str) -> dict:
        obj = self.find(kind, name)
        if obj is None:
            raise PluginError(f'{kind.singular} "{name}" not found in namespace "{self.namespace}"')
        return obj

    def list(self, kind: Kind) -> list[dict]:
        with self._errors(kind.plural):
            answer = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural,
                                                               _request_timeout=REQUEST_TIMEOUT_S)
        return [dict(item, kind=item.get("kind") or kind.kind) for item in answer.get("items") or []]

    def list_all(self) -> list[dict]:
        return [obj for kind in KINDS for obj in self.list(kind)]

    def credentials(self, obj: dict) -> CloudCredentials:
        """The cloud credentials of the Secret the object names (spec.credentialsSecret), or the default one."""
        secret = (obj.get("spec") or {}).get("credentialsSecret") or DEFAULT_SECRET
        user = f'{obj.get("kind", "").lower()} "{obj["metadata"]["name"]}"'
        with self._errors(f'Secret "{secret}"', missing_ok=True):
            found = self.core.read_namespaced_secret(secret, self.namespace, _request_timeout=REQUEST_TIMEOUT_S)
            data = {key: base64.b64decode(value) for key, value in (found.data or {}).items()}
            try:
                return CloudCredentials.from_mapping(data)
            except CredentialsError as exc:  # its message names fields, never values
                raise PluginError(f'Secret "{secret}" (the credentials of {user}): {exc}') from None
        raise PluginError(f'Secret "{secret}" not found in namespace "{self.namespace}": {user} reads its cloud '
                          f"credentials from it (spec.credentialsSecret, default {DEFAULT_SECRET})")

    @contextmanager
    def _errors(self, what: str, missing_ok: bool = False) -> Iterator[None]:
        """Kubernetes client errors as PluginErrors; a 404 with missing_ok ends the block quietly."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return
            hint = " (are the CRDs installed? kubectl apply -k crds/)" if exc.status == 404 else ""
            raise PluginError(f"{what} in namespace {self.namespace}: {api_message(exc)}{hint}") from None
        except HTTPError as exc:
            raise PluginError(f"cannot reach the Kubernetes API ({self.where}): {exc}") from None


def api_message(exc: Any) -> str:
    """The API server's own message (a Status object's), else the HTTP status line."""
    try:
        status = json.loads(exc.body)
        return f"{status.get('reason') or exc.status}: {status.get('message')}"
    except (TypeError, ValueError, AttributeError):
        return f"HTTP {exc.status} {exc.reason}"
