"""Server-side apply of the samples (as Argo CD and Flux can do): the operator's own writes (status,
finalizers, annotations) never take ownership of, or conflict with, the fields users apply; a second
field manager's change is followed; re-applying the same manifests changes nothing.

Real control plane only: the emulator has no server-side apply (docs/local-kube.md)."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.kube_backends("real")]

USERS = {"gitops", "tuner"}


def server_side_apply(stack, documents: list[dict], manager: str, force: bool = False) -> str:
    args = ["apply", "--server-side", f"--field-manager={manager}", "-n", stack.namespace, "-f", "-"]
    if force:
        args.append("--force-conflicts")
    return stack.kubectl(*args, input="\n---\n".join(yaml.safe_dump(doc) for doc in documents))


def managers(stack, kind: str, name: str) -> dict[str, dict]:
    """manager name -> the fields it owns (fieldsV1), merged over its entries."""
    obj = json.loads(stack.kubectl("get", kind, name, "-n", stack.namespace, "-o", "json", "--show-managed-fields"))
    owned: dict[str, dict] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        owned.setdefault(entry["manager"], {}).update(entry.get("fieldsV1") or {})
    return owned


def test_server_side_apply_and_a_second_field_manager(stack):
    documents = stack.local_stack(**stack.small_training)
    server_side_apply(stack, documents, "gitops")
    stack.wait_ready("modelartsservice", "mnist-service", timeout=240)
    kinds = [(doc["kind"].lower(), doc["metadata"]["name"]) for doc in documents]
    for kind, name in kinds:
        stack.wait_ready(kind, name)

    # Re-applying the same manifests is a no-op: no conflict, no new generation, nothing written.
    before = {k: stack.get(*k)["metadata"] for k in kinds}
    server_side_apply(stack, documents, "gitops")
    for key in kinds:
        after = stack.get(*key)["metadata"]
        assert after["generation"] == before[key]["generation"], key
        assert after["resourceVersion"] == before[key]["resourceVersion"], key

    # A second manager takes over one field; the operator follows it.
    patch = {"apiVersion": "modelarts.mlops.dev/v1alpha1", "kind": "ModelArtsService",
             "metadata": {"name": "mnist-service"}, "spec": {"instanceCount": 2}}
    server_side_apply(stack, [patch], "tuner", force=True)
    stack.wait_for(lambda: ((stack.get("modelartsservice", "mnist-service") or {}).get("status") or {})
                   .get("instanceCount") == 2, 90, "the service to scale to 2 instances")
    stack.wait_ready("modelartsservice", "mnist-service")

    for key in kinds:
        owned = managers(stack, *key)
        assert "gitops" in owned, (key, list(owned))
        operator_managers = set(owned) - USERS
        assert {"modelarts-operator", "kopf"} <= operator_managers, f"{key}: managers {list(owned)}"
        for manager in operator_managers:
            assert "f:spec" not in owned[manager], f"{key}: {manager} took ownership of spec fields: {owned[manager]}"
    service = managers(stack, "modelartsservice", "mnist-service")
    assert "f:instanceCount" in service["tuner"]["f:spec"]
    assert "f:instanceCount" not in service["gitops"]["f:spec"]  # taken over, not shared
    assert "f:flavor" in service["gitops"]["f:spec"]
    print(json.dumps({k: sorted(v) for k, v in service.items()}))
