"""What only the real control plane does, of what the operator and its users meet: server-side apply
and managed fields, garbage collection by ownerReferences, RBAC and authentication, the controllers
that fill a new namespace, aggregated discovery, OpenAPI v2 and protobuf answers.

The emulator deliberately lacks these (docs/local-kube.md, "What it does not do"); these tests show
the real behaviour, so what the emulator leaves out is written down and checked, not guessed.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml
from kubebackend import KubeEndpoint

pytestmark = pytest.mark.kube_backends("real")

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def managers(kubectl: Any, name: str) -> dict[str, dict[str, Any]]:
    obj = kubectl.json("get", "wd", name, "--show-managed-fields")
    return {f"{m['manager']}/{m['operation']}": m.get("fieldsV1", {}) for m in obj["metadata"]["managedFields"]}


def test_server_side_apply_tracks_who_owns_each_field(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.run("apply", "--server-side", "-f", "-", input=yaml.safe_dump(widget("w", replicas=2, tags=["a"])))
    owned = managers(kubectl, "w")
    assert set(owned["kubectl/Apply"]["f:spec"]) == {"f:target", "f:replicas", "f:tags"}
    # A second manager applying another value of a field the first owns is refused ...
    scaler = yaml.safe_dump({**widget("w", replicas=3)})
    refused = kubectl.run("apply", "--server-side", "--field-manager=scaler", "-f", "-", input=scaler, check=False)
    assert refused.returncode != 0 and "conflict with \"kubectl\"" in refused.stderr and ".spec.replicas" in refused.stderr
    # ... unless it forces: then it owns the field, and the same value of target is owned by both.
    kubectl.run("apply", "--server-side", "--field-manager=scaler", "--force-conflicts", "-f", "-", input=scaler)
    owned = managers(kubectl, "w")
    assert set(owned["scaler/Apply"]["f:spec"]) == {"f:target", "f:replicas"}
    assert set(owned["kubectl/Apply"]["f:spec"]) == {"f:target", "f:tags"}
    assert kubectl.json("get", "wd", "w")["spec"]["replicas"] == 3
    # A field its only manager stops applying is removed; one someone else still applies stays.
    kubectl.run("apply", "--server-side", "-f", "-", input=yaml.safe_dump(widget("w")))
    spec = kubectl.json("get", "wd", "w")["spec"]
    assert "tags" not in spec and spec["replicas"] == 3
    # Plain updates are recorded too, as Update operations of their client.
    kubectl("label", "wd", "w", "tier=web")
    assert "f:labels" in managers(kubectl, "w")["kubectl-label/Update"]["f:metadata"]


def test_garbage_collector_deletes_dependents_by_owner_references(kube: KubeEndpoint, wait_for: Any) -> None:
    def owned_by(owner: dict[str, Any], name: str) -> None:
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        assert kube.http("POST", CONFIGMAPS, {"metadata": {"name": name, "ownerReferences": [ref]}})[0] == 201

    def gone(name: str) -> bool:
        return kube.http("GET", f"{CONFIGMAPS}/{name}")[0] == 404

    # Background (the default): the owner goes at once, its dependents after it.
    owner = kube.http("POST", CONFIGMAPS, {"metadata": {"name": "owner-bg"}})[1]
    owned_by(owner, "dependent-bg")
    assert kube.http("DELETE", f"{CONFIGMAPS}/owner-bg")[1]["status"] == "Success"
    wait_for(lambda: gone("dependent-bg"))
    # Foreground: the owner waits, held by the foregroundDeletion finalizer, until its dependents are gone.
    owner = kube.http("POST", CONFIGMAPS, {"metadata": {"name": "owner-fg"}})[1]
    owned_by(owner, "dependent-fg")
    code, deleting = kube.http("DELETE", f"{CONFIGMAPS}/owner-fg", {"propagationPolicy": "Foreground"})
    assert (code, deleting["metadata"]["finalizers"]) == (200, ["foregroundDeletion"])
    wait_for(lambda: gone("dependent-fg") and gone("owner-fg"))
    # Orphan: the dependents stay, freed of their owner.
    owner = kube.http("POST", CONFIGMAPS, {"metadata": {"name": "owner-or"}})[1]
    owned_by(owner, "dependent-or")
    kube.http("DELETE", f"{CONFIGMAPS}/owner-or", {"propagationPolicy": "Orphan"})
    wait_for(lambda: gone("owner-or"))
    assert "ownerReferences" not in kube.http("GET", f"{CONFIGMAPS}/dependent-or")[1]["metadata"]


def test_rbac_authentication_and_controllers_of_a_new_namespace(kube: KubeEndpoint, wait_for: Any) -> None:
    ns = "/api/v1/namespaces/rbac"
    kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "rbac"}})
    # Controllers give every namespace the cluster's CA bundle and a default ServiceAccount.
    wait_for(lambda: kube.http("GET", f"{ns}/configmaps/kube-root-ca.crt")[0] == 200)
    wait_for(lambda: kube.http("GET", f"{ns}/serviceaccounts/default")[0] == 200)
    kube.http("POST", f"{ns}/serviceaccounts", {"metadata": {"name": "reader"}})
    kube.http("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/roles", {
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    kube.http("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/rolebindings", {
        "metadata": {"name": "reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "rbac"}]})
    code, request = kube.http("POST", f"{ns}/serviceaccounts/reader/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
    assert code == 201
    reader = KubeEndpoint("real", kube.url, kube.kubeconfig, request["status"]["token"], kube.ca_file)
    wait_for(lambda: reader.http("GET", f"{ns}/configmaps")[0] == 200)  # the binding takes effect moments later
    code, status = reader.http("GET", f"{ns}/secrets")
    assert (code, status["reason"], status["message"]) == (403, "Forbidden", (
        'secrets is forbidden: User "system:serviceaccount:rbac:reader" cannot list resource "secrets" '
        'in API group "" in the namespace "rbac"'))
    assert reader.http("GET", "/api/v1/configmaps")[0] == 403  # the Role is for its namespace only
    anonymous = KubeEndpoint("real", kube.url, kube.kubeconfig, "", kube.ca_file)
    assert anonymous.http("GET", f"{ns}/configmaps")[0] == 401


def _get(kube: KubeEndpoint, path: str, accept: str) -> tuple[str, bytes]:
    with kube.open("GET", path, headers={"Accept": accept}) as response:
        return response.headers["Content-Type"], response.read()


def test_aggregated_discovery_openapi_v2_and_protobuf(kube: KubeEndpoint, crd: Any) -> None:
    kind, body = _get(kube, "/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    document = json.loads(body)
    assert kind.startswith("application/json;g=apidiscovery.k8s.io;v=v2") and document["kind"] == "APIGroupDiscoveryList"
    example = next(g for g in document["items"] if g["metadata"]["name"] == "example.com")
    resource = example["versions"][0]["resources"][0]
    assert (resource["resource"], resource["shortNames"], resource["categories"]) == ("widgets", ["wd"], ["modelarts"])
    kind, body = _get(kube, "/openapi/v2", "application/json")
    assert json.loads(body)["swagger"] == "2.0"
    kind, body = _get(kube, "/api/v1/namespaces/default", "application/vnd.kubernetes.protobuf")
    assert kind == "application/vnd.kubernetes.protobuf" and body.startswith(b"k8s\x00")


def test_no_plain_http_and_no_unknown_certificates(kube: KubeEndpoint) -> None:
    """The API is served over TLS only, with a certificate of the cluster's own CA."""
    plain = kube.url.replace("https://", "http://") + "/version"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain, timeout=5).read()
    with pytest.raises(urllib.error.URLError) as error:
        urllib.request.urlopen(kube.url + "/version", timeout=5, context=ssl.create_default_context()).read()
    assert "CERTIFICATE_VERIFY_FAILED" in str(error.value)
