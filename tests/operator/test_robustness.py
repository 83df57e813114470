"""Deletion always finishes or says how to finish, and garbage in the operator's own annotations is
no traceback loop: issue 11's parts 3 and 4, end to end with kubectl on both Kubernetes backends."""

from __future__ import annotations

import time

import pytest

from modelarts_operator.api.conditions import find_condition
from support import QUICK

pytestmark = pytest.mark.slow

ABANDON = "modelarts.mlops.dev/abandon"
GARBAGE = {
    "modelarts.mlops.dev/last-handled-configuration": "{not json",
    "modelarts.mlops.dev/finalize": '{"retries": "many", "started": "yesterday"}',
    "modelarts.mlops.dev/wake": "[1, 2",
}


@pytest.fixture(scope="module")
def code(stack) -> str:
    stack.apply(stack.config_map("robust-code", {"train.py": QUICK}))
    return "robust-code"


def timed_delete(stack, kind: str, name: str) -> float:
    started = time.monotonic()
    stack.delete(kind, name, timeout=60)
    return time.monotonic() - started


def test_nothing_created_is_deleted_without_credentials(stack, code):
    """Its Secret never existed, so it created nothing: the deletion needs no cloud at all."""
    stack.apply(stack.algorithm("algo-never-created", code, credentialsSecret="never-existed"))
    stack.wait_condition("modelartsalgorithm", "algo-never-created", "False", "CredentialsMissing")
    assert timed_delete(stack, "modelartsalgorithm", "algo-never-created") < 30
    deleted = stack.wait_event("algo-never-created", "Deleted")
    assert deleted["message"] == "deleted algorithm (none) and 0 code files"


def test_unusable_credentials_name_the_way_out_and_abandon_finishes(stack, code):
    stack.apply(stack.secret("robust-creds"))
    stack.apply(stack.algorithm("algo-stranded", code, credentialsSecret="robust-creds"))
    created = stack.wait_ready("modelartsalgorithm", "algo-stranded")["status"]
    stack.apply(stack.secret("robust-creds", modelartsEndpoint="http://127.0.0.1:9", obsEndpoint="http://127.0.0.1:9"))
    time.sleep(6)  # past the operator's 5 s Secret cache: the deletion sees the broken endpoints
    stack.kubectl("delete", "modelartsalgorithm", "algo-stranded", "-n", stack.namespace, "--wait=false")

    failed = stack.wait_event("algo-stranded", "DeleteFailed", timeout=90)
    assert f"{stack.namespace}/robust-creds" in failed["message"] and f"{ABANDON}=true" in failed["message"]
    obj = stack.get("modelartsalgorithm", "algo-stranded")
    assert f"{ABANDON}=true" in obj["status"]["message"]
    assert find_condition(obj["status"], "Synced")["reason"] == "DeleteFailed"

    stack.kubectl("annotate", "modelartsalgorithm", "algo-stranded", "-n", stack.namespace, f"{ABANDON}=true")
    stack.wait_gone("modelartsalgorithm", "algo-stranded", timeout=60)
    assert stack.wait_event("algo-stranded", "Abandoned")["type"] == "Warning"
    left = stack.api.find_algorithm(created["cloudName"])  # abandoned: left in the cloud, as asked
    assert left is not None and left.id == created["algorithmId"]
    stack.api.delete_algorithm(left.id)


def test_garbage_in_the_operators_annotations_is_repaired(stack, code):
    manifest = stack.algorithm("algo-garbage", code)
    manifest["metadata"]["annotations"] = dict(GARBAGE)
    stack.apply(manifest)
    stack.wait_ready("modelartsalgorithm", "algo-garbage")

    # garbage again on a running object, then a spec change that must still be acted on
    stack.kubectl("annotate", "--overwrite", "modelartsalgorithm", "algo-garbage", "-n", stack.namespace,
                  *(f"{key}={value}" for key, value in GARBAGE.items()))
    moved = f"obs://{stack.bucket}/code/algo-garbage-moved/"
    stack.kubectl("patch", "modelartsalgorithm", "algo-garbage", "-n", stack.namespace, "--type=merge",
                  "-p", f'{{"spec": {{"code": {{"uploadTo": "{moved}"}}}}}}')
    obj = stack.wait_for(lambda: (o := stack.get("modelartsalgorithm", "algo-garbage"))
                         and o["status"].get("codeLocation") == moved and o["status"]["observedGeneration"] == 2 and o,
                         60, "the move of the code to be applied")
    assert find_condition(obj["status"], "Ready")["status"] == "True"

    stack.kubectl("annotate", "--overwrite", "modelartsalgorithm", "algo-garbage", "-n", stack.namespace,
                  *(f"{key}={value}" for key, value in GARBAGE.items()))
    assert timed_delete(stack, "modelartsalgorithm", "algo-garbage") < 60
    assert "Traceback" not in stack.log_text()
    assert "ignoring the unreadable annotation" in stack.log_text()
    assert stack.object_keys(moved) == [] and stack.object_keys(f"obs://{stack.bucket}/code/algo-garbage/") == []


# --- last: the namespace goes, with a resource in it that never could create anything -----------------


def test_namespace_deletion_never_hangs_on_a_resource_that_created_nothing(stack, code):
    stack.apply(stack.training_job("tj-orphan", "no-such-algorithm", credentialsSecret="never-existed"))
    stack.wait_condition("trainingjob", "tj-orphan", "False", "WaitingForDependency")
    started = time.monotonic()
    stack.kubectl("delete", "namespace", stack.namespace, "--wait", "--timeout=60s", timeout=90)
    assert time.monotonic() - started < 60
    assert "Traceback" not in stack.log_text()
