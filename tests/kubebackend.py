"""The two Kubernetes backends the Kubernetes-facing suites run on: the emulator and a real control plane.

`make test` runs them on both (`--kube-backend emulator|real`, repeatable, picks). The real control
plane (etcd, kube-apiserver, kube-controller-manager from `make kube`) starts once per session and is
shared: suites isolate themselves by namespace, or reset what they touched (`reset_cluster`).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("emulator", "real")
SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "modelarts-system"}


@dataclass
class KubeEndpoint:
    """What a test needs of an API server: its URL, an admin kubeconfig, and raw HTTP as the admin."""

    backend: str
    url: str
    kubeconfig: Path
    token: str = ""
    ca_file: Path | None = None
    operator_kubeconfig: Path | None = None  # the operator's ServiceAccount (real backend only)

    @property
    def real(self) -> bool:
        return self.backend == "real"

    def open(self, method: str, path: str, data: bytes | None = None, content_type: str = "application/json",
             timeout: float = 10, headers: dict[str, str] | None = None):
        headers = {"Content-Type": content_type, **(headers or {})}
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def http(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
             timeout: float = 10) -> tuple[int, Any]:
        """(status, decoded JSON body); error answers are returned, not raised."""
        data = (body if isinstance(body, bytes) else json.dumps(body).encode()) if body is not None else None
        try:
            with self.open(method, path, data, content_type, timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, {"text": payload.decode(errors="replace")}


def endpoint_of_real(kube) -> KubeEndpoint:
    return KubeEndpoint("real", kube.url, kube.kubeconfig, kube.token, kube.ca_file,
                        kube.folder / "operator.kubeconfig")


def reset_cluster(endpoint: KubeEndpoint, crds: tuple[str, ...] = (), timeout: float = 60,
                  keep: tuple[str, ...] = ()) -> None:
    """Bring a shared real cluster back to empty: the given CRDs (their objects' finalizers stripped
    first) and every non-system namespace deleted and gone, and the default namespace's config maps,
    secrets and events removed.

    The CRDs in `keep` stay defined and only lose their objects: a CRD created afresh makes the real
    server hold every create of its objects for 2 s (customresource_handler.go, for HA consistency),
    which a suite that recreates its CRD for each test pays each time."""
    for crd in (*crds, *keep):
        code, obj = endpoint.http("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        if code != 200:
            continue
        for path in _unfinalized_objects(endpoint, obj):
            endpoint.http("DELETE", path)
        if crd not in keep:
            endpoint.http("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
    _, namespaces = endpoint.http("GET", "/api/v1/namespaces")
    doomed = [n["metadata"]["name"] for n in namespaces["items"] if n["metadata"]["name"] not in SYSTEM_NAMESPACES]
    for name in doomed:
        _strip_finalizers(endpoint, name)
        endpoint.http("DELETE", f"/api/v1/namespaces/{name}")
    for resource in ("configmaps", "secrets", "events"):
        _, listed = endpoint.http("GET", f"/api/v1/namespaces/default/{resource}")
        for item in listed.get("items", []):
            name = item["metadata"]["name"]
            if resource == "configmaps" and name == "kube-root-ca.crt":
                continue
            if item["metadata"].get("finalizers"):
                endpoint.http("PATCH", f"/api/v1/namespaces/default/{resource}/{name}",
                              {"metadata": {"finalizers": None}}, "application/merge-patch+json")
            endpoint.http("DELETE", f"/api/v1/namespaces/default/{resource}/{name}")
    deadline = time.monotonic() + timeout
    while True:
        left = [crd for crd in crds
                if endpoint.http("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")[0] == 200]
        left += [ns for ns in doomed if endpoint.http("GET", f"/api/v1/namespaces/{ns}")[0] == 200]
        for crd in keep:
            code, obj = endpoint.http("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
            if code == 200:
                left += _unfinalized_objects(endpoint, obj)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the cluster did not reset within {timeout:.0f}s: {left} remain")
        for ns in doomed:
            _strip_finalizers(endpoint, ns)
        time.sleep(0.05)


def _unfinalized_objects(endpoint: KubeEndpoint, crd: dict[str, Any]) -> list[str]:
    """The paths of a CRD's objects, their finalizers stripped (nothing else would remove them)."""
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("served", True))
    _, listed = endpoint.http("GET", f"/apis/{group}/{version}/{plural}")
    paths = []
    for item in (listed or {}).get("items", []):
        meta = item["metadata"]
        where = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
        path = f"/apis/{group}/{version}{where}/{plural}/{meta['name']}"
        if meta.get("finalizers"):
            endpoint.http("PATCH", path, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        paths.append(path)
    return paths


def _strip_finalizers(endpoint: KubeEndpoint, namespace: str) -> None:
    """Config maps and secrets held by test finalizers would keep a namespace Terminating."""
    for resource in ("configmaps", "secrets"):
        code, listed = endpoint.http("GET", f"/api/v1/namespaces/{namespace}/{resource}")
        for item in (listed or {}).get("items", []) if code == 200 else []:
            if item["metadata"].get("finalizers"):
                endpoint.http("PATCH", f"/api/v1/namespaces/{namespace}/{resource}/{item['metadata']['name']}",
                              {"metadata": {"finalizers": None}}, "application/merge-patch+json")
