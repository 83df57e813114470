"""Failure modes: Ready=False with a clear reason and recovery once fixed; deletion of a running job;
deletionPolicy Retain; cloud resources deleted behind the operator's back; no secret anywhere.

Training code comes from ConfigMaps (tiny boot files, no TensorFlow), so each job takes seconds.
"""

from __future__ import annotations

import secrets

import pytest

from modelarts_operator.api.conditions import find_condition
from modelarts_operator.cloud import CloudError, ErrorKind
from support import FAILING, QUICK, SLEEPING

pytestmark = pytest.mark.slow

MAX_RUNNING_JOBS = 2  # read by the stack fixture: a sleeping job must not hold up the others
BAD_SK = "bad" + secrets.token_urlsafe(30)



def ready(obj: dict | None) -> dict:
    return find_condition((obj or {}).get("status"), "Ready")


def warnings(stack, name: str, reason: str) -> list[dict]:
    return [e for e in stack.events(name) if e.get("type") == "Warning" and e.get("reason") == reason]


@pytest.fixture(scope="module")
def quick_code(stack) -> str:
    stack.apply(stack.config_map("quick-code", {"train.py": QUICK}))
    return "quick-code"


# --- 4. Ready=False with a clear reason, then recovery -------------------------------------------


def test_missing_secret_then_created(stack, quick_code):
    stack.apply(stack.algorithm("algo-late-secret", quick_code, credentialsSecret="late-secret"))
    obj = stack.wait_condition("modelartsalgorithm", "algo-late-secret", "False", "CredentialsMissing")
    assert "late-secret" in ready(obj)["message"] and "not found" in ready(obj)["message"]
    assert obj["status"]["message"] == ready(obj)["message"]
    stack.wait_event("algo-late-secret", "CredentialsMissing")

    stack.apply(stack.secret("late-secret"))
    obj = stack.wait_ready("modelartsalgorithm", "algo-late-secret", timeout=30)
    assert obj["status"]["algorithmId"]


def test_wrong_secret_key_then_fixed(stack, quick_code):
    stack.apply(stack.secret("bad-creds", sk=BAD_SK))
    stack.apply(stack.algorithm("algo-bad-creds", quick_code, credentialsSecret="bad-creds"))
    obj = stack.wait_condition("modelartsalgorithm", "algo-bad-creds", "False", "Unauthorized")
    assert "authentication" in ready(obj)["message"].lower(), ready(obj)
    assert warnings(stack, "algo-bad-creds", "Unauthorized")

    stack.apply(stack.secret("bad-creds"))  # the right key: seen within the 5 s secret cache + a poll
    stack.wait_ready("modelartsalgorithm", "algo-bad-creds", timeout=20)


def test_missing_reference_then_created(stack, quick_code):
    stack.apply(stack.training_job("tj-waiting", "algo-later"))
    obj = stack.wait_condition("trainingjob", "tj-waiting", "False", "WaitingForDependency")
    assert "algo-later" in ready(obj)["message"]
    assert not warnings(stack, "tj-waiting", "WaitingForDependency"), "waiting is progress, not a warning"

    stack.apply(stack.algorithm("algo-later", quick_code))
    obj = stack.wait_ready("trainingjob", "tj-waiting", timeout=60)
    assert obj["status"]["phase"] == "Completed" and "quick training done" in obj["status"]["logTail"]
    assert obj["status"]["version"] == "V0001"


def test_failing_boot_file_then_fixed_and_recreated(stack):
    stack.apply(stack.config_map("failing-code", {"train.py": FAILING}),
                stack.algorithm("algo-failing", "failing-code"),
                stack.training_job("tj-failing", "algo-failing"))
    obj = stack.wait_condition("trainingjob", "tj-failing", "False", "Failed", timeout=60)
    status = obj["status"]
    assert status["phase"] == "Failed"
    assert "exited with 3" in ready(obj)["message"], ready(obj)
    assert "about to fail on purpose" in status["logTail"]
    assert warnings(stack, "tj-failing", "Failed")

    stack.apply(stack.config_map("failing-code", {"train.py": QUICK}))
    boot_file = f"obs://{stack.bucket}/code/algo-failing/train.py"
    stack.wait_for(lambda: stack.read_object(boot_file).decode() == QUICK, 30,
                   "the algorithm to upload the fixed ConfigMap")
    stack.delete("trainingjob", "tj-failing")
    stack.apply(stack.training_job("tj-failing", "algo-failing"))
    obj = stack.wait_ready("trainingjob", "tj-failing", timeout=60)
    assert obj["status"]["phase"] == "Completed"
    assert obj["status"]["version"] == "V0001"  # the failed run's output folder went with it


# --- 5. deleting a running TrainingJob stops the cloud job -------------------------------------------


