"""End to end: what `make demo` does, with real kubectl against the operator subprocess."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelarts_operator.api.conditions import find_condition
from modelarts_operator.cloud.predict import predict
from support import first_test_image

pytestmark = pytest.mark.slow

ORDER = [("mnistdataset", "mnist"), ("modelartsalgorithm", "mnist-tensorflow"), ("trainingjob", "mnist-train"),
         ("modelartsservice", "mnist-service")]
KINDS = ("MnistDataset", "ModelArtsAlgorithm", "TrainingJob", "ModelArtsService")
PREFIX = "modelarts_operator_"


def test_end_to_end(stack, mnist_dir):
    ns, bucket = stack.namespace, stack.bucket
    applied = stack.kubectl("apply", "-k", str(stack.overlay), "-n", ns)
    assert applied.count("created") == 4, applied

    objs = {kind: stack.wait_ready(kind, name, timeout=240) for kind, name in ORDER}

    dataset = objs["mnistdataset"]["status"]
    assert dataset["obsUrl"] == f"obs://{bucket}/dataset-mnist/"
    assert dataset["fileCount"] == 8 and len(dataset["files"]) == 8  # layout Both: raw and .gz
    assert {f["name"] for f in dataset["files"]} >= {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz"}
    assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in dataset["files"])
    assert (dataset["trainSamples"], dataset["testSamples"]) == (60000, 10000)
    assert ready_reason(objs["mnistdataset"]) == "Uploaded"

    algorithm = objs["modelartsalgorithm"]["status"]
    assert algorithm["algorithmId"]
    assert algorithm["codeLocation"] == f"obs://{bucket}/mnist-tensorflow-code/"
    assert algorithm["codeFiles"] >= 3
    assert stack.api.get_algorithm(algorithm["algorithmId"]).id == algorithm["algorithmId"]

    job_obj = objs["trainingjob"]
    job = job_obj["status"]
    assert job["phase"] == "Completed" and ready_reason(job_obj) == "Completed"
    assert job["version"] == "V0001"
    assert job["outputPath"] == f"obs://{bucket}/mnist-model/V0001/"
    assert job["metrics"]["accuracy"] >= 0.9, job["metrics"]
    assert "epoch=1/1" in job["logTail"]
    assert job["observedGeneration"] == job_obj["metadata"]["generation"]
    assert stack.api.get_training_job(job["jobId"]).phase == "Completed"
    assert any(k.endswith("model/saved_model.pb") for k in stack.object_keys(job["outputPath"]))

    service = objs["modelartsservice"]["status"]
    assert service["phase"] == "running"
    assert service["endpoint"] and service["modelId"] and service["serviceId"]
    assert service["modelStatus"] == "published"
    assert service["modelSource"] == job["outputPath"]

    table = stack.kubectl("get", "modelarts", "-n", ns)
    for header in ("READY", "REASON", "TARGET", "FILES", "ENGINE", "ALGORITHM-ID", "PHASE", "VERSION", "ACCURACY",
                   "DURATION", "ENDPOINT", "AGE"):
        assert header in table, f"{header} missing from:\n{table}"
    rows = {line.split()[0]: line for line in table.splitlines() if line and not line.startswith("NAME")}
    assert "True" in rows["mnistdataset.modelarts.mlops.dev/mnist"] and "8" in rows[
        "mnistdataset.modelarts.mlops.dev/mnist"].split()
    assert algorithm["algorithmId"] in rows["modelartsalgorithm.modelarts.mlops.dev/mnist-tensorflow"]
    train_row = rows["trainingjob.modelarts.mlops.dev/mnist-train"].split()
    assert {"True", "Completed", "V0001"} <= set(train_row), train_row
    assert str(job["metrics"]["accuracy"])[:4] in " ".join(train_row)
    service_row = rows["modelartsservice.modelarts.mlops.dev/mnist-service"].split()
    assert {"True", "Running", "running", service["endpoint"]} <= set(service_row), service_row

    expected = {"mnist": {"Uploaded"}, "mnist-tensorflow": {"CodeUploaded", "Created"},
                "mnist-train": {"Created", "Running", "Completed"}, "mnist-service": {"ModelImport", "Running"}}
    for name, reasons in expected.items():
        seen = stack.event_reasons(name)
        assert reasons <= seen, f"{name}: events {seen}, expected {reasons}"
    assert not [e for e in stack.events() if e.get("type") == "Warning"], "no warnings on the happy path"
    for name, reason in (("mnist", "Uploaded"), ("mnist-tensorflow", "CodeUploaded"), ("mnist-tensorflow", "Created"),
                         ("mnist-train", "Completed"), ("mnist-service", "Running")):
        said = [e for e in stack.events(name) if e["reason"] == reason]
        assert len(said) == 1, f"{name}: {reason} said {len(said)} times (polls must not repeat it)"
    for obj in stack.items():  # every status describes the current spec and the last reconcile succeeded
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"], obj["metadata"]["name"]
        synced = find_condition(obj["status"], "Synced")
        assert synced["status"] == "True", (obj["metadata"]["name"], synced)

    check_metrics_when_ready(stack)

    image, label = first_test_image(mnist_dir)
    answer = predict(service["endpoint"], image, "digit.png", token=stack.cloud.auth_token)
    assert answer["predicted_label"] == str(label), answer

    deleted = stack.kubectl("delete", "-k", str(stack.overlay), "-n", ns, "--wait", "--timeout=180s", timeout=240)
    assert deleted.count("deleted") == 4, deleted
    assert stack.items() == []
    left = stack.inventory()
    assert left == {"algorithms": 0, "training_jobs": 0, "models": 0, "services": 0, "objects": []}, left
    assert {"Deleted"} <= stack.event_reasons("mnist-service") & stack.event_reasons("mnist-train")
    check_metrics_when_deleted(stack)


def test_no_secret_in_logs_events_or_status(stack):
    stack.assert_no_secret_values()


def ready_reason(obj: dict) -> str | None:
    return find_condition(obj["status"], "Ready").get("reason")


# --- /metrics ------------------------------------------------------------------------------------------


def scrape(stack) -> dict[tuple[str, frozenset], float]:
    """The operator's /metrics, parsed by prometheus_client's own parser: {(sample name, labels): value}."""
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    return sum(value for (sample, have), value in samples.items()
               if sample == name and set(labels.items()) <= have)


def check_metrics_when_ready(stack) -> None:
    def ready_counted():  # the gauge follows each status write: poll for the last one
        samples = scrape(stack)
        if all(total(samples, PREFIX + "resources", kind=kind, ready="True") == 1 for kind in KINDS):
            return samples
        return None

    samples = stack.wait_for(ready_counted, 20, "4 Ready objects in modelarts_operator_resources")
    for kind in KINDS:
        assert total(samples, PREFIX + "reconciles_total", kind=kind, result="ok") >= 1, kind
        assert total(samples, PREFIX + "reconcile_duration_seconds_count", kind=kind) >= 1, kind
        assert total(samples, PREFIX + "resources", kind=kind) == 1, kind  # one object, one reason
    for service, operation in (("modelarts", "create_training_job"), ("obs", "listObjects")):
        assert total(samples, PREFIX + "cloud_api_calls_total", service=service, operation=operation,
                     outcome="ok") >= 1, (service, operation)
    assert total(samples, PREFIX + "cloud_api_calls_total", service="modelarts", outcome="ok") >= 10
    assert total(samples, PREFIX + "cloud_api_calls_total", service="obs", outcome="ok") >= 10
    assert total(samples, PREFIX + "training_job_duration_seconds_count", phase="Completed") == 1
    assert total(samples, PREFIX + "training_job_duration_seconds_sum", phase="Completed") > 0
    assert total(samples, PREFIX + "training_job_accuracy_ratio_count") == 1
    assert total(samples, PREFIX + "training_job_accuracy_ratio_sum") >= 0.9
    assert total(samples, PREFIX + "finalizers_pending") == 0
    assert total(samples, "process_resident_memory_bytes") > 0  # the process collector is on
    private = {stack.namespace, stack.bucket, *(name for _, name in ORDER)}
    for (name, labels), _ in samples.items():
        for label, value in labels:
            assert not any(word in value for word in private), f"{name}: {label}={value!r} names an object"


def check_metrics_when_deleted(stack) -> None:
    samples = scrape(stack)
    for kind in KINDS:
        assert total(samples, PREFIX + "finalizer_runs_total", kind=kind, result="done") == 1, kind
        assert total(samples, PREFIX + "finalizers_pending", kind=kind) == 0, kind
        assert total(samples, PREFIX + "resources", kind=kind) == 0, kind
