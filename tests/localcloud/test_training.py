"""Algorithms and training jobs through the real SDK: CRUD, errors, real runs, failure, terminate, queue."""

from __future__ import annotations

import json
import textwrap

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateAlgorithmRequest,
    CreateTrainingJobRequest,
    DeleteAlgorithmRequest,
    DeleteTrainingJobRequest,
    ListAlgorithmsRequest,
    ListTrainingJobsRequest,
    ShowAlgorithmByUuidRequest,
    ShowTrainingJobDetailsRequest,
    ShowTrainingJobLogsPreviewRequest,
    StopTrainingJobRequest,
)
from localcloud.cloudkit import BUCKET, signed_request

from support import BOOT_FILE, ROOT, wait_for


def error_of(call) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as info:
        call()
    return info.value


def job_body(name: str, algorithm: dict, inputs: str = "/test-modelarts/data/", outputs: str = "/test-modelarts/out/") -> dict:
    return {
        "kind": "job",
        "metadata": {"name": name},
        "algorithm": dict(
            algorithm,
            inputs=[{"name": "data_url", "remote": {"obs": {"obs_url": inputs}}}],
            outputs=[{"name": "train_url", "remote": {"obs": {"obs_url": outputs}}}],
        ),
        "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.8u", "node_count": 1}},
    }


def show_job(lc, job_id: str) -> dict:
    return lc.client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id)).to_json_object()


def wait_phase(lc, job_id: str, phases: set[str], timeout: float = 60) -> dict:
    return wait_for(lambda: (job := show_job(lc, job_id))["status"]["phase"] in phases and job,
                    timeout=timeout, what=f"job {job_id} in {phases}")


def log_of(lc, job_id: str) -> str:
    return lc.client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
    ).content


