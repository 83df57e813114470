"""Invalid specs are refused by the CRD schema or its CEL rules at `kubectl apply`, naming the field."""

from __future__ import annotations

import copy

import pytest

pytestmark = pytest.mark.slow

API = "modelarts.mlops.dev/v1alpha1"


def dataset(name: str, **spec) -> dict:
    return {"apiVersion": API, "kind": "MnistDataset", "metadata": {"name": name},
            "spec": {"target": "obs://test-modelarts/v-data/", "credentialsSecret": "no-such-secret", **spec}}


def service(name: str, **spec) -> dict:
    return {"apiVersion": API, "kind": "ModelArtsService", "metadata": {"name": name},
            "spec": {"trainingJobRef": {"name": "no-such-job"}, **spec}}


def refused(stack, manifest: dict, *fragments: str) -> str:
    result = stack.apply(manifest, check=False)
    assert result.returncode != 0, f"accepted: {manifest}\n{result.stdout}"
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    name = manifest["metadata"]["name"]
    assert stack.get(manifest["kind"].lower(), name) is None, "a refused object must not exist"
    return result.stderr


@pytest.mark.parametrize("case", ["target", "layout", "algorithmRef", "code", "instanceCount", "source"])
def test_invalid_spec_is_refused_naming_the_field(stack, case):
    algorithm = {"apiVersion": API, "kind": "ModelArtsAlgorithm", "metadata": {"name": "v-algo"},
                 "spec": {"code": {"builtin": "mnist-tensorflow", "obsPath": "obs://test-modelarts/code/"}}}
    job = stack.training_job("v-job", "v-algo")
    del job["spec"]["algorithmRef"]
    manifests = {
        "target": (dataset("v-target", target="s3://test-modelarts/data/"), "spec.target", "obs://"),
        "layout": (dataset("v-layout", layout="Zip"), "spec.layout", "Unsupported value", "Both"),
        "algorithmRef": (job, "spec.algorithmRef", "Required value"),
        "code": (algorithm, "spec.code", "set exactly one of builtin, obsPath, configMap"),
        "instanceCount": (service("v-svc", instanceCount=0), "spec.instanceCount", "greater than or equal to 1"),
        "source": (dataset("v-source", source={"type": "Obs"}), "spec.source", "obsPath is required when type is Obs"),
    }
    manifest, *fragments = manifests[case]
    refused(stack, manifest, *fragments)


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("TrainingJob", "hyperparameters", {"epochs": "2"}),
    ("MnistDataset", "target", "obs://test-modelarts/elsewhere/"),
])
def test_immutable_field_cannot_change(stack, kind, field, value):
    name = f"immutable-{kind.lower()}"
    if kind == "TrainingJob":
        original = stack.training_job(name, "not-created-yet")  # waits for its algorithm: no cloud work
    else:
        original = dataset(name)  # names a missing Secret: no cloud work
    stack.apply(original)
    changed = copy.deepcopy(original)
    changed["spec"][field] = value
    stderr = refused_update(stack, changed)
    assert f"{field} is immutable" in stderr and "spec" in stderr, stderr
    assert stack.get(kind.lower(), name)["spec"][field] == original["spec"][field]
    stack.wait_for(lambda: stack.get(kind.lower(), name).get("status"), 30, f"{kind} {name} to get a status")


def refused_update(stack, manifest: dict) -> str:
    result = stack.apply(manifest, check=False)
    assert result.returncode != 0, f"change accepted: {result.stdout}"
    return result.stderr


def test_no_secret_in_logs_events_or_status(stack):
    stack.assert_no_secret_values()
