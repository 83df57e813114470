"""Models and real-time services through the SDK's call_api; prediction over HTTP with token or signature."""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
import uuid

import pytest
from localcloud.cloudkit import BUCKET, signed_request
from PIL import Image

from support import wait_for


def models_path(lc, suffix: str = "") -> str:
    return f"/v1/{lc.cloud.project_id}/models{suffix}"


def services_path(lc, suffix: str = "") -> str:
    return f"/v1/{lc.cloud.project_id}/services{suffix}"


def import_model(lc, name: str, source: str) -> str:
    status, body = lc.v1("POST", models_path(lc), {
        "model_name": name, "model_version": "0.0.1", "source_location": source, "model_type": "TensorFlow",
        "install_type": ["real-time"],
    })
    assert status == 200, body
    return body["model_id"]


def wait_model(lc, model_id: str, statuses=("published", "failed")) -> dict:
    return wait_for(lambda: (m := lc.v1("GET", models_path(lc, f"/{model_id}"))[1])["model_status"] in statuses and m,
                    timeout=60, what=f"model {model_id}")


def wait_service(lc, service_id: str, statuses, timeout: float = 120) -> dict:
    return wait_for(lambda: (s := lc.v1("GET", services_path(lc, f"/{service_id}"))[1])["status"] in statuses and s,
                    timeout=timeout, what=f"service {service_id} in {statuses}")


def multipart_png(digit_image) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(digit_image).save(buffer, format="PNG")
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"digit.png\"\r\n"
        f"Content-Type: image/png\r\n\r\n"
    ).encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_model_errors_and_invalid_package(lc, tmp_path):
    status, body = lc.v1("POST", models_path(lc), {"model_name": "m", "model_version": "1.0", "model_type": "TensorFlow",
                                                   "source_location": "/b/x"})
    assert (status, body["error_code"]) == (400, "ModelArts.0104") and "model_version" in body["error_msg"]
    status, body = lc.v1("POST", models_path(lc), {"model_name": "m", "model_version": "1.0.0", "model_type": "TensorFlow"})
    assert (status, body["error_code"]) == (400, "ModelArts.0104") and "source_location" in body["error_msg"]
    for method in ("GET", "DELETE"):
        status, body = lc.v1(method, models_path(lc, "/no-such-model"))
        assert (status, body["error_code"]) == (404, "ModelArts.0102")
    lc.put_text("broken/model/config.json", '{"model_type": "TensorFlow"}')
    model_id = import_model(lc, "broken", f"/{BUCKET}/broken")
    model = wait_model(lc, model_id)
    assert model["model_status"] == "failed"
    assert "model_algorithm" in model["failed_msg"] and "customize_service.py: missing" in model["failed_msg"]
    status, body = lc.v1("POST", services_path(lc), {
        "service_name": "svc-broken", "infer_type": "real-time",
        "config": [{"model_id": model_id, "specification": "modelarts.vm.cpu.2u", "instance_count": 1, "weight": 100}],
    })
    assert (status, body["error_code"]) == (400, "ModelArts.3515")
    status, body = lc.v1("DELETE", models_path(lc, f"/{model_id}"))
    assert status == 200 and body == {"delete_success_list": [model_id], "delete_failed_list": []}
    for method in ("GET", "PUT", "DELETE"):
        status, body = lc.v1(method, services_path(lc, "/no-such-service"), {} if method == "PUT" else None)
        assert (status, body["error_code"]) == (404, "ModelArts.3502")


