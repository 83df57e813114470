"""Training progress and the quality gate, with the operator as a process, real TensorFlow trainings and kubectl.

Progress: `kubectl get trainingjob -w` sees status.progress move while a 3-epoch run trains, and PROGRESS shows
3/3 once it completed. Quality gate: a service runs the model of a good job; pointed at a worse job below
spec.minAccuracy it keeps serving the good model (Ready=True BelowQualityGate, both figures in the message) and
a new service on that job deploys nothing; lowering the gate rolls the running service over."""

from __future__ import annotations

import queue
import subprocess
import threading
import time

import pytest

from modelarts_operator.api.common import API_VERSION
from modelarts_operator.api.conditions import find_condition
from modelarts_operator.cloud.predict import predict
from support import first_test_image

pytestmark = pytest.mark.slow
ALGORITHM = "builtin-mnist"
GOOD = {"epochs": "1", "train_limit": "2000"}  # test accuracy about 0.84
BAD = {"epochs": "1", "train_limit": "200"}  # about 0.37
GATE = 0.6


def algorithm(stack) -> dict:
    return {"apiVersion": API_VERSION, "kind": "ModelArtsAlgorithm", "metadata": {"name": ALGORITHM},
            "spec": {"code": {"builtin": "mnist-tensorflow", "uploadTo": f"obs://{stack.bucket}/code/builtin/"}}}


def service(name: str, job: str, **spec) -> dict:
    return {"apiVersion": API_VERSION, "kind": "ModelArtsService", "metadata": {"name": name},
            "spec": {"trainingJobRef": {"name": job}, "instanceCount": 1, **spec}}


def patch(stack, name: str, spec: str) -> None:
    stack.kubectl("patch", "modelartsservice", name, "-n", stack.namespace, "--type", "merge", "-p",
                  f'{{"spec": {spec}}}')


