"""Crash safety: the operator dies right after each cloud create, before recording the id, and is
restarted; the pipeline still ends with exactly one of each cloud resource."""

from __future__ import annotations

import time

import pytest

from modelarts_operator.api.conditions import is_ready

pytestmark = pytest.mark.slow

CRASH = {"MODELARTS_OPERATOR_CRASH_AFTER_CREATE": "algorithm,trainingjob,model,service"}
ORDER = [("mnistdataset", "mnist"), ("modelartsalgorithm", "mnist-tensorflow"), ("trainingjob", "mnist-train"),
         ("modelartsservice", "mnist-service")]


def all_ready(stack) -> bool:
    items = stack.items()
    ready = [o for o in items if is_ready(o.get("status"))]
    return len(items) == 4 and len(ready) == 4


def test_crash_after_every_create_leaves_no_duplicates(stack):
    stack.kill_operator()
    stack.start_operator(env=CRASH, wait_live=False)
    stack.apply(*stack.local_stack(**stack.small_training))

    crashes, deadline = [], time.monotonic() + 300
    while not all_ready(stack):
        assert time.monotonic() < deadline, f"not Ready after {len(crashes)} crashes:\n{stack.log_tail()}"
        if not stack.operator_alive():
            crashes.append(stack.process.returncode)
            stack.start_operator(env=CRASH, wait_live=False)  # the create is found by name: no crash again
        time.sleep(0.5)  # the poll interval of this loop, not a synchronisation

    assert len(crashes) >= 4 and set(crashes) == {137}, crashes
    assert stack.log_text().count("crash point after creating") == len(crashes)
    for what in ("algorithm", "trainingjob", "model", "service"):
        assert f"crash point after creating {what}" in stack.log_text()
    counts = {kind: stack.api.count(kind) for kind in ("algorithms", "training_jobs", "models", "services")}
    assert counts == {"algorithms": 1, "training_jobs": 1, "models": 1, "services": 1}, counts
    # the ids recorded after the restarts are the ones in the cloud (adopted, not re-created)
    algorithm = stack.get("modelartsalgorithm", "mnist-tensorflow")["status"]
    job = stack.get("trainingjob", "mnist-train")["status"]
    service = stack.get("modelartsservice", "mnist-service")["status"]
    assert stack.api.find_algorithm(algorithm["cloudName"]).id == algorithm["algorithmId"]
    assert stack.api.find_training_job(job["cloudName"]).id == job["jobId"]
    assert stack.api.find_service(service["cloudName"]).id == service["serviceId"]
    assert job["version"] == "V0001" and job["phase"] == "Completed"
    assert stack.event_reasons("mnist-tensorflow") >= {"Adopted"}
    assert stack.event_reasons("mnist-service") >= {"Adopted"}


def test_service_deleted_behind_the_back_is_recreated(stack):
    stack.kill_operator()
    stack.start_operator()  # without the crash points from here on
    old = stack.get("modelartsservice", "mnist-service")["status"]
    assert stack.api.delete_service(old["serviceId"])

    def redeployed():
        obj = stack.get("modelartsservice", "mnist-service")
        status = obj["status"]
        ready = is_ready(status)
        return obj if ready and status["serviceId"] != old["serviceId"] else None

    new = stack.wait_for(redeployed, 90, "the service to be deployed again")["status"]
    assert new["modelId"] == old["modelId"]  # the model was still there: only the service is redeployed
    missing = [e for e in stack.events("mnist-service") if e["reason"] == "CloudResourceMissing"]
    assert missing and missing[0]["type"] == "Warning" and old["serviceId"] in missing[0]["message"]
    assert stack.api.count("services") == 1


def test_no_secret_in_logs_events_or_status(stack):
    stack.assert_no_secret_values()
