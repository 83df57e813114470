"""The ModelArts MNIST tutorial driven by our clients against the local cloud, without Kubernetes."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from modelarts_operator import mnist
from modelarts_operator.cloud import CloudError, ErrorKind, ObsUrl
from modelarts_operator.cloud.predict import predict
from modelarts_operator.cloud.resources import (
    AlgorithmParameter,
    AlgorithmSpec,
    ModelSpec,
    ServiceSpec,
    TrainingJobSpec,
)
from support import FAST_RETRIES, first_test_image

MODEL_CODE = Path(__file__).resolve().parents[2] / "model_code"
pytestmark = pytest.mark.slow


def wait(fetch, done, timeout=300, what="state"):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {value!r}")
        time.sleep(0.5)


def run_tutorial(local_cloud, api, store, mnist_dir, tmp_path, bucket: str) -> dict:
    """Steps 1-6 of the tutorial; returns what it created."""
    root = ObsUrl(bucket, "")
    store.ensure_bucket(bucket)
    raw = mnist.copy_raw({n: mnist_dir / f"{n}.gz" for n in mnist.MNIST_FILES}, tmp_path / "dataset")
    for name in raw:
        (tmp_path / "dataset" / f"{name}.gz").write_bytes((mnist_dir / f"{name}.gz").read_bytes())
    data = root.join("dataset-mnist/")
    first = store.upload_folder(tmp_path / "dataset", data)
    assert len(first.uploaded) == 8 and first.bytes_sent > 50_000_000
    again = store.upload_folder(tmp_path / "dataset", data)
    assert again.bytes_sent == 0 and len(again.skipped) == 8  # a re-run sends no bytes

    code = root.join("mnist-tensorflow-code/")
    store.upload_folder(MODEL_CODE, code)
    algorithm, created = api.ensure_algorithm(AlgorithmSpec(
        name=f"{bucket}-algorithm", code_dir=code.api_path, boot_file=code.join("train_mnist_tf.py").api_path,
        parameters=[AlgorithmParameter(name="epochs", value="1")],
    ))
    assert created and algorithm.id
    output = root.join("mnist-model/V0001/")
    job, created = api.ensure_training_job(TrainingJobSpec(
        name=f"{bucket}-job", algorithm_id=algorithm.id, inputs={"data_url": data.api_path},
        outputs={"train_url": output.api_path}, parameters={"train_limit": "10000"},
    ))
    assert created
    job = wait(lambda: api.get_training_job(job.id), lambda j: j.finished, what="training job")
    assert job.phase == "Completed", (job, api.training_job_log(job.id)[-2000:])
    assert "epoch=1/1" in api.training_job_log(job.id)
    assert any(o.key.endswith("model/saved_model.pb") for o in store.list(output))

    model, created = api.ensure_model(ModelSpec(name=f"{bucket}-model", source_location=output.api_path,
                                                source_job_id=job.id))
    model = wait(lambda: api.get_model(model.id), lambda m: m.model_status in ("published", "failed"), what="model")
    assert model.model_status == "published", model.failed_msg
    spec = ServiceSpec(name=f"{bucket}-service", model_id=model.id, auto_stop=datetime.timedelta(hours=2))
    service, created = api.ensure_service(spec)
    service = wait(lambda: api.get_service(service.id), lambda s: s.status in ("running", "failed"), what="service")
    assert service.status == "running", service.error_msg
    assert service.matches(spec) == []  # the create carried the auto-stop schedule
    assert service.access_address.endswith(f"/v1/infers/{service.id}")
    return {"algorithm": algorithm, "job": job, "model": model, "service": service, "root": root}


def delete_everything(api, store, created) -> None:
    """Step 7: the clean-up a user must not forget."""
    assert api.delete_service(created["service"].id)
    wait(lambda: api.find_service(created["service"].service_name), lambda s: s is None, what="service deletion")
    assert api.delete_model(created["model"].id)
    assert api.delete_training_job(created["job"].id)
    assert api.delete_algorithm(created["algorithm"].id)
    store.delete_prefix(created["root"])
    assert store.delete_bucket(created["root"].bucket)


def test_tutorial_end_to_end(local_cloud, api, store, mnist_dir, tmp_path):
    created = run_tutorial(local_cloud, api, store, mnist_dir, tmp_path, "test-modelarts")
    image, label = first_test_image(mnist_dir)
    answer = predict(created["service"].access_address, image, "digit.png", token=local_cloud.auth_token)
    assert answer["predicted_label"] == str(label)
    signed = predict(created["service"].access_address, image, "digit.png", credentials=api._credentials())
    assert signed["predicted_label"] == str(label)
    with pytest.raises(CloudError) as caught:
        predict(created["service"].access_address, image, token="wrong-token")
    assert caught.value.kind is ErrorKind.AUTH

    service = created["service"]
    shorter = ServiceSpec(name=service.service_name, model_id=created["model"].id,
                          auto_stop=datetime.timedelta(minutes=90))
    assert service.matches(shorter) == ["autoStop"]
    api.update_service(service.id, shorter, service.matches(shorter))  # the schedule alone: no redeploy
    service = api.get_service(service.id)
    assert service.matches(shorter) == [] and service.status == "running"
    assert service.schedule == [{"type": "stop", "time_unit": "MINUTES", "duration": 90}]

    delete_everything(api, store, created)
    assert api.find_algorithm("test-modelarts-algorithm") is None
    assert api.find_training_job("test-modelarts-job") is None
    assert api.find_model("test-modelarts-model") is None
    assert api.find_service("test-modelarts-service") is None
    assert not store.bucket_exists("test-modelarts")
    assert api.delete_service(created["service"].id) is False  # already gone is success, not an error
    assert api.delete_training_job(created["job"].id) is False


def test_tutorial_survives_20_percent_faults_without_duplicates(local_cloud, api, store, mnist_dir, tmp_path):
    local_cloud.set_faults(None, error_429=0.1, error_500=0.1)
    local_cloud.reset_counters()
    try:
        created = run_tutorial(local_cloud, api, store, mnist_dir, tmp_path, "faulty-modelarts")
        image, label = first_test_image(mnist_dir)
        answer = predict(created["service"].access_address, image, token=local_cloud.auth_token, policy=FAST_RETRIES)
        assert answer["predicted_label"] == str(label)
        # Each create was retried through ensure_*, yet exactly one of each exists.
        assert len([a for a in _all(api, "algorithms") if a == "faulty-modelarts-algorithm"]) == 1
        assert len([j for j in _all(api, "jobs") if j == "faulty-modelarts-job"]) == 1
        counters = local_cloud.counters()
        assert sum(counters.values()) > 30
        delete_everything(api, store, created)
    finally:
        local_cloud.set_faults(None)


def _all(api, kind: str) -> list[str]:
    """Every name of a kind, listed with plain SDK calls (not our find_*), to count duplicates."""
    from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest, ListTrainingJobsRequest

    if kind == "algorithms":
        data = api._invoke("list_algorithms", lambda c: c.list_algorithms(ListAlgorithmsRequest(limit=50)))
    else:
        data = api._invoke("list_training_jobs", lambda c: c.list_training_jobs(ListTrainingJobsRequest(body={"limit": 50})))
    return [item["metadata"]["name"] for item in data.get("items") or []]


def test_rotated_secret_is_used_without_a_new_client(local_cloud, api, secret):
    secret["sk"] = "wrong-secret-key"
    with pytest.raises(CloudError) as caught:
        api.find_algorithm("anything")
    assert caught.value.kind is ErrorKind.AUTH
    assert "wrong-secret-key" not in str(caught.value) and local_cloud.sk not in str(caught.value)
    secret["sk"] = local_cloud.sk
    assert api.find_algorithm("anything") is None


def test_not_found_codes_map_to_not_found(api):
    for call in (lambda: api.get_training_job("00000000-0000-0000-0000-000000000000"),
                 lambda: api.get_algorithm("00000000-0000-0000-0000-000000000000"),
                 lambda: api.get_service("00000000-0000-0000-0000-000000000000"),
                 lambda: api.get_model("00000000-0000-0000-0000-000000000000")):
        with pytest.raises(CloudError) as caught:
            call()
        assert caught.value.kind is ErrorKind.NOT_FOUND, caught.value


def test_failed_boot_file_reports_exit_code(local_cloud, api, store, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "boot.py").write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    bucket = ObsUrl("failing-code", "")
    store.ensure_bucket(bucket.bucket)
    store.upload_folder(code, bucket.join("code/"))
    algorithm, _ = api.ensure_algorithm(AlgorithmSpec(name="failing-algorithm", code_dir=bucket.join("code/").api_path,
                                                      boot_file=bucket.join("code/boot.py").api_path))
    job, _ = api.ensure_training_job(TrainingJobSpec(name="failing-job", algorithm_id=algorithm.id,
                                                     inputs={"data_url": bucket.join("code/").api_path},
                                                     outputs={"train_url": bucket.join("out/").api_path}))
    job = wait(lambda: api.get_training_job(job.id), lambda j: j.finished, what="failing job")
    assert job.phase == "Failed"
    assert "exited with 3" in job.failure_message
    assert "about to fail" in api.training_job_log(job.id)
    api.delete_training_job(job.id)
    api.delete_algorithm(algorithm.id)
    store.delete_prefix(bucket)
    store.delete_bucket(bucket.bucket)