def watch_until(stack, args: list[str], done: str, timeout: float) -> list[str]:
    """The lines `kubectl get ... -w` prints until one contains `done` (or the timeout)."""
    process = subprocess.Popen(["kubectl", *args, "-w"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=stack.env())
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while not seen or done not in seen[-1]:
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {done} in {timeout:g} s; kubectl printed:\n" + "\n".join(seen)
            try:
                seen.append(lines.get(timeout=min(left, 5)))
            except queue.Empty:
                assert process.poll() is None, "kubectl -w ended:\n" + "\n".join(seen)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return seen


def test_progress_moves_while_training_and_ends_at_the_last_epoch(stack):
    stack.apply(algorithm(stack))
    stack.apply(stack.training_job("three-epochs", ALGORITHM, hyperparameters={"epochs": "3", "train_limit": "6000"}))
    lines = watch_until(stack, ["get", "trainingjob", "three-epochs", "-n", stack.namespace, "--no-headers", "-o",
                                "custom-columns=PHASE:.status.phase,PROGRESS:.status.progress"], "Completed", 300)
    progress = [line.split()[1] for line in lines if len(line.split()) == 2 and line.split()[1] != "<none>"]
    moved = list(dict.fromkeys(progress))  # each value once, in the order seen
    assert len(moved) >= 2 and moved == sorted(moved) and moved[-1] == "3/3", lines
    assert any(line.split()[0] == "Running" and line.split()[1] in ("1/3", "2/3") for line in lines), lines

    table = stack.kubectl("get", "trainingjob", "three-epochs", "-n", stack.namespace).splitlines()
    columns = dict(zip(table[0].split(), table[1].split(), strict=False))
    assert (columns["PHASE"], columns["PROGRESS"], columns["READY"]) == ("Completed", "3/3", "True"), table
    status = stack.get("trainingjob", "three-epochs")["status"]
    assert (status["epoch"], status["epochs"]) == (3, 3)
    assert {"loss", "accuracy"} <= set(status["epochMetrics"]), status["epochMetrics"]
    assert not {e["reason"] for e in stack.events("three-epochs")} & {"Epoch", "Progress"}  # no event per epoch
    stack.delete("trainingjob", "three-epochs")


def test_a_model_below_the_gate_is_not_deployed_nor_rolled_over(stack, mnist_dir):
    stack.apply(algorithm(stack))
    stack.apply(stack.training_job("good", ALGORITHM, hyperparameters=GOOD),
                stack.training_job("bad", ALGORITHM, hyperparameters=BAD))
    good = stack.wait_ready("trainingjob", "good", timeout=300)["status"]["metrics"]["accuracy"]
    bad = stack.wait_ready("trainingjob", "bad", timeout=300)["status"]["metrics"]["accuracy"]
    assert bad < GATE <= good, f"the trainings no longer straddle the gate: bad {bad}, good {good}"
    image, label = first_test_image(mnist_dir)

    stack.apply(service("svc", "good", minAccuracy=GATE))
    serving = stack.wait_ready("modelartsservice", "svc", timeout=300)["status"]
    assert predict(serving["endpoint"], image, "digit.png", token=stack.cloud.auth_token)["predicted_label"] == str(label)

    # pointed at the worse job: it keeps serving the good model and says why, with both figures
    patch(stack, "svc", '{"trainingJobRef": {"name": "bad"}}')
    obj = stack.wait_condition("modelartsservice", "svc", "True", reason="BelowQualityGate", timeout=60)
    status = obj["status"]
    assert find_condition(status)["message"] == (f"model from TrainingJob bad: accuracy {bad} below minAccuracy "
                                                 f"{GATE}; keeps serving the model from TrainingJob good")
    assert (status["modelOrigin"], status["modelId"], status["serviceId"]) == (
        "TrainingJob good", serving["modelId"], serving["serviceId"])
    assert status["observedGeneration"] == obj["metadata"]["generation"] and not status.get("previousModelId")
    assert stack.api.get_service(serving["serviceId"]).config[0].model_id == serving["modelId"]
    assert predict(serving["endpoint"], image, "digit.png", token=stack.cloud.auth_token)["predicted_label"] == str(label)
    assert "BelowQualityGate" in stack.event_reasons("svc")
    row = stack.kubectl("get", "modelartsservice", "svc", "-n", stack.namespace, "--no-headers").split()
    assert {"True", "BelowQualityGate", "running"} <= set(row), row

    # a new service on the worse job deploys nothing
    stack.apply(service("svc-new", "bad", minAccuracy=GATE))
    parked = stack.wait_condition("modelartsservice", "svc-new", "False", reason="BelowQualityGate", timeout=60)
    assert find_condition(parked["status"])["message"] == (f"model from TrainingJob bad: accuracy {bad} below "
                                                           f"minAccuracy {GATE}; nothing deployed")
    assert not parked["status"].get("modelId") and not parked["status"].get("serviceId")
    assert (stack.api.count("models"), stack.api.count("services")) == (1, 1)

    # lowering the gate lets the running service roll over to the worse job's model
    patch(stack, "svc", f'{{"minAccuracy": {bad}}}')

    def rolled_over():
        current = stack.get("modelartsservice", "svc")["status"]
        ready = find_condition(current)
        return (current.get("modelOrigin") == "TrainingJob bad" and not current.get("previousModelId")
                and (ready.get("status"), ready.get("reason")) == ("True", "Running")) and current

    status = stack.wait_for(rolled_over, 180, "the service to roll over to the model of bad")
    assert status["modelId"] != serving["modelId"] and status["serviceId"] == serving["serviceId"]
    assert predict(status["endpoint"], image, "digit.png", token=stack.cloud.auth_token)["predicted_label"]

    for kind, name in (("modelartsservice", "svc-new"), ("modelartsservice", "svc"), ("trainingjob", "good"),
                       ("trainingjob", "bad"), ("modelartsalgorithm", ALGORITHM)):
        stack.delete(kind, name)
    left = stack.inventory()
    assert (left["algorithms"], left["training_jobs"], left["models"], left["services"]) == (0, 0, 0, 0), left
    assert left["objects"] == []
