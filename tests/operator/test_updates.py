"""Spec changes the cloud allows: output versions, scaling, auto-stop, and a model roll-over."""

from __future__ import annotations

import pytest

from modelarts_operator.api.common import API_VERSION
from modelarts_operator.cloud import CloudError, ErrorKind
from modelarts_operator.local.cloud import LocalCloud

pytestmark = pytest.mark.slow
BUCKET = "test-modelarts"
OUTPUT = f"obs://{BUCKET}/output/shared/"
PUBLIC_MNIST = f"obs:/{LocalCloud.public_dataset_path}"
SMALL_TRAINING = {"epochs": "1", "train_limit": "2000"}


def job(name: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"algorithmRef": {"name": "builtin-mnist"},
                     "inputs": [{"name": "data_url", "obsPath": PUBLIC_MNIST}],
                     "output": {"name": "train_url", "obsPath": OUTPUT}, "hyperparameters": dict(SMALL_TRAINING)}}


def test_versions_scaling_auto_stop_and_model_rollover(stack):
    stack.apply({"apiVersion": API_VERSION, "kind": "ModelArtsAlgorithm", "metadata": {"name": "builtin-mnist"},
                 "spec": {"code": {"builtin": "mnist-tensorflow", "uploadTo": f"obs://{BUCKET}/code/builtin/"}}})
    stack.apply(job("run-a"))
    first = stack.wait_ready("trainingjob", "run-a", timeout=180)["status"]
    stack.apply(job("run-b"))  # same output folder: the next version
    second = stack.wait_ready("trainingjob", "run-b", timeout=180)["status"]
    assert (first["version"], second["version"]) == ("V0001", "V0002")
    assert first["outputPath"] == OUTPUT + "V0001/" and second["outputPath"] == OUTPUT + "V0002/"

    stack.apply({"apiVersion": API_VERSION, "kind": "ModelArtsService", "metadata": {"name": "svc"},
                 "spec": {"trainingJobRef": {"name": "run-a"}, "instanceCount": 1}})
    status = stack.wait_ready("modelartsservice", "svc", timeout=180)["status"]
    old_model, service_id = status["modelId"], status["serviceId"]
    assert status["modelSource"] == first["outputPath"]

    stack.kubectl("patch", "modelartsservice", "svc", "-n", stack.namespace, "--type", "merge",
                  "-p", '{"spec": {"instanceCount": 2, "autoStopAfter": "2h"}}')
    stack.wait_for(lambda: (stack.get("modelartsservice", "svc")["status"].get("instanceCount") == 2
                            and stack.api.get_service(service_id).schedule), 60, "scale to 2 and auto-stop set")
    cloud_service = stack.api.get_service(service_id)
    assert cloud_service.config[0].instance_count == 2
    assert [(s["type"], s["time_unit"], int(s["duration"])) for s in cloud_service.schedule] == [("stop", "HOURS", 2)]
    assert "Updating" in stack.event_reasons("svc")

    stack.kubectl("patch", "modelartsservice", "svc", "-n", stack.namespace, "--type", "merge",
                  "-p", '{"spec": {"trainingJobRef": {"name": "run-b"}}}')

    def rolled_over():
        obj = stack.get("modelartsservice", "svc")
        current = obj["status"]
        return (current.get("modelSource") == second["outputPath"] and current.get("modelId") != old_model
                and not current.get("previousModelId") and obj["status"]["conditions"][0]["status"] == "True")

    stack.wait_for(rolled_over, 180, "the service to run the model of run-b")
    status = stack.get("modelartsservice", "svc")["status"]
    assert status["serviceId"] == service_id  # the same service, updated in place
    assert stack.api.get_service(service_id).config[0].model_id == status["modelId"]
    with pytest.raises(CloudError) as caught:
        stack.api.get_model(old_model)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert stack.api.count("models") == 1
    assert "ModelReplaced" in stack.event_reasons("svc")

    for kind, name in (("modelartsservice", "svc"), ("trainingjob", "run-a"), ("trainingjob", "run-b"),
                       ("modelartsalgorithm", "builtin-mnist")):
        stack.delete(kind, name)
    left = stack.inventory()
    assert (left["algorithms"], left["training_jobs"], left["models"], left["services"]) == (0, 0, 0, 0)
    assert left["objects"] == []
