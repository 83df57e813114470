"""The API semantics through the Python client and raw HTTP: status codes, metadata, subresources, watches."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import kubernetes
import pytest

from modelarts_operator.localkube.server import LocalKube

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


def http(kube: LocalKube, method: str, path: str, body: Any = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    data = (body if isinstance(body, bytes) else json.dumps(body).encode()) if body is not None else None
    request = urllib.request.Request(kube.url + path, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def watch(kube: LocalKube, path: str, **params: Any) -> list[dict[str, Any]]:
    """A whole watch stream, which the server ends after timeoutSeconds."""
    query = "&".join(f"{k}={v}" for k, v in {"watch": "true", **params}.items())
    with urllib.request.urlopen(f"{kube.url}{path}?{query}", timeout=20) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return [json.loads(line) for line in response]


@pytest.fixture
def widgets(client: Any) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def test_create_get_list_and_error_bodies(kube: LocalKube, crd: Any, widget: Any) -> None:
    manifest = widget("")
    manifest["metadata"] = {"generateName": "w-", "labels": {"a": "b"}}
    code, created = http(kube, "POST", WIDGETS, manifest)
    assert code == 201
    meta = created["metadata"]
    assert meta["name"].startswith("w-") and len(meta["name"]) == 7
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    code, listed = http(kube, "GET", WIDGETS + "?labelSelector=a%3Db")
    assert (code, listed["kind"], listed["apiVersion"]) == (200, "WidgetList", "example.com/v1")
    assert [i["metadata"]["name"] for i in listed["items"]] == [meta["name"]]
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])

    code, status = http(kube, "GET", WIDGETS + "/missing")
    assert code == 404
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'widgets.example.com "missing" not found', "reason": "NotFound",
                      "details": {"name": "missing", "group": "example.com", "kind": "widgets"}, "code": 404}
    code, status = http(kube, "POST", WIDGETS, {**created, "metadata": {"name": meta["name"]}})
    assert (code, status["reason"], status["details"]["name"]) == (409, "AlreadyExists", meta["name"])


def test_bad_requests_get_4xx_statuses(kube: LocalKube, crd: Any) -> None:
    assert http(kube, "POST", WIDGETS, b"{not json")[0] == 400
    assert http(kube, "GET", WIDGETS + "?labelSelector=a%20in%20(b")[0] == 400
    assert http(kube, "GET", "/apis/example.com/v1/gizmos")[0] == 404
    assert http(kube, "GET", "/apis/example.com/v9/widgets")[0] == 404
    assert http(kube, "POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "x"}})[0] == 404
    assert http(kube, "PATCH", "/api/v1/namespaces/default/configmaps/x", {}, "application/bogus")[0] == 404
    assert http(kube, "POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00garbage",
                "application/vnd.kubernetes.protobuf")[0] == 415
    code, status = http(kube, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "Bad_Name"}})
    assert (code, status["reason"]) == (422, "Invalid")


def test_conflicts_and_failed_json_patch_tests(widgets: Any, crd: Any, widget: Any) -> None:
    created = widgets.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("w"))
    stale = dict(created)
    widgets.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", {"spec": {"replicas": 2}})
    with pytest.raises(kubernetes.client.ApiException) as error:
        widgets.replace_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", stale)
    assert error.value.status == 409 and json.loads(error.value.body)["reason"] == "Conflict"
    test = [{"op": "test", "path": "/metadata/resourceVersion", "value": stale["metadata"]["resourceVersion"]},
            {"op": "replace", "path": "/spec/replicas", "value": 3}]
    with pytest.raises(kubernetes.client.ApiException) as error:
        widgets.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", test,
                                               _content_type="application/json-patch+json")
    assert error.value.status == 422


def test_generation_and_status_subresource(widgets: Any, crd: Any, widget: Any) -> None:
    args = ("example.com", "v1", "default", "widgets", "w")
    widgets.create_namespaced_custom_object(*args[:4], widget("w"))
    labelled = widgets.patch_namespaced_custom_object(*args, {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1  # metadata changes do not count
    spec_changed = widgets.patch_namespaced_custom_object(*args, {"spec": {"replicas": 2}, "status": {"a": 1}})
    assert spec_changed["metadata"]["generation"] == 2 and "status" not in spec_changed  # main endpoint ignores status
    status = widgets.patch_namespaced_custom_object_status(*args, {"spec": {"replicas": 5}, "status": {"phase": "Done"}})
    assert status["status"] == {"phase": "Done"} and status["spec"]["replicas"] == 2  # status endpoint ignores spec
    assert status["metadata"]["generation"] == 2
    unchanged = widgets.patch_namespaced_custom_object(*args, {"spec": {"replicas": 2}})
    assert unchanged["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]  # no-op writes nothing


def test_watch_resumes_from_a_resource_version_without_losing_events(kube: LocalKube, widgets: Any, crd: Any, widget: Any) -> None:
    first = widgets.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("a"))
    rv = first["metadata"]["resourceVersion"]
    widgets.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("b"))
    widgets.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "a", {"spec": {"replicas": 2}})
    widgets.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "b")
    events = watch(kube, WIDGETS, resourceVersion=rv, timeoutSeconds=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)
    # Without a resourceVersion, the current objects come first as ADDED.
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in watch(kube, WIDGETS, timeoutSeconds=1)] == [("ADDED", "a")]


def test_cluster_wide_watch_with_bookmarks_and_timeout() -> None:
    with LocalKube(bookmark_interval=0.2) as kube:
        http(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
        for ns in ("default", "other"):
            http(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"cm-{ns}"}})
        started = time.monotonic()
        events = watch(kube, "/api/v1/configmaps", resourceVersion=1, allowWatchBookmarks="true", timeoutSeconds=1)
        assert 0.9 < time.monotonic() - started < 5
        changes = [(e["type"], e["object"]["metadata"]["namespace"]) for e in events if e["type"] != "BOOKMARK"]
        assert changes == [("ADDED", "default"), ("ADDED", "other")]
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        assert bookmarks and bookmarks[-1]["object"]["metadata"]["resourceVersion"] == events[1]["object"]["metadata"]["resourceVersion"]
        only_other = watch(kube, "/api/v1/namespaces/other/configmaps", resourceVersion=1, timeoutSeconds=1)
        assert [e["object"]["metadata"]["name"] for e in only_other] == ["cm-other"]


def test_state_file_survives_a_restart_and_old_versions_are_gone(tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    with LocalKube(state_file=str(state)) as kube:
        http(kube, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    with LocalKube(state_file=str(state)) as kube:
        code, cm = http(kube, "GET", "/api/v1/namespaces/default/configmaps/kept")
        assert (code, cm["data"]) == (200, {"k": "v"})
        # The event history did not survive: an old resourceVersion gets 410 Gone, as a watch ERROR event.
        events = watch(kube, "/api/v1/namespaces/default/configmaps", resourceVersion=1, timeoutSeconds=1)
        assert [e["type"] for e in events] == ["ERROR"]
        assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")


def test_deleting_a_crd_unregisters_its_resource(kube: LocalKube, kubectl: Any, crd: Any, widget: Any) -> None:
    kubectl.apply(widget("w"))
    kubectl("delete", "crd", "widgets.example.com", "--timeout=10s")
    assert http(kube, "GET", WIDGETS)[0] == 404
    assert "widgets" not in json.dumps(http(kube, "GET", "/apis")[1])


def test_namespace_deletion_waits_for_finalized_contents(kube: LocalKube) -> None:
    http(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    http(kube, "POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "held", "finalizers": ["x/y"]}})
    code, ns = http(kube, "DELETE", "/api/v1/namespaces/doomed")
    assert (code, ns["status"]["phase"]) == (200, "Terminating")
    assert http(kube, "POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "new"}})[0] == 403
    http(kube, "PATCH", "/api/v1/namespaces/doomed/configmaps/held", {"metadata": {"finalizers": None}},
         "application/merge-patch+json")
    assert http(kube, "GET", "/api/v1/namespaces/doomed")[0] == 404