def test_delete_running_job_terminates_it(stack):
    stack.apply(stack.config_map("sleeping-code", {"train.py": SLEEPING}),
                stack.algorithm("algo-sleeping", "sleeping-code"),
                stack.training_job("tj-sleeping", "algo-sleeping"))
    obj = stack.wait_for(lambda: (o := stack.get("trainingjob", "tj-sleeping")) and
                         (o.get("status") or {}).get("phase") == "Running" and o, 60, "tj-sleeping to run")
    job_id, cloud_name = obj["status"]["jobId"], obj["status"]["cloudName"]
    assert stack.api.get_training_job(job_id).phase == "Running"

    stack.kubectl("delete", "trainingjob", "tj-sleeping", "-n", stack.namespace, "--wait=false")
    phases = set()

    def cloud_job_gone() -> bool:
        try:
            phases.add(stack.api.get_training_job(job_id).phase)
        except CloudError as exc:
            assert exc.kind is ErrorKind.NOT_FOUND, exc
            return True
        return False

    stack.wait_for(cloud_job_gone, 60, "the cloud job to be stopped and deleted", interval=0.2)
    assert phases & {"Terminating", "Terminated"}, f"never seen stopping: {phases}"
    stack.wait_gone("trainingjob", "tj-sleeping", timeout=30)
    assert stack.api.find_training_job(cloud_name) is None
    assert any("deleted training job" in e["message"] for e in stack.events("tj-sleeping") if e["reason"] == "Deleted")


# --- 6. deletionPolicy Retain ------------------------------------------------------------------------


def test_retain_leaves_the_cloud_side(stack, quick_code):
    stack.apply(stack.algorithm("algo-retain", quick_code, deletionPolicy="Retain"),
                stack.training_job("tj-retain", "algo-retain", deletionPolicy="Retain"))
    job = stack.wait_ready("trainingjob", "tj-retain", timeout=60)["status"]
    algorithm = stack.get("modelartsalgorithm", "algo-retain")["status"]

    stack.delete("trainingjob", "tj-retain")
    stack.delete("modelartsalgorithm", "algo-retain")
    assert stack.api.get_algorithm(algorithm["algorithmId"]).id == algorithm["algorithmId"]
    assert stack.api.get_training_job(job["jobId"]).phase == "Completed"
    assert any(k.endswith("train.py") for k in stack.object_keys(algorithm["codeLocation"]))
    assert any(k.endswith("result.txt") for k in stack.object_keys(job["outputPath"]))
    assert "Retained" in stack.event_reasons("tj-retain") & stack.event_reasons("algo-retain")


# --- 7. cloud resources deleted behind the operator's back ----------------------------------------------


def test_algorithm_deleted_in_the_cloud_is_recreated(stack, quick_code):
    stack.apply(stack.algorithm("algo-vanish", quick_code))
    old = stack.wait_ready("modelartsalgorithm", "algo-vanish")["status"]["algorithmId"]
    assert stack.api.delete_algorithm(old)

    def recreated():
        obj = stack.get("modelartsalgorithm", "algo-vanish")
        return obj if obj["status"]["algorithmId"] != old and ready(obj).get("status") == "True" else None

    new = stack.wait_for(recreated, 30, "the algorithm to be created again")["status"]
    assert stack.api.get_algorithm(new["algorithmId"]).name == new["cloudName"]
    event = warnings(stack, "algo-vanish", "CloudResourceMissing")
    assert event and old in event[0]["message"]


def test_training_job_deleted_in_the_cloud_is_reported_not_rerun(stack, quick_code):
    stack.apply(stack.algorithm("algo-for-vanish", quick_code), stack.training_job("tj-vanish", "algo-for-vanish"))
    status = stack.wait_ready("trainingjob", "tj-vanish", timeout=60)["status"]
    assert stack.api.delete_training_job(status["jobId"])

    obj = stack.wait_condition("trainingjob", "tj-vanish", "False", "CloudResourceMissing", timeout=30)
    assert status["jobId"] in ready(obj)["message"]
    assert warnings(stack, "tj-vanish", "CloudResourceMissing")
    assert stack.api.find_training_job(status["cloudName"]) is None  # training again costs money: not re-run
    stack.delete("trainingjob", "tj-vanish")  # the finalizer copes with the missing job


# --- 8. -------------------------------------------------------------------------------------------------


def test_no_secret_in_logs_events_or_status(stack):
    stack.assert_no_secret_values(BAD_SK)


# --- last: deleting the namespace (Secrets and ConfigMaps go at the same time) cleans up the cloud ---------


def test_deleting_the_namespace_cleans_up_all_but_retained(stack):
    stack.kubectl("delete", "namespace", stack.namespace, "--wait", "--timeout=90s", timeout=120)
    left = stack.inventory()
    assert (left["algorithms"], left["training_jobs"]) == (1, 1), left  # the Retain pair only
    strays = [k for k in left["objects"] if not k.startswith(("code/algo-retain/", "output/tj-retain/"))]
    assert strays == [], f"objects left behind: {strays}"
