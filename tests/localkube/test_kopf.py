"""A tiny Kopf operator on both backends: it sees create/update/delete, patches status and holds deletion."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import kopf
import kubernetes
import pytest
from kopf.testing import KopfRunner

GROUP, VERSION, PLURAL = "example.com", "v1", "widgets"


class Seen:
    """What the operator's handlers saw, safe to read from the test thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []

    def add(self, kind: str, name: str) -> None:
        with self.lock:
            self.events.append((kind, name))

    def names(self, kind: str) -> list[str]:
        with self.lock:
            return [n for k, n in self.events if k == kind]


@pytest.fixture
def operator(kube: Any, crd: Any) -> Iterator[Seen]:
    seen = Seen()
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)  # reads $KUBECONFIG, set by the kube fixture

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="created")
    def created(name: str, spec: dict[str, Any], body: kopf.Body, **_: Any) -> dict[str, Any]:
        seen.add("create", name)
        kopf.info(body, reason="Seen", message=f"widget {name} created")
        return {"observedTarget": spec["target"]}  # Kopf stores a handler's result in status

    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, field="spec")
    def updated(name: str, patch: kopf.Patch, **_: Any) -> None:
        seen.add("update", name)
        patch.status["conditions"] = [{"type": "Ready", "status": "True"}]

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.add("delete", name)

    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    settings.persistence.finalizer = "example.com/kopf-finalizer"
    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, settings=settings) as runner:
        yield seen
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None


@pytest.fixture
def widgets(client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def _get(widgets: Any, name: str) -> dict[str, Any] | None:
    try:
        return widgets.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_operator_sees_lifecycle_patches_status_and_holds_deletion(operator: Seen, widgets: Any, kubectl: Any, widget: Any, wait_for: Any) -> None:
    widgets.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w1"))
    obj = wait_for(lambda: (o := _get(widgets, "w1")) and o.get("status", {}).get("created") and o)
    assert obj["status"]["created"] == {"observedTarget": "obs://bucket/data"}
    assert "example.com/kopf-finalizer" in obj["metadata"]["finalizers"]
    assert operator.names("create") == ["w1"]
    # kopf.info() posts a core v1 event about the object.
    events = wait_for(lambda: [e for e in kubectl.json("get", "events")["items"] if e["involvedObject"]["name"] == "w1"])
    assert [(e["reason"], e["message"]) for e in events] == [("Seen", "widget w1 created")]
    lines = kubectl("get", "events").splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split()[1:] == ["Normal", "Seen", "widget/w1", "widget", "w1", "created"]

    widgets.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1", {"spec": {"replicas": 3}})
    kubectl("wait", "--for=condition=Ready", "widget/w1", "--timeout=10s")
    assert operator.names("update") == ["w1"]

    # The finalizer holds the object until the delete handler has run.
    kubectl("delete", "widget", "w1", "--timeout=10s")
    assert operator.names("delete") == ["w1"]
    assert _get(widgets, "w1") is None


def test_hundred_create_delete_rounds_lose_no_event(operator: Seen, widgets: Any, widget: Any, wait_for: Any) -> None:
    rounds = 100
    for i in range(rounds):
        name = f"round-{i}"
        widgets.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget(name))
        wait_for(lambda name=name: name in operator.names("create"))
        widgets.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
        wait_for(lambda name=name: _get(widgets, name) is None)
    assert operator.names("create") == [f"round-{i}" for i in range(rounds)]
    assert operator.names("delete") == [f"round-{i}" for i in range(rounds)]
