"""Contract tests against the public docs' examples (../shared/reference/modelarts-api/).

For each documented operation: the emulator's answer carries every field of the documented
response example (recursively), with the documented status code; documented request examples are
accepted, or rejected with a documented error where they name ids that do not exist here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from localcloud.cloudkit import BUCKET, signed_request

from support import wait_for

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "modelarts-api"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference examples not present")


def doc(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


def missing_keys(documented, ours, where: str = "") -> list[str]:
    """Documented keys absent from our answer (dicts recursively, lists by their first element)."""
    if isinstance(documented, dict) and isinstance(ours, dict):
        problems = [f"{where}.{k}" for k in documented if k not in ours]
        for key in documented.keys() & ours.keys():
            problems += missing_keys(documented[key], ours[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list) and isinstance(ours, list) and documented and ours:
        return missing_keys(documented[0], ours[0], f"{where}[0]")
    return []


def call(lc, method: str, path: str, body=None, query=None) -> tuple[int, object]:
    raw_body = json.dumps(body).encode() if body is not None else b""
    status, _, raw = signed_request(lc.cloud, method, path, raw_body, query=query)
    return status, json.loads(raw) if raw else None


def check(reference: dict, status: int, answer, example=None) -> None:
    assert status == reference["status_code"], answer
    example = reference.get("response_example") if example is None else example
    if isinstance(example, dict):
        assert missing_keys(example, answer) == [], reference["operation"]


def documented_error(status: int, answer: dict, code: str) -> None:
    errors = {row["error_code"]: row["status_code"] for row in doc("errors")["error_codes"]}
    assert (status, answer["error_code"]) == (errors[code], code)
    assert set(answer) >= {"error_code", "error_msg"}


def test_training_operations_match_the_docs(lc):
    pid = lc.cloud.project_id
    create = doc("create_algorithm")
    status, algorithm = call(lc, "POST", f"/v2/{pid}/algorithms", create["request_example"])
    check(create, status, algorithm)
    algorithm_id = algorithm["metadata"]["id"]
    status, answer = call(lc, "POST", f"/v2/{pid}/algorithms", create["request_example"])
    documented_error(status, answer, "ModelArts.2821")
    check(doc("show_algorithm"), *call(lc, "GET", f"/v2/{pid}/algorithms/{algorithm_id}"))
    check(doc("list_algorithms"), *call(lc, "GET", f"/v2/{pid}/algorithms",
                                        query=[("limit", 1), ("searches", "name:TestModelArtsalgorithm")]))

    jobs = doc("create_training_job")
    by_id, custom_image = (example["body"] for example in jobs["request_examples"])
    status, answer = call(lc, "POST", f"/v2/{pid}/training-jobs", by_id)
    documented_error(status, answer, "ModelArts.2755")
    assert set(answer) == set(jobs["response_examples"][1]["body"])
    ours = copy.deepcopy(by_id)
    ours["algorithm"]["id"] = algorithm_id
    status, job = call(lc, "POST", f"/v2/{pid}/training-jobs", ours)
    check(jobs, status, job, jobs["response_examples"][0]["body"])
    status, answer = call(lc, "POST", f"/v2/{pid}/training-jobs", ours)
    documented_error(status, answer, "ModelArts.2751")
    status, image_job = call(lc, "POST", f"/v2/{pid}/training-jobs", custom_image)
    assert status == 201, image_job

    job_id = job["metadata"]["id"]
    # its code bucket does not exist here: the job fails at download, like a real job with a bad code_dir
    finished = wait_for(lambda: (j := call(lc, "GET", f"/v2/{pid}/training-jobs/{job_id}")[1])["status"]["phase"]
                        in ("Failed", "Completed") and j, timeout=60, what="job end")
    assert finished["status"]["phase"] == "Failed" and "download" in finished["status"]["task_statuses"][0]["message"]
    check(doc("show_training_job"), 200, finished)
    search = doc("list_training_jobs")
    check(search, *call(lc, "POST", f"/v2/{pid}/training-job-searches", search["request_example"], query=[("limit", 1)]))
    check(doc("training_job_log_preview"), *call(lc, "GET", f"/v2/{pid}/training-jobs/{job_id}/tasks/worker-0/logs/preview"))
    stop = doc("stop_training_job")
    image_job_id = image_job["metadata"]["id"]
    check(stop, *call(lc, "POST", f"/v2/{pid}/training-jobs/{image_job_id}/actions", stop["request_example"]))
    for job in (job_id, image_job_id):
        assert call(lc, "DELETE", f"/v2/{pid}/training-jobs/{job}")[0] == doc("delete_training_job")["status_code"]
    status, answer = call(lc, "GET", f"/v2/{pid}/training-jobs/{job_id}")
    documented_error(status, answer, "ModelArts.2775")
    assert call(lc, "DELETE", f"/v2/{pid}/algorithms/{algorithm_id}")[0] == doc("delete_algorithm")["status_code"]
    status, answer = call(lc, "GET", f"/v2/{pid}/algorithms/{algorithm_id}")
    documented_error(status, answer, "ModelArts.2755")


def test_model_and_service_operations_match_the_docs(lc):
    pid = lc.cloud.project_id
    create_model = doc("create_model")
    status, answer = call(lc, "POST", f"/v1/{pid}/models", create_model["request_example"])
    check(create_model, status, answer)  # accepted; its https://models.obs... source does not exist here
    failed = wait_for(lambda: (m := call(lc, "GET", f"/v1/{pid}/models/{answer['model_id']}")[1])["model_status"] != "publishing"
                      and m, what="import end")
    assert failed["model_status"] == "failed"
    assert call(lc, "DELETE", f"/v1/{pid}/models/{failed['model_id']}")[0] == 200

    # a package that passes validation but cannot load: published, then the service fails with error_msg
    for name, text in {"config.json": json.dumps({"model_algorithm": "image_classification", "model_type": "TensorFlow"}),
                       "customize_service.py": "from model_service.tfserving_model_service import TfServingBaseService\n"
                                               "class S(TfServingBaseService):\n    pass\n",
                       "saved_model.pb": "not a model", "variables/variables.index": "no"}.items():
        lc.put_text(f"unloadable/model/{name}", text)
    body = dict(create_model["request_example"], model_name="contract", source_location=f"/{BUCKET}/unloadable")
    status, answer = call(lc, "POST", f"/v1/{pid}/models", body)
    model_id = answer["model_id"]
    model = wait_for(lambda: (m := call(lc, "GET", f"/v1/{pid}/models/{model_id}")[1])["model_status"] != "publishing" and m,
                     what="import end")
    check(doc("show_model"), 200, model)
    assert model["model_status"] == "published"
    check(doc("list_models"), *call(lc, "GET", f"/v1/{pid}/models", query=[("model_name", "contract")]))

    create_service = doc("create_service")
    for example in create_service["request_examples"]:
        status, answer = call(lc, "POST", f"/v1/{pid}/services", example["body"])
        assert (status, answer["error_code"]) == (404, "ModelArts.0102"), example["label"]  # unknown model ids
    scheduled = next(e["body"] for e in create_service["request_examples"] if "schedule" in e["body"])
    scheduled = dict(scheduled, config=[dict(scheduled["config"][0], model_id=model_id)])
    status, created = call(lc, "POST", f"/v1/{pid}/services", scheduled)
    check(create_service, status, created)
    service_id = created["service_id"]
    show = doc("show_service")
    status, service = call(lc, "GET", f"/v1/{pid}/services/{service_id}")
    check(show, status, service)
    assert service["status"] in show["status_values"]
    failed = wait_for(lambda: (s := call(lc, "GET", f"/v1/{pid}/services/{service_id}")[1])["status"] == "failed" and s,
                      timeout=90, what="the unloadable service to fail")
    assert failed["error_msg"] and model_id in failed["error_msg"]
    check(doc("list_services"), *call(lc, "GET", f"/v1/{pid}/services", query=[("service_name", "service-demo")]))
    update = doc("update_service")
    body = dict(update["request_example"], config=[dict(update["request_example"]["config"][0], model_id=model_id)])
    check(update, *call(lc, "PUT", f"/v1/{pid}/services/{service_id}", body))
    delete_model = doc("delete_model")
    status, answer = call(lc, "DELETE", f"/v1/{pid}/models/{model_id}")
    check(delete_model, status, answer)
    assert missing_keys(delete_model["response_example"]["delete_failed_list"][0], answer["delete_failed_list"][0]) == []
    check(doc("delete_service"), *call(lc, "DELETE", f"/v1/{pid}/services/{service_id}"))
    status, answer = call(lc, "GET", f"/v1/{pid}/services/{service_id}")
    documented_error(status, answer, "ModelArts.3502")
    status, answer = call(lc, "DELETE", f"/v1/{pid}/models/{model_id}")
    assert status == 200 and answer["delete_success_list"] == [model_id]