@pytest.mark.slow
def test_model_service_predict_stop_start_autostop_delete(lc, model_package, test_set):
    lc.upload_dir(model_package, "mnist-model/model/")
    model_id = import_model(lc, "mnist-serving", f"/{BUCKET}/mnist-model")
    status, body = lc.v1("POST", models_path(lc), {
        "model_name": "mnist-serving", "model_version": "0.0.1", "source_location": f"/{BUCKET}/mnist-model", "model_type": "TensorFlow",
    })
    assert (status, body["error_code"]) == (400, "ModelArts.0103")
    service_body = {
        "service_name": "mnist-svc", "infer_type": "real-time",
        "config": [{"model_id": model_id, "specification": "modelarts.vm.cpu.2u", "instance_count": 1, "weight": 100}],
        "schedule": [{"type": "stop", "time_unit": "HOURS", "duration": 1}],
    }
    if lc.v1("GET", models_path(lc, f"/{model_id}"))[1]["model_status"] == "publishing":
        status, body = lc.v1("POST", services_path(lc), service_body)
        assert (status, body["error_code"]) == (400, "ModelArts.3515")
    model = wait_model(lc, model_id)
    assert model["model_status"] == "published", model
    assert json.loads(model["config"])["model_type"] == "TensorFlow" and model["model_size"] > 0
    status, models = lc.v1("GET", models_path(lc), query=[("model_name", "mnist-serving"), ("exact_match", "true")])
    assert status == 200 and [m["model_id"] for m in models["models"]] == [model_id]

    status, created = lc.v1("POST", services_path(lc), service_body)
    assert status == 200, created
    service_id = created["service_id"]
    status, body = lc.v1("POST", services_path(lc), service_body)
    assert (status, body["error_code"]) == (400, "ModelArts.0103")
    service = wait_service(lc, service_id, {"running", "failed"})
    assert service["status"] == "running", service.get("error_msg")
    assert service["progress"] == 100 and service["access_address"].endswith(f"/v1/infers/{service_id}")

    images, labels = test_set
    body, content_type = multipart_png(images[0])
    status, answer = post(service["access_address"], body, {"Content-Type": content_type, "X-Auth-Token": lc.cloud.auth_token})
    assert status == 200, answer
    assert answer["predicted_label"] == str(labels[0])
    status, _, raw = signed_request(lc.cloud, "POST", f"/v1/infers/{service_id}", body, {"Content-Type": content_type})
    assert status == 200 and json.loads(raw)["predicted_label"] == str(labels[0])
    status, answer = post(service["access_address"], body, {"Content-Type": content_type, "X-Auth-Token": "forged"})
    assert (status, answer["error_code"]) == (401, "APIGW.0301") and lc.cloud.auth_token not in answer["error_msg"]
    status, answer = post(service["access_address"], body, {"Content-Type": content_type})
    assert status == 401
    big = b"0" * (12 * 1024 * 1024 + 1)
    status, answer = post(service["access_address"], big, {"Content-Type": "application/json", "X-Auth-Token": lc.cloud.auth_token})
    assert status == 413 and answer["error_code"]
    status, answer = post(service["access_address"], b"{}", {"Content-Type": "application/json", "X-Auth-Token": lc.cloud.auth_token})
    assert 400 <= status < 500, answer
    status, shown = lc.v1("GET", services_path(lc, f"/{service_id}"))
    assert shown["invocation_times"] >= 3 and shown["failed_times"] >= 1
    status, deleted = lc.v1("DELETE", models_path(lc, f"/{model_id}"))
    assert status == 200 and deleted["delete_failed_list"][0]["error_code"] == "ModelArts.3009"

    assert lc.v1("PUT", services_path(lc, f"/{service_id}"), {"status": "stopped"}) == (200, {})
    wait_service(lc, service_id, {"stopped"})
    status, answer = post(service["access_address"], body, {"Content-Type": content_type, "X-Auth-Token": lc.cloud.auth_token})
    assert (status, answer["error_code"]) == (500, "ModelArts.4302")
    assert lc.v1("PUT", services_path(lc, f"/{service_id}"), {"status": "paused"})[0] == 400

    # restart with an auto-stop a few seconds away (SECONDS: the local extension of time_unit)
    assert lc.v1("PUT", services_path(lc, f"/{service_id}"),
                 {"schedule": [{"type": "stop", "time_unit": "SECONDS", "duration": 3}], "status": "running"})[0] == 200
    wait_service(lc, service_id, {"running"})
    pids = _runtime_pids(lc.cloud, service_id)
    assert pids
    wait_service(lc, service_id, {"stopped"}, timeout=30)
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), timeout=15, what="runtime gone after auto-stop")

    assert lc.v1("PUT", services_path(lc, f"/{service_id}"), {"schedule": [], "status": "running"})[0] == 200
    wait_service(lc, service_id, {"running"})
    pids = _runtime_pids(lc.cloud, service_id)
    assert lc.v1("DELETE", services_path(lc, f"/{service_id}")) == (200, {})
    assert lc.v1("GET", services_path(lc, f"/{service_id}"))[0] == 404
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), timeout=15, what="runtime gone after delete")
    assert lc.v1("DELETE", models_path(lc, f"/{model_id}"))[1]["delete_success_list"] == [model_id]


def _runtime_pids(cloud, service_id: str) -> list[int]:
    """Processes whose command line runs serve-model for this service's model (found through /proc)."""
    service = cloud.services.get(service_id)
    model_dirs = {str(cloud.models.package_dir(c["model_id"])) for c in service["config"]}
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "serve-model" in argv and model_dirs & set(argv):
                pids.append(int(entry))
    return pids
