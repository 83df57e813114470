"""The API semantics through the Python client and raw HTTP: status codes, metadata, subresources, watches."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import kubernetes
import pytest
from kubebackend import KubeEndpoint

from modelarts_operator.local.kube.server import LocalKube

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


def watch(kube: KubeEndpoint, path: str, **params: Any) -> list[dict[str, Any]]:
    """A whole watch stream, which the server ends after timeoutSeconds."""
    query = urllib.parse.urlencode({"watch": "true", **params})
    with kube.open("GET", f"{path}?{query}", timeout=20) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return [json.loads(line) for line in response]


@pytest.fixture
def widgets(client: Any) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def test_create_get_list_and_error_bodies(kube: KubeEndpoint, crd: Any, widget: Any) -> None:
    manifest = widget("")
    manifest["metadata"] = {"generateName": "w-", "labels": {"a": "b"}}
    code, created = kube.http("POST", WIDGETS, manifest)
    assert code == 201
    meta = created["metadata"]
    assert meta["name"].startswith("w-") and len(meta["name"]) == 7
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    code, listed = kube.http("GET", WIDGETS + "?labelSelector=a%3Db")
    assert (code, listed["kind"], listed["apiVersion"]) == (200, "WidgetList", "example.com/v1")
    assert [i["metadata"]["name"] for i in listed["items"]] == [meta["name"]]
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])

    code, status = kube.http("GET", WIDGETS + "/missing")
    assert code == 404
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'widgets.example.com "missing" not found', "reason": "NotFound",
                      "details": {"name": "missing", "group": "example.com", "kind": "widgets"}, "code": 404}
    code, status = kube.http("POST", WIDGETS, {**created, "metadata": {"name": meta["name"]}})
    assert (code, status["reason"], status["details"]["name"]) == (409, "AlreadyExists", meta["name"])


def test_bad_requests_get_4xx_statuses(kube: KubeEndpoint, crd: Any) -> None:
    code, status = kube.http("POST", WIDGETS, b"{not json")
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"].startswith("the object provided is unrecognized (must be of type Widget)")
    assert kube.http("GET", WIDGETS + "?labelSelector=a%20in%20(b")[0] == 400
    # Below /apis, what no group serves is the plain-text 404 page, not a Status ...
    for path in ("/apis/example.com/v1/gizmos", "/apis/example.com/v9/widgets", "/apis/nowhere.io",
                 "/apis/nowhere.io/v1", "/apis/example.com/v1/widgets/w"):
        assert kube.http("GET", path) == (404, {"text": "404 page not found\n"}), path
    # ... below /api/v1 a NotFound Status; a custom resource names the object it has no such subresource for.
    assert kube.http("GET", "/api/v1/gizmos")[1]["message"] == "the server could not find the requested resource"
    assert kube.http("GET", WIDGETS + "/w/scale")[1]["message"] == 'widgets.example.com "w" not found'
    code, status = kube.http("POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "x"}})
    assert (code, status["message"]) == (404, 'namespaces "nowhere" not found')
    # The media type is checked before the object is looked up.
    code, status = kube.http("PATCH", "/api/v1/namespaces/default/configmaps/x", {}, "application/bogus")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    code, status = kube.http("PATCH", WIDGETS + "/x", {}, "application/strategic-merge-patch+json")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in status["message"]
    kube.http("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}})
    code, status = kube.http("PATCH", "/api/v1/namespaces/default/configmaps/cm", [], "application/merge-patch+json")
    assert (code, status["reason"]) == (400, "BadRequest") and status["message"].startswith("error decoding patch")
    code, status = kube.http("POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00garbage",
                             "application/vnd.kubernetes.protobuf")
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"].startswith("the object provided is unrecognized (must be of type ConfigMap): proto: ")
    code, status = kube.http("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "Bad_Name"}})
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain '
        "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    code, status = kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "Team"}})
    assert (code, status["details"]["causes"][0]["message"]) == (422, (
        'Invalid value: "Team": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '
        "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
        "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"))
    code, status = kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "a.b"}})
    assert (code, status["message"]) == (422, 'Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": must not contain dots')
    code, status = kube.http("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "data": {"k": "!"}})
    assert (code, status["message"]) == (
        400, 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0')
    code, status = kube.http("POST", "/api/v1/namespaces/default/events", {
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Widget", "name": "w", "namespace": "other"}})
    assert (code, status["details"]["causes"][0]["field"]) == (422, "involvedObject.namespace")
    for name in ("default", "kube-system", "kube-public"):
        code, status = kube.http("DELETE", f"/api/v1/namespaces/{name}")
        assert (code, status["message"]) == (403, f'namespaces "{name}" is forbidden: this namespace may not be deleted')


def test_failed_json_patches_say_no_more_than_the_real_server(kube: KubeEndpoint) -> None:
    kube.http("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    for operation in ({"op": "test", "path": "/data/a", "value": "c"}, {"op": "remove", "path": "/data/x"},
                      {"op": "replace", "path": "/data/x/y", "value": "z"}, {"op": "bogus", "path": "/data/a"}):
        code, status = kube.http("PATCH", "/api/v1/namespaces/default/configmaps/cm", [operation],
                                 "application/json-patch+json")
        assert (code, status["reason"], status["message"]) == (
            422, "Invalid", "the server rejected our request due to an error in our request"), operation
    code, status = kube.http("PATCH", "/api/v1/namespaces/default/configmaps/cm", {"op": "add"}, "application/json-patch+json")
    assert (code, status["reason"]) == (400, "BadRequest") and status["message"].startswith("error decoding patch")


def test_server_set_fields_of_built_in_objects(kube: KubeEndpoint, crd: Any, widget: Any) -> None:
    code, ns = kube.http("GET", "/api/v1/namespaces/default")
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    # Namespaces keep their finalizers out of reach of updates (only /finalize changes them).
    code, ns = kube.http("PATCH", "/api/v1/namespaces/default", {"spec": {"finalizers": []}}, "application/merge-patch+json")
    assert (code, ns["spec"]) == (200, {"finalizers": ["kubernetes"]})
    code, crd_obj = kube.http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    assert crd_obj["spec"]["names"]["listKind"] == "WidgetList" and crd_obj["spec"]["conversion"] == {"strategy": "None"}
    code, event = kube.http("POST", "/api/v1/namespaces/default/events", {
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Widget", "name": "w", "namespace": "default"},
        "reason": "Seen", "message": "m", "type": "Normal"})
    assert code == 201
    assert {k: event[k] for k in ("reportingComponent", "reportingInstance", "source", "eventTime")} == {
        "reportingComponent": "", "reportingInstance": "", "source": {}, "eventTime": None}
    # Typed lists carry no kind per item; lists of custom resources do.
    kube.http("POST", WIDGETS, widget("w"))
    assert "kind" not in kube.http("GET", "/api/v1/namespaces/default/events")[1]["items"][0]
    assert kube.http("GET", WIDGETS)[1]["items"][0]["kind"] == "Widget"


def test_deletion_bumps_generation_and_a_crd_holds_its_cleanup_finalizer(kube: KubeEndpoint, crd: Any, widget: Any,
                                                                         wait_for: Any) -> None:
    # An object deleted at once is answered by a Success Status naming it.
    uid = kube.http("POST", WIDGETS, widget("free"))[1]["metadata"]["uid"]
    assert kube.http("DELETE", WIDGETS + "/free") == (200, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": "free", "group": "example.com", "kind": "widgets", "uid": uid}})
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    assert kube.http("POST", WIDGETS, held)[1]["metadata"]["generation"] == 1
    code, deleting = kube.http("DELETE", WIDGETS + "/held")
    meta = deleting["metadata"]
    # Controllers see a new generation once an object is being deleted.
    assert (code, meta["generation"], meta["deletionGracePeriodSeconds"]) == (200, 2, 0) and meta["deletionTimestamp"]
    code, deleting = kube.http("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    assert deleting["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert "deletionGracePeriodSeconds" not in deleting["metadata"]
    # The update that lets it go answers with the object as updated.
    code, released = kube.http("PATCH", WIDGETS + "/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert (code, released["metadata"].get("finalizers")) == (200, None) and released["metadata"]["deletionTimestamp"]
    wait_for(lambda: kube.http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0] == 404)


def test_lists_page_over_a_consistent_snapshot(kube: KubeEndpoint, crd: Any, widget: Any) -> None:
    for name in ("c", "a", "b"):
        kube.http("POST", WIDGETS, widget(name))
    code, first = kube.http("GET", WIDGETS + "?limit=2")
    assert (code, [i["metadata"]["name"] for i in first["items"]]) == (200, ["a", "b"])  # in storage-key order
    meta = first["metadata"]
    assert meta["remainingItemCount"] == 1 and meta["continue"]
    kube.http("POST", WIDGETS, widget("d"))
    kube.http("DELETE", WIDGETS + "/c")
    # The rest of the list is as it was at the first page's resourceVersion.
    _, rest = kube.http("GET", WIDGETS + "?limit=2&continue=" + meta["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]
    assert rest["metadata"] == {"continue": "", "resourceVersion": meta["resourceVersion"]}
    _, then = kube.http("GET", f"{WIDGETS}?resourceVersion={meta['resourceVersion']}&resourceVersionMatch=Exact")
    assert [i["metadata"]["name"] for i in then["items"]] == ["a", "b", "c"]
    _, now = kube.http("GET", WIDGETS)
    assert [i["metadata"]["name"] for i in now["items"]] == ["a", "b", "d"]
    # A selector leaves the count of the rest unsaid; so does a list that did not need paging.
    _, selected = kube.http("GET", WIDGETS + "?limit=1&labelSelector=x!%3Dy")
    assert "remainingItemCount" not in selected["metadata"] and selected["metadata"]["continue"]
    assert kube.http("GET", WIDGETS + "?limit=2&continue=garbage")[0] == 400
    code, status = kube.http("GET", f"{WIDGETS}?resourceVersion={int(now['metadata']['resourceVersion']) + 1000}")
    assert (code, status["reason"]) == (504, "Timeout") and "Too large resource version" in status["message"]


def test_conflicts_and_failed_json_patch_tests(widgets: Any, crd: Any, widget: Any) -> None:
    created = widgets.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("w"))
    stale = dict(created)
    widgets.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", {"spec": {"replicas": 2}})
    with pytest.raises(kubernetes.client.ApiException) as error:
        widgets.replace_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", stale)
    assert error.value.status == 409 and json.loads(error.value.body)["reason"] == "Conflict"
    # A custom resource is replaced only at a known resourceVersion (named by its resource, not its kind).
    unversioned = {**stale, "metadata": {k: v for k, v in stale["metadata"].items() if k != "resourceVersion"}}
    with pytest.raises(kubernetes.client.ApiException) as error:
        widgets.replace_namespaced_custom_object("example.com", "v1", "default", "widgets", "w", unversioned)
    assert (error.value.status, json.loads(error.value.body)["message"]) == (
        422, 'widgets.example.com "w" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update')
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


def test_watch_resumes_from_a_resource_version_without_losing_events(kube: KubeEndpoint, widgets: Any, crd: Any, widget: Any) -> None:
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


def test_cluster_wide_watch_with_initial_events_bookmark_and_timeout(kube: KubeEndpoint) -> None:
    _, listed = kube.http("GET", "/api/v1/configmaps?labelSelector=test%3Dwatch")
    since = listed["metadata"]["resourceVersion"]
    for ns in ("default", "kube-public"):
        kube.http("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"cm-{ns}", "labels": {"test": "watch"}}})
    started = time.monotonic()
    events = watch(kube, "/api/v1/configmaps", resourceVersion=since, labelSelector="test=watch", timeoutSeconds=1)
    assert 0.9 < time.monotonic() - started < 5
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in events] == [("ADDED", "default"), ("ADDED", "kube-public")]
    only_public = watch(kube, "/api/v1/namespaces/kube-public/configmaps", resourceVersion=since, labelSelector="test=watch",
                        timeoutSeconds=1)
    assert [e["object"]["metadata"]["name"] for e in only_public] == ["cm-kube-public"]
    # Starting from the current state, a client that takes bookmarks hears where the initial events end.
    events = watch(kube, "/api/v1/configmaps", labelSelector="test=watch", allowWatchBookmarks="true", timeoutSeconds=1)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    bookmark = events[-1]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(int(e["object"]["metadata"]["resourceVersion"]) for e in events[:2])


@pytest.mark.kube_backends("emulator")
def test_periodic_bookmarks(kube_backend: str) -> None:
    """The emulator's bookmark interval can be shortened (the real server's is about a minute)."""
    with LocalKube(bookmark_interval=0.2) as server:
        kube = KubeEndpoint("emulator", server.url, None)
        kube.http("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}})
        events = watch(kube, "/api/v1/configmaps", resourceVersion=1, allowWatchBookmarks="true", timeoutSeconds=1)
        assert events[0]["type"] == "ADDED" and {e["type"] for e in events[1:]} == {"BOOKMARK"} and len(events) >= 3
        assert events[-1]["object"]["metadata"]["resourceVersion"] == events[0]["object"]["metadata"]["resourceVersion"]


@pytest.mark.kube_backends("emulator")
def test_state_file_survives_a_restart_and_old_versions_are_gone(kube_backend: str, tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    with LocalKube(state_file=str(state)) as server:
        kube = KubeEndpoint("emulator", server.url, None)
        kube.http("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    with LocalKube(state_file=str(state)) as server:
        kube = KubeEndpoint("emulator", server.url, None)
        code, cm = kube.http("GET", "/api/v1/namespaces/default/configmaps/kept")
        assert (code, cm["data"]) == (200, {"k": "v"})
        # The event history did not survive: an old resourceVersion gets 410 Gone, as a watch ERROR event.
        events = watch(kube, "/api/v1/namespaces/default/configmaps", resourceVersion=1, timeoutSeconds=1)
        assert [e["type"] for e in events] == ["ERROR"]
        assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")


def test_deleting_a_crd_unregisters_its_resource(kube: KubeEndpoint, kubectl: Any, crd: Any, widget: Any, wait_for: Any) -> None:
    kubectl.apply(widget("w"))
    kubectl("delete", "crd", "widgets.example.com", "--timeout=10s")
    # The real server stops serving and drops the group from discovery moments after the CRD is gone.
    wait_for(lambda: kube.http("GET", WIDGETS)[0] == 404)
    wait_for(lambda: "example.com" not in json.dumps(kube.http("GET", "/apis")[1]))


def test_namespace_deletion_waits_for_finalized_contents(kube: KubeEndpoint, crd: Any, widget: Any, wait_for: Any) -> None:
    kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    kube.http("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "held", "finalizers": ["x/y"]}})
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    assert kube.http("POST", "/apis/example.com/v1/namespaces/doomed/widgets", held)[0] == 201
    code, ns = kube.http("DELETE", "/api/v1/namespaces/doomed")
    assert (code, ns["status"]["phase"]) == (200, "Terminating") and ns["metadata"]["deletionTimestamp"]
    code, status = kube.http("POST", "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "new"}})
    assert (code, status["message"]) == (
        403, "configmaps \"new\" is forbidden: unable to create new content in namespace doomed because it is being terminated")
    # Its contents are deleted, each waiting for its own finalizers.
    for path in ("/api/v1/namespaces/doomed/configmaps/held", "/apis/example.com/v1/namespaces/doomed/widgets/held"):
        wait_for(lambda path=path: kube.http("GET", path)[1]["metadata"].get("deletionTimestamp"))
    for path in ("/api/v1/namespaces/doomed/configmaps/held", "/apis/example.com/v1/namespaces/doomed/widgets/held"):
        kube.http("PATCH", path, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    wait_for(lambda: kube.http("GET", "/api/v1/namespaces/doomed")[0] == 404, timeout=30)


QUALIFIED = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
               "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
               "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def causes(status: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["field"], c["reason"], c["message"]) for c in status["details"]["causes"]}


def test_label_and_annotation_keys_and_values_are_validated(kube: KubeEndpoint, crd: Any, widget: Any) -> None:
    configmaps = "/api/v1/namespaces/default/configmaps"
    # Kopf's default handler id for a closure is no annotation key (the name part starts with '_').
    key = "modelarts.mlops.dev/_register_kind._locals_.cleanup"
    code, status = kube.http("POST", configmaps, {"metadata": {"name": "kopf", "annotations": {key: "{}"}}})
    assert (code, status["reason"], status["message"]) == (
        422, "Invalid", f'ConfigMap "kopf" is invalid: metadata.annotations: Invalid value: "{key}": name part {QUALIFIED}')
    # Every problem is one cause (Go map order: compared as sets).
    annotations = {"Bad_Prefix/x": "", "/x": "", "a/": "", "a/b/c": "", "-x": "", "x" * 64: "", "p" * 254 + "/n": "",
                   "Upper.Example.com/Fine": "annotation keys are checked lower-cased"}
    code, status = kube.http("POST", configmaps, {"metadata": {"name": "a", "annotations": annotations}})
    invalid = "FieldValueInvalid"
    assert (code, causes(status)) == (422, {
        ("metadata.annotations", invalid, f'Invalid value: "Bad_Prefix/x": prefix part {SUBDOMAIN}'),
        ("metadata.annotations", invalid, 'Invalid value: "/x": prefix part must be non-empty'),
        ("metadata.annotations", invalid, 'Invalid value: "a/": name part must be non-empty'),
        ("metadata.annotations", invalid, f'Invalid value: "a/": name part {QUALIFIED}'),
        ("metadata.annotations", invalid, f'Invalid value: "a/b/c": a qualified name {QUALIFIED} with an optional DNS '
                                          "subdomain prefix and '/' (e.g. 'example.com/MyName')"),
        ("metadata.annotations", invalid, f'Invalid value: "-x": name part {QUALIFIED}'),
        ("metadata.annotations", invalid, f'Invalid value: "{"x" * 64}": name part must be no more than 63 characters'),
        ("metadata.annotations", invalid, f'Invalid value: "{"p" * 254}/n": prefix part must be no more than 253 characters'),
    })
    code, status = kube.http("POST", configmaps, {"metadata": {"name": "big", "annotations": {"k": "x" * 262144}}})
    assert (code, causes(status)) == (422, {("metadata.annotations", "FieldValueTooLong",
                                             "Too long: may not be more than 262144 bytes")})
    # Label keys are case-sensitive qualified names; values are short and plain. The name comes first.
    labels = {"Upper.Example.com/x": "v", "_x": "v", "ok": "bad value", "long": "v" * 64, "empty": ""}
    code, status = kube.http("POST", configmaps, {"metadata": {"name": "Bad_", "labels": labels, "annotations": {"_a": ""}}})
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"
    assert causes(status) == {
        ("metadata.name", invalid, f'Invalid value: "Bad_": {SUBDOMAIN}'),
        ("metadata.labels", invalid, f'Invalid value: "Upper.Example.com/x": prefix part {SUBDOMAIN}'),
        ("metadata.labels", invalid, f'Invalid value: "_x": name part {QUALIFIED}'),
        ("metadata.labels", invalid, f'Invalid value: "bad value": {LABEL_VALUE}'),
        ("metadata.labels", invalid, f'Invalid value: "{"v" * 64}": must be no more than 63 characters'),
        ("metadata.annotations", invalid, f'Invalid value: "_a": name part {QUALIFIED}'),
    }
    # A namespace's name is also its kubernetes.io/metadata.name label's value (at most 63 characters).
    code, status = kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "a." + "b" * 62}})
    assert (code, [(c["field"], c["message"].rsplit(": ", 1)[1]) for c in status["details"]["causes"]]) == (422, [
        ("metadata.name", "must be no more than 63 characters"), ("metadata.name", "must not contain dots"),
        ("metadata.labels", "must be no more than 63 characters")])
    # Updates are checked too, and so are custom resources: metadata first, then the schema, in one answer.
    assert kube.http("POST", configmaps, {"metadata": {"name": "cm"}})[0] == 201
    code, status = kube.http("PATCH", configmaps + "/cm", {"metadata": {"labels": {"a": "b c"}}}, "application/merge-patch+json")
    assert (code, status["message"]) == (422, f'ConfigMap "cm" is invalid: metadata.labels: Invalid value: "b c": {LABEL_VALUE}')
    bad = widget("w", target="nowhere")
    bad["metadata"]["annotations"] = {"_x": "y"}
    code, status = kube.http("POST", WIDGETS, bad)
    assert (code, [c["field"] for c in status["details"]["causes"]]) == (422, ["metadata.annotations", "spec.target"])
    assert status["message"].startswith('Widget.example.com "w" is invalid: [metadata.annotations: Invalid value: "_x": ')


NAMESPACE_CONDITIONS = ["NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                        "NamespaceDeletionContentFailure", "NamespaceContentRemaining", "NamespaceFinalizersRemaining"]


def test_a_terminating_namespace_says_what_content_remains(kube: KubeEndpoint, crd: Any, widget: Any, wait_for: Any) -> None:
    """The namespace controller's conditions (Kopf reads them): the real server sets them seconds
    after the deletion and refreshes them as content goes; the emulator at once."""
    namespace = "/api/v1/namespaces/remains"
    kube.http("POST", "/api/v1/namespaces", {"metadata": {"name": "remains", "finalizers": ["example.com/last"]}})
    try:
        kube.http("POST", namespace + "/configmaps", {"metadata": {"name": "plain"}})
        kube.http("POST", namespace + "/configmaps", {"metadata": {"name": "held", "finalizers": ["x/y"]}})
        held = widget("held")
        held["metadata"]["finalizers"] = ["example.com/hold"]
        assert kube.http("POST", "/apis/example.com/v1/namespaces/remains/widgets", held)[0] == 201
        assert kube.http("DELETE", namespace)[1]["status"]["phase"] == "Terminating"

        def conditions() -> list[dict[str, Any]]:
            return kube.http("GET", namespace)[1]["status"].get("conditions") or []

        found = wait_for(conditions, timeout=30, interval=0.2)
        assert [c["type"] for c in found] == NAMESPACE_CONDITIONS
        assert all(set(c) == {"type", "status", "lastTransitionTime", "reason", "message"} for c in found)
        assert [(c["status"], c["reason"]) for c in found] == [
            ("False", "ResourcesDiscovered"), ("False", "ParsedGroupVersions"), ("False", "ContentDeleted"),
            ("True", "SomeResourcesRemain"), ("True", "SomeFinalizersRemain")]
        assert [c["message"] for c in found[3:]] == [
            "Some resources are remaining: configmaps. has 1 resource instances, widgets.example.com has 1 resource instances",
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances, "
            "x/y in 1 resource instances"]
        # As content goes, the conditions follow.
        kube.http("PATCH", namespace + "/configmaps/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        found = wait_for(lambda: (c := conditions()) and "configmaps" not in c[3]["message"] and c, timeout=30, interval=0.2)
        assert [c["message"] for c in found[3:]] == [
            "Some resources are remaining: widgets.example.com has 1 resource instances",
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"]
        kube.http("PATCH", "/apis/example.com/v1/namespaces/remains/widgets/held", {"metadata": {"finalizers": None}},
                  "application/merge-patch+json")
        # Emptied, held only by its own finalizer: every condition says all is done, spec.finalizers is empty.
        done = wait_for(lambda: (ns := kube.http("GET", namespace)[1])["spec"] == {} and ns, timeout=30, interval=0.2)
        assert [(c["type"], c["status"], c["reason"]) for c in done["status"]["conditions"]] == [
            (t, "False", r) for t, r in zip(NAMESPACE_CONDITIONS, ["ResourcesDiscovered", "ParsedGroupVersions",
                                                                    "ContentDeleted", "ContentRemoved", "ContentHasNoFinalizers"])]
        assert [c["message"] for c in done["status"]["conditions"][3:]] == [
            "All content successfully removed", "All content-preserving finalizers finished"]
    finally:
        kube.http("PATCH", namespace, {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    wait_for(lambda: kube.http("GET", namespace)[0] == 404, timeout=30)
