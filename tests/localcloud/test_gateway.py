"""Authentication, fault injection, counters, the endpoints file, the OBS gate and the state folder."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import obs
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkmodelarts.v1 import (
    CreateAlgorithmRequest,
    ListAlgorithmsRequest,
    ShowAlgorithmByUuidRequest,
)
from localcloud.cloudkit import signed_request

from modelarts_operator.local.cloud import LocalCloud, signing
from support import wait_for


def admin(cloud, method: str, path: str, body=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(cloud.modelarts_endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_signatures(lc):
    path = f"/v2/{lc.cloud.project_id}/algorithms"
    query = [("searches", "name:a b/c"), ("limit", 5), ("offset", 0)]
    assert signed_request(lc.cloud, "GET", path, query=query)[0] == 200
    status, headers, raw = signed_request(lc.cloud, "GET", path, sk="not-the-key")
    assert status == 401 and json.loads(raw)["error_code"] == "APIGW.0301" and headers.get("X-Request-Id")
    assert lc.cloud.sk not in raw.decode()
    stale = (datetime.now(timezone.utc) - timedelta(minutes=16)).strftime(signing.DATE_FORMAT)
    status, _, raw = signed_request(lc.cloud, "GET", path, headers={"X-Sdk-Date": stale})
    assert status == 401 and "15 minutes" in json.loads(raw)["error_msg"]
    recent = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime(signing.DATE_FORMAT)
    assert signed_request(lc.cloud, "GET", path, headers={"X-Sdk-Date": recent})[0] == 200
    status, _, raw = signed_request(lc.cloud, "GET", f"/v2/{lc.cloud.project_id}/algorithms", query=[("limit", 5)])
    assert status == 200
    unsigned = urllib.request.Request(lc.cloud.modelarts_endpoint + path)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(unsigned, timeout=30)
    assert info.value.code == 401 and json.loads(info.value.read())["error_code"] == "APIGW.0301"
    status, _, raw = signed_request(lc.cloud, "GET", path, ak="SOMEONE-ELSE")
    assert status == 401 and "unknown access key" in json.loads(raw)["error_msg"]
    body = json.dumps({"metadata": {"name": "signed-body"}}).encode()
    status, _, _ = signed_request(lc.cloud, "POST", path, body)
    assert status == 201
    # a body changed after signing breaks the signature
    status, _, _ = signed_request(lc.cloud, "POST", path, body, send_body=body.replace(b"signed", b"forged"))
    assert status == 401
    status, _, raw = signed_request(lc.cloud, "GET", "/v2/0123456789abcdef0123456789abcdef/algorithms")
    assert status == 403
    status, _, raw = signed_request(lc.cloud, "GET", f"/v2/{lc.cloud.project_id}/no-such-api")
    assert status == 404 and json.loads(raw)["error_code"]


def test_bodies_that_are_not_json_objects_get_400(lc):
    path = f"/v2/{lc.cloud.project_id}/algorithms"
    for body in (b"[" * 100_000, b"\xff\xfe{}", b"[1, 2]", b"{\"metadata\": "):
        status, _, raw = signed_request(lc.cloud, "POST", path, body)
        assert (status, json.loads(raw)["error_code"]) == (400, "ModelArts.0104"), raw


def test_faults_and_counters(lc):
    lc.cloud.reset_counters()
    lc.cloud.set_faults("list_algorithms", error_429=1.0)
    with pytest.raises(ClientRequestException) as info:
        lc.client.list_algorithms(ListAlgorithmsRequest())
    # the SDK turns a 429 into an exception before reading the body (urllib3 status_forcelist=[429])
    assert info.value.status_code == 429
    status, headers, raw = signed_request(lc.cloud, "GET", f"/v2/{lc.cloud.project_id}/algorithms")
    assert (status, json.loads(raw)["error_code"]) == (429, "ModelArts.4206") and headers["X-Request-Id"]
    lc.cloud.set_faults(None, error_500=1.0)
    with pytest.raises(ServerResponseException) as info:
        lc.client.list_algorithms(ListAlgorithmsRequest())
    assert (info.value.status_code, info.value.error_code) == (500, "ModelArts.0010")
    lc.cloud.set_faults(None)
    assert lc.client.list_algorithms(ListAlgorithmsRequest()).status_code == 200
    assert lc.cloud.counters()["list_algorithms"] == 4

    # the same through the admin endpoint, with latency
    assert admin(lc.cloud, "PUT", "/_admin/faults", {"operation": "show_algorithm_by_uuid", "latency_ms": 300})[0] == 200
    assert admin(lc.cloud, "GET", "/_admin/faults")[1] == {
        "show_algorithm_by_uuid": {"error_429": 0.0, "error_500": 0.0, "latency_ms": 300}}
    import time

    started = time.monotonic()
    with pytest.raises(ClientRequestException):
        lc.client.show_algorithm_by_uuid(ShowAlgorithmByUuidRequest(algorithm_id="none"))
    assert time.monotonic() - started >= 0.3
    assert admin(lc.cloud, "PUT", "/_admin/faults", {"error_429": 0.5, "error_500": 0.5})[0] == 200
    outcomes = set()
    for _ in range(30):
        try:
            lc.client.list_algorithms(ListAlgorithmsRequest())
        except (ClientRequestException, ServerResponseException) as exc:
            outcomes.add(exc.status_code)
    assert outcomes == {429, 500}
    assert admin(lc.cloud, "PUT", "/_admin/faults", {"error_429": 2})[0] == 400
    assert admin(lc.cloud, "PUT", "/_admin/faults", {"operation": "no_such_op"})[0] == 400
    assert admin(lc.cloud, "PUT", "/_admin/faults", {"error_429": 0})[1] == {}
    counters = admin(lc.cloud, "GET", "/_admin/counters")[1]
    assert counters["list_algorithms"] == 34 and counters["show_algorithm_by_uuid"] == 1
    assert admin(lc.cloud, "DELETE", "/_admin/counters")[0] == 200
    assert lc.cloud.counters() == {}


def test_endpoints_file_and_public_bucket(lc, tmp_path):
    path = lc.cloud.write_endpoints_file(tmp_path / "cloud.json")
    document = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert document == dict(lc.cloud.credentials(), authToken=lc.cloud.auth_token, publicBucket=lc.cloud.public_bucket,
                            publicDatasetPath=lc.cloud.public_dataset_path)
    assert len(lc.cloud.project_id) == 32 and int(lc.cloud.project_id, 16) >= 0
    assert lc.cloud.sk not in repr(lc.cloud)

    keys = {item.key for item in lc.obs.listObjects(lc.cloud.public_bucket).body.contents}
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert f"dataset-market/Mnist-Data-Set/{name}" in keys and f"dataset-market/Mnist-Data-Set/{name}.gz" in keys
    assert lc.obs.putContent(lc.cloud.public_bucket, "dataset-market/x", "x").status == 403
    assert lc.obs.deleteObject(lc.cloud.public_bucket, "dataset-market/Mnist-Data-Set/t10k-labels-idx1-ubyte").status == 403
    anonymous = urllib.request.urlopen(
        f"{lc.cloud.obs_endpoint}/{lc.cloud.public_bucket}/dataset-market/Mnist-Data-Set/t10k-labels-idx1-ubyte", timeout=30)
    assert anonymous.read()[:4] == b"\x00\x00\x08\x01"
    stranger = obs.ObsClient(access_key_id="STRANGER", secret_access_key="x", server=lc.cloud.obs_endpoint, path_style=True)
    assert stranger.listObjects("test-modelarts").status == 403


def test_state_folder_survives_a_restart(tmp_path):
    state = tmp_path / "state"
    with LocalCloud(state_dir=state, endpoints_file=tmp_path / "cloud.json") as first:
        credentials = first.credentials()
        client = _client(first)
        algorithm_id = client.create_algorithm(CreateAlgorithmRequest(body={"metadata": {"name": "kept"}})).metadata.id
        bucket = obs.ObsClient(access_key_id=first.ak, secret_access_key=first.sk, server=first.obs_endpoint, path_style=True,
                               signature="v4", region=first.region)
        assert bucket.createBucket("kept-bucket", location=first.region).status == 200
        assert bucket.putContent("kept-bucket", "a/b.txt", "kept").status == 200
        assert json.loads((tmp_path / "cloud.json").read_text())["modelartsEndpoint"] == first.modelarts_endpoint
    assert stat.S_IMODE(os.stat(state / "state.json").st_mode) == 0o600
    with LocalCloud(state_dir=state) as second:
        assert (second.ak, second.sk, second.project_id) == (credentials["ak"], credentials["sk"], credentials["projectId"])
        shown = _client(second).show_algorithm_by_uuid(ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id))
        assert shown.metadata.name == "kept"
        bucket = obs.ObsClient(access_key_id=second.ak, secret_access_key=second.sk, server=second.obs_endpoint,
                               path_style=True, signature="v4", region=second.region)
        answer = wait_for(lambda: bucket.getObject("kept-bucket", "a/b.txt", loadStreamInMemory=True), what="object")
        assert answer.status == 200 and answer.body.buffer == b"kept"
    with LocalCloud() as fresh:
        assert _client(fresh).list_algorithms(ListAlgorithmsRequest()).total == 0


def _client(cloud):
    from localcloud.cloudkit import sdk_client

    return sdk_client(cloud)
