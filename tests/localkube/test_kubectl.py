"""Real kubectl 1.32 against both backends: apply, get with columns, wait, patch, replace, delete."""

from __future__ import annotations

import threading
from typing import Any

import kubernetes
import pytest
import yaml


def test_apply_and_get_with_printer_columns_category_and_short_name(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w1", replicas=3))
    result = kubectl.apply(widget("w1", replicas=4))
    assert "widget.example.com/w1 configured" in result.stdout
    for resource in ("widgets", "widget", "wd", "modelarts", "widgets.example.com"):
        lines = kubectl("get", resource).splitlines()
        assert lines[0].split() == ["NAME", "TARGET", "REPLICAS", "READY", "AGE"], resource
        assert lines[1].split()[:3] == ["w1", "obs://bucket/data", "4"], resource
    assert kubectl("get", "crd").split()[:3] == ["NAME", "CREATED", "AT"]
    obj = yaml.safe_load(kubectl("get", "wd", "w1", "-o", "yaml"))
    assert obj["spec"] == {"target": "obs://bucket/data", "replicas": 4, "size": "small"}  # size defaulted
    assert obj["metadata"]["generation"] == 2


def test_label_and_field_selectors(kubectl: Any, crd: Any, widget: Any) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        w = widget(name, size="big" if name == "b" else "small")
        w["metadata"]["labels"] = {"tier": tier}
        kubectl.apply(w)
    names = lambda *args: kubectl("get", "wd", "-o", "name", *args).split()  # noqa: E731
    assert names("-l", "tier=web") == ["widget.example.com/a", "widget.example.com/c"]
    assert names("-l", "tier!=web") == ["widget.example.com/b"]
    assert names("-l", "tier in (db,cache)") == ["widget.example.com/b"]
    assert names("-l", "!tier") == []
    assert names("--field-selector", "metadata.name=c") == ["widget.example.com/c"]
    # Fields select only where the type allows it: the CRD's selectableFields, the metadata name
    # and namespace, a few per built-in type.
    assert names("--field-selector", "spec.size=big,metadata.namespace=default") == ["widget.example.com/b"]
    refused = kubectl.run("get", "wd", "--field-selector", "spec.target=obs://bucket/data", check=False)
    assert "field label not supported: spec.target" in refused.stderr
    refused = kubectl.run("get", "configmaps", "--field-selector", "data.x=y", check=False)
    assert '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"' in refused.stderr
    assert kubectl("get", "namespaces", "-o", "name", "--field-selector", "status.phase=Active,metadata.name=default") \
        == "namespace/default\n"
    assert "SELECTOR" not in kubectl("get", "wd", "-l", "tier=web", "--show-labels")


def test_wait_for_condition_set_through_status_subresource(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w1"))
    waiter = kubectl.run("wait", "--for=condition=Ready", "wd/w1", "--timeout=1s", check=False)
    assert waiter.returncode != 0 and "timed out" in waiter.stderr
    status = '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
    kubectl("patch", "wd", "w1", "--subresource=status", "--type=merge", "-p", status)
    assert "condition met" in kubectl("wait", "--for=condition=Ready", "wd/w1", "--timeout=10s")
    assert kubectl("get", "wd", "w1", "--no-headers").split()[3] == "True"


def test_patch_merge_json_strategic_and_replace(kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w1", tags=["a"]))
    kubectl("patch", "wd", "w1", "--type=merge", "-p", '{"spec":{"replicas":2}}')
    kubectl("patch", "wd", "w1", "--type=json", "-p", '[{"op":"add","path":"/spec/tags/-","value":"b"}]')
    spec = kubectl.json("get", "wd", "w1")["spec"]
    assert spec["replicas"] == 2 and spec["tags"] == ["a", "b"]
    # Custom resources take no strategic merge patch, as on a real server.
    refused = kubectl.run("patch", "wd", "w1", "-p", '{"spec":{"replicas":3}}', check=False)
    assert refused.returncode != 0 and "application/merge-patch+json" in refused.stderr

    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "finalizers": ["a/b"]},
                   "data": {"x": "1"}})
    kubectl("patch", "configmap", "cm", "-p", '{"data":{"y":"2"},"metadata":{"finalizers":["c/d"]}}')
    cm = kubectl.json("get", "configmap", "cm")
    assert cm["data"] == {"x": "1", "y": "2"}
    # Merged as a set, not replaced; the patch's new items first, as the real server orders them.
    assert cm["metadata"]["finalizers"] == ["c/d", "a/b"]

    current = kubectl.json("get", "wd", "w1")
    current["spec"] = {"target": "obs://other/place"}
    assert "replaced" in kubectl("replace", "-f", "-", input=yaml.safe_dump(current))
    replaced = kubectl.json("get", "wd", "w1")
    assert replaced["spec"] == {"target": "obs://other/place", "replicas": 1, "size": "small"}
    assert replaced["metadata"]["generation"] == current["metadata"]["generation"] + 1
    stale = kubectl.run("replace", "-f", "-", input=yaml.safe_dump(current), check=False)
    assert "the object has been modified" in stale.stderr


