"""Fixtures: a Kubernetes API per test, with kubectl and the Python client pointed at it.

`kube` is a `KubeEndpoint` on either backend (`kube_backend`): a fresh LocalKube per test for the
emulator, or the session's real control plane, reset to empty before (if dirty) and after each test.
The same tests run on both: the real kube-apiserver is the judge of what the emulator must do.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubebackend import KubeEndpoint, reset_cluster

import support
from modelarts_operator.local.kube.server import LocalKube

# On the real server the widgets CRD outlives a test (emptied of its objects): a fresh CRD holds
# its first creates for 2 s there. Other CRDs a test makes are deleted after it.
KEPT_CRDS = ("widgets.example.com",)
OTHER_CRDS = ("gadgets.example.com",)

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [modelarts]
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    selectableFields:
    - {jsonPath: .spec.size}
    additionalPrinterColumns:
    - {name: Target, type: string, jsonPath: .spec.target}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [target]
            x-kubernetes-validations:
            - rule: "self.replicas <= 5 || self.size == 'big'"
              message: more than 5 replicas need size big
            properties:
              target: {type: string, pattern: '^obs://'}
              replicas: {type: integer, minimum: 1, maximum: 10, default: 1}
              size: {type: string, enum: [small, big], default: small}
              port: {x-kubernetes-int-or-string: true}
              bucket:
                type: string
                x-kubernetes-validations:
                - {rule: "self == oldSelf", message: bucket is immutable}
              tags: {type: array, maxItems: 2, items: {type: string, minLength: 1}}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""


def make_widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"target": "obs://bucket/data", **spec}}


@pytest.fixture
def kube(kube_backend: str, request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeEndpoint]:
    if kube_backend == "emulator":
        kubeconfig = tmp_path / "kubeconfig"
        with LocalKube(kubeconfig=kubeconfig) as server:
            endpoint = KubeEndpoint("emulator", server.url, kubeconfig)
            _point_clients_at(endpoint, tmp_path, monkeypatch)
            yield endpoint
        return
    endpoint, _ = request.getfixturevalue("real_kube")
    reset_cluster(endpoint, crds=OTHER_CRDS, keep=KEPT_CRDS)  # a few reads when the last test left it clean
    _point_clients_at(endpoint, tmp_path, monkeypatch)
    yield endpoint
    reset_cluster(endpoint, crds=OTHER_CRDS, keep=KEPT_CRDS)


def _point_clients_at(endpoint: KubeEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(endpoint.kubeconfig))
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kubecache"))
    # The client read $KUBECONFIG at import time; Kopf loads the default location.
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(endpoint.kubeconfig))


class Kubectl:
    def __init__(self, kube: KubeEndpoint, tmp_path: Path) -> None:
        self.kube, self.tmp_path = kube, tmp_path

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {"KUBECONFIG": str(self.kube.kubeconfig), "KUBECACHEDIR": str(self.tmp_path / "kubecache"),
               "HOME": str(self.tmp_path), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def __call__(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, **kwargs).stdout

    def apply(self, manifest: str | dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run("apply", "-f", "-", input=text, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))


@pytest.fixture
def kubectl(kube: KubeEndpoint, tmp_path: Path) -> Kubectl:
    return Kubectl(kube, tmp_path)


@pytest.fixture
def client(kube: KubeEndpoint) -> Iterator[kubernetes.client.ApiClient]:
    api_client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def crd(kubectl: Kubectl) -> dict[str, Any]:
    kubectl.apply(CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    return yaml.safe_load(CRD)


# Test modules cannot import conftest under --import-mode=importlib: helpers come as fixtures.
@pytest.fixture
def widget() -> Callable[..., dict[str, Any]]:
    return make_widget


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    return functools.partial(support.wait_for, timeout=10.0, interval=0.02)  # the emulator answers at once