def inline_script(lc, tmp_path, name: str, source: str) -> dict:
    """Upload a one-file boot script; return the inline algorithm of a job running it."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    lc.put_file(f"{name}/code/{name}.py", path)
    return {"code_dir": f"/{BUCKET}/{name}/code/", "boot_file": f"/{BUCKET}/{name}/code/{name}.py",
            "engine": {"engine_name": "TensorFlow", "engine_version": "TF-2.21-python3.11"}}


def test_algorithm_lifecycle(lc):
    lc.put_text("algo/code/train.py", "print('hi')\n")
    body = {
        "metadata": {"name": "algo-lifecycle", "description": "d"},
        "job_config": {
            "code_dir": f"/{BUCKET}/algo/code/", "boot_file": f"/{BUCKET}/algo/code/train.py",
            "parameters": [{"name": "epochs", "value": "2"}],
            "inputs": [{"name": "data_url"}], "outputs": [{"name": "train_url"}],
            "engine": {"engine_name": "TensorFlow", "engine_version": "TF-2.21-python3.11"},
        },
    }
    created = lc.client.create_algorithm(CreateAlgorithmRequest(body=body))
    assert created.status_code == 201
    algorithm_id = created.metadata.id
    shown = lc.client.show_algorithm_by_uuid(ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id))
    assert shown.metadata.name == "algo-lifecycle"
    assert shown.job_config.parameters[0].value == "2"
    assert [c.name for c in shown.job_config.code_tree.children] == ["train.py"]
    listed = lc.client.list_algorithms(ListAlgorithmsRequest(searches="name:lifecycle", limit=5))
    assert [item.metadata.id for item in listed.items] == [algorithm_id]
    assert lc.client.list_algorithms(ListAlgorithmsRequest(searches="name:nothing-like-it")).total == 0

    duplicate = error_of(lambda: lc.client.create_algorithm(CreateAlgorithmRequest(body=body)))
    assert (duplicate.status_code, duplicate.error_code) == (400, "ModelArts.2821")
    missing = error_of(lambda: lc.client.create_algorithm(CreateAlgorithmRequest(body={"metadata": {}})))
    assert (missing.status_code, missing.error_code) == (400, "ModelArts.0104")
    assert "metadata.name" in missing.error_msg

    assert lc.client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=algorithm_id)).status_code == 202
    gone = error_of(lambda: lc.client.show_algorithm_by_uuid(ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id)))
    assert (gone.status_code, gone.error_code) == (400, "ModelArts.2755")
    gone = error_of(lambda: lc.client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=algorithm_id)))
    assert gone.error_code == "ModelArts.2755"


def test_job_errors(lc, tmp_path):
    for call in (
        lambda: lc.client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id="no-such-job")),
        lambda: lc.client.delete_training_job(DeleteTrainingJobRequest(training_job_id="no-such-job")),
        lambda: lc.client.stop_training_job(StopTrainingJobRequest(training_job_id="no-such-job", body={"action_type": "terminate"})),
        lambda: lc.client.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id="no-such-job", task_id="worker-0")),
    ):
        error = error_of(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2775")
        assert error.request_id
    unknown = error_of(lambda: lc.client.create_training_job(
        CreateTrainingJobRequest(body=job_body("job-unknown-algo", {"id": "3f5d6706-7b67-408d-8ba0-ec08048c45ed"}))))
    assert (unknown.status_code, unknown.error_code) == (400, "ModelArts.2755")
    assert unknown.error_msg == "algorithm not found."
    no_remote = job_body("job-no-remote", {"code_dir": "/b/c/", "boot_file": "/b/c/t.py"})
    no_remote["algorithm"]["inputs"] = [{"name": "data_url"}]
    error = error_of(lambda: lc.client.create_training_job(CreateTrainingJobRequest(body=no_remote)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.0104")
    assert "algorithm.inputs[0].remote" in error.error_msg

    status, _, raw = signed_request(lc.cloud, "POST", f"/v2/{lc.cloud.project_id}/training-jobs", b"{not json")
    assert status == 400
    assert json.loads(raw)["error_code"] == "ModelArts.0104"
    status, _, raw = signed_request(lc.cloud, "POST", f"/v2/{lc.cloud.project_id}/training-jobs", b"[1, 2]")
    assert (status, json.loads(raw)["error_code"]) == (400, "ModelArts.0104")

    algorithm = inline_script(lc, tmp_path, "quick", "print('quick')\n")
    lc.put_text("data/readme.txt", "data")
    first = lc.client.create_training_job(CreateTrainingJobRequest(body=job_body("job-duplicate", algorithm)))
    duplicate = error_of(lambda: lc.client.create_training_job(CreateTrainingJobRequest(body=job_body("job-duplicate", algorithm))))
    assert (duplicate.status_code, duplicate.error_code) == (400, "ModelArts.2751")
    wait_phase(lc, first.metadata.id, {"Completed"})
    bad_task = error_of(lambda: lc.client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=first.metadata.id, task_id="worker-9")))
    assert bad_task.status_code == 400
    assert lc.client.delete_training_job(DeleteTrainingJobRequest(training_job_id=first.metadata.id)).status_code == 202
    gone = error_of(lambda: show_job(lc, first.metadata.id))
    assert gone.error_code == "ModelArts.2775"


def test_failing_boot_file_reports_exit_code_environment_and_log_tail(lc, tmp_path):
    algorithm = inline_script(lc, tmp_path, "failing", """
        import os, sys
        print("argv", sys.argv[1:])
        for key in ("MA_JOB_DIR", "MA_NUM_GPUS", "MA_NUM_HOSTS", "VC_TASK_INDEX", "VC_WORKER_NUM", "EXTRA"):
            print(f"{key}={os.environ.get(key)}")
        data = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--data_url=")][0]
        print("inputs", sorted(os.listdir(data)))
        print("the last words", flush=True)
        sys.exit(3)
    """)
    lc.put_text("failing/data/sample.txt", "one")
    body = job_body("job-failing", dict(algorithm, parameters=[{"name": "learning_rate", "value": "0.1"}],
                                        environments={"EXTRA": "yes"}), inputs=f"/{BUCKET}/failing/data/")
    created = lc.client.create_training_job(CreateTrainingJobRequest(body=body))
    assert created.status_code == 201
    assert created.status.phase in ("Creating", "Pending")
    job = wait_phase(lc, created.metadata.id, {"Failed", "Completed"})
    assert job["status"]["phase"] == "Failed"
    assert job["status"]["secondary_phase"] == "Failed"
    task = job["status"]["task_statuses"][0]
    assert task["exit_code"] == 3
    assert "the last words" in task["message"]
    assert job["status"]["duration"] > 0
    log = log_of(lc, created.metadata.id)
    assert "--learning_rate=0.1" in log and "--train_url=" in log
    assert "MA_NUM_GPUS=0" in log and "MA_NUM_HOSTS=1" in log and "VC_TASK_INDEX=0" in log and "VC_WORKER_NUM=1" in log
    assert "MA_JOB_DIR=None" not in log and "EXTRA=yes" in log
    assert "inputs ['sample.txt']" in log
    assert "exit with 3" in log
    assert lc.keys("out-never/") == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_terminate_kills_the_process_group_and_queued_jobs_wait(lc, tmp_path):
    sleeper = inline_script(lc, tmp_path, "sleeper", """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print(f"pids {__import__('os').getpid()} {child.pid}", flush=True)
        time.sleep(300)
    """)
    quick = inline_script(lc, tmp_path, "quickie", "print('quick done')\n")
    lc.put_text("data/readme.txt", "data")
    running = lc.client.create_training_job(CreateTrainingJobRequest(body=job_body("job-sleeper", sleeper))).metadata.id
    wait_phase(lc, running, {"Running"})
    pids_line = wait_for(lambda: next((line for line in log_of(lc, running).splitlines() if line.startswith("pids ")), None),
                         what="the sleeper's pids")
    pids = [int(p) for p in pids_line.split()[1:]]
    assert all(_alive(pid) for pid in pids)

    queued = lc.client.create_training_job(CreateTrainingJobRequest(body=job_body("job-queued", quick))).metadata.id
    job = wait_phase(lc, queued, {"Pending"})
    assert job["status"]["secondary_phase"] == "Queuing"  # one job at a time (max_running_jobs=1)

    stopped = lc.client.stop_training_job(StopTrainingJobRequest(training_job_id=running, body={"action_type": "terminate"}))
    assert stopped.status_code == 202
    assert stopped.status.phase in ("Terminating", "Terminated")
    wait_phase(lc, running, {"Terminated"})
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=15, what="the job's processes to end")
    wait_phase(lc, queued, {"Completed"})
    names = {j.metadata.name: j.status.phase for j in lc.client.list_training_jobs(
        ListTrainingJobsRequest(body={"offset": 0, "limit": 50, "filters": [{"key": "name", "operator": "like", "value": ["job-"]}]})).items}
    assert names["job-sleeper"] == "Terminated" and names["job-queued"] == "Completed"
    bad = error_of(lambda: lc.client.stop_training_job(StopTrainingJobRequest(training_job_id=running, body={"action_type": "pause"})))
    assert bad.status_code == 400


def mnist_algorithm(lc, name: str, **parameters: str) -> str:
    """The builtin boot file and inference code in OBS, as an algorithm with these parameter defaults."""
    lc.put_file("mnist-tensorflow-code/train_mnist_tf.py", BOOT_FILE)
    lc.upload_dir(ROOT / "model_code" / "model", "mnist-tensorflow-code/model/")
    return lc.client.create_algorithm(CreateAlgorithmRequest(body={
        "metadata": {"name": name},
        "job_config": {
            "code_dir": f"/{BUCKET}/mnist-tensorflow-code/", "boot_file": f"/{BUCKET}/mnist-tensorflow-code/train_mnist_tf.py",
            "parameters": [{"name": k, "value": v} for k, v in parameters.items()],
            "inputs": [{"name": "data_url"}], "outputs": [{"name": "train_url"}],
            "engine": {"engine_name": "TensorFlow", "engine_version": "TF-2.21-python3.11"},
        },
    })).metadata.id


@pytest.mark.slow
def test_two_nodes_train_data_parallel_and_the_chief_alone_writes_the_package(lc):
    """node_count 2 with the builtin boot file: two workers on TensorFlow's multi-worker runtime over the
    loopback ports the local cloud gives, the 10k subset split between them, one package, the accuracy of one
    worker (tests/test_training.py's bound)."""
    algorithm = mnist_algorithm(lc, "mnist-tf-2", epochs="1", train_limit="10000")
    body = job_body("mnist-train-2", {"id": algorithm}, inputs=lc.cloud.public_dataset_path,
                    outputs=f"/{BUCKET}/mnist-model-2/")
    body["spec"]["resource"]["node_count"] = 2
    job_id = lc.client.create_training_job(CreateTrainingJobRequest(body=body)).metadata.id
    job = wait_phase(lc, job_id, {"Completed", "Failed", "Abnormal"}, timeout=300)
    assert job["status"]["phase"] == "Completed", log_of(lc, job_id)[-3000:]
    assert [(t["task"], t["exit_code"]) for t in job["status"]["task_statuses"]] == [("worker-0", 0), ("worker-1", 0)]
    worker_1 = lc.client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-1")).content
    assert "worker=1/2" in worker_1 and "worker=0/2" in log_of(lc, job_id)
    keys = lc.keys("mnist-model-2/")
    assert "mnist-model-2/model/saved_model.pb" in keys and all(k.startswith("mnist-model-2/model/") for k in keys)
    metrics = json.loads(lc.get_text("mnist-model-2/model/config.json"))["metrics"]
    assert metrics["accuracy"] >= 0.95, metrics


@pytest.mark.slow
def test_real_boot_file_trains_on_the_public_dataset_and_uploads_the_package(lc):
    algorithm = mnist_algorithm(lc, "mnist-tf", epochs="1", train_limit="2000")
    body = job_body("mnist-train", {"id": algorithm}, inputs=lc.cloud.public_dataset_path,
                    outputs=f"/{BUCKET}/mnist-model/")
    job_id = lc.client.create_training_job(CreateTrainingJobRequest(body=body)).metadata.id
    job = wait_phase(lc, job_id, {"Completed", "Failed", "Abnormal"}, timeout=240)
    assert job["status"]["phase"] == "Completed", log_of(lc, job_id)[-3000:]
    assert job["status"]["task_statuses"][0]["exit_code"] == 0
    assert job["algorithm"]["name"] == "mnist-tf"
    log = log_of(lc, job_id)
    assert "epoch=1/1 " in log and "downloaded" in log and "uploaded" in log
    keys = lc.keys("mnist-model/")
    for name in ("model/config.json", "model/customize_service.py", "model/saved_model.pb", "model/variables/variables.index"):
        assert f"mnist-model/{name}" in keys