def test_create_secret_configmap_namespace_with_kubectl_create(kubectl: Any) -> None:
    # kubectl's typed clients send protobuf bodies for these.
    kubectl("create", "namespace", "team")
    kubectl("create", "secret", "generic", "creds", "-n", "team", "--from-literal=ak=AK1", "--from-literal=sk=SK1")
    kubectl("create", "configmap", "settings", "-n", "team", "--from-literal=region=cn-north-4")
    secret = kubectl.json("get", "secret", "creds", "-n", "team")
    assert secret["type"] == "Opaque" and set(secret["data"]) == {"ak", "sk"}
    assert kubectl("get", "secret", "creds", "-n", "team", "-o", "jsonpath={.data.ak}") == "QUsx"
    assert kubectl("get", "secrets", "-n", "team").split()[:4] == ["NAME", "TYPE", "DATA", "AGE"]
    assert kubectl.json("get", "configmap", "settings", "-n", "team")["data"] == {"region": "cn-north-4"}
    kubectl("delete", "namespace", "team", "--timeout=30s")  # waits until it is gone
    assert "team" not in kubectl("get", "namespaces", "-o", "name")
    assert kubectl("get", "configmaps,secrets", "-n", "team", "-o", "name") == ""


def test_delete_waits_for_finalizer_removed_by_a_watcher(kubectl: Any, crd: Any, widget: Any, client: Any) -> None:
    w = widget("held")
    w["metadata"]["finalizers"] = ["example.com/hold"]
    kubectl.apply(w)
    api = kubernetes.client.CustomObjectsApi(client)
    seen: list[dict[str, Any]] = []

    def release_when_deleting() -> None:
        stream = kubernetes.watch.Watch()
        for event in stream.stream(api.list_namespaced_custom_object, "example.com", "v1", "default", "widgets",
                                   field_selector="metadata.name=held", timeout_seconds=20):
            seen.append(event)
            meta = event["object"]["metadata"]
            if event["type"] == "MODIFIED" and meta.get("deletionTimestamp") and meta.get("finalizers"):
                patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
                         {"op": "remove", "path": "/metadata/finalizers"}]
                api.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "held", patch,
                                                   _content_type="application/json-patch+json")
            if event["type"] == "DELETED":
                stream.stop()

    watcher = threading.Thread(target=release_when_deleting)
    watcher.start()
    try:
        assert 'widget.example.com "held" deleted' in kubectl("delete", "wd", "held", "--timeout=20s")
        assert kubectl("get", "wd", "-o", "name") == ""
    finally:
        watcher.join(timeout=25)
    assert not watcher.is_alive()
    assert [e["type"] for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    # The update that empties the finalizers is not stored: the object goes as it last was, so its
    # DELETED event still lists the finalizer (at a newer resourceVersion).
    modified, deleted = (e["object"]["metadata"] for e in seen[1:])
    assert deleted["finalizers"] == ["example.com/hold"] and deleted["deletionTimestamp"] == modified["deletionTimestamp"]
    assert int(deleted["resourceVersion"]) > int(modified["resourceVersion"])


def test_errors_are_shown_like_a_real_server(kubectl: Any, crd: Any) -> None:
    missing = kubectl.run("get", "wd", "nope", check=False)
    assert missing.stderr.strip() == 'Error from server (NotFound): widgets.example.com "nope" not found'
    kubectl("create", "configmap", "dup")
    dup = kubectl.run("create", "configmap", "dup", check=False)
    assert 'configmaps "dup" already exists' in dup.stderr
    unknown = kubectl.run("get", "gizmos", check=False)
    assert 'the server doesn\'t have a resource type "gizmos"' in unknown.stderr


@pytest.mark.kube_backends("emulator")
def test_the_emulator_refuses_server_side_apply(kube_backend: str, kubectl: Any, crd: Any, widget: Any) -> None:
    """No server-side apply here (test_real_server.py shows the real one): kubectl says so plainly."""
    refused = kubectl.run("apply", "--server-side", "-f", "-", input=yaml.safe_dump(widget("w")), check=False)
    assert refused.returncode != 0 and "Server-side apply not available on the server" in refused.stderr
