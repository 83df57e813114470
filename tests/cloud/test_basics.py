"""Credentials, naming, error classification and retries: the pure parts of the cloud layer."""

from __future__ import annotations

import pytest
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ConnectionException,
    SdkError,
    ServerResponseException,
)

from modelarts_operator.cloud.credentials import CloudCredentials, CredentialsError
from modelarts_operator.cloud.errors import CloudError, ErrorKind, from_obs_response, from_sdk_exception
from modelarts_operator.cloud.naming import cloud_name
from modelarts_operator.cloud.obs import ObsUrl
from modelarts_operator.cloud.retry import RetryPolicy, with_retries

SECRET = "S3cr3t-Value-That-Must-Not-Leak"
GOOD = {"ak": "AKEXAMPLE", "sk": SECRET, "projectId": "0123456789abcdef0123456789abcdef", "region": "cn-north-4"}


def test_credentials_from_secret_data_bytes_or_str():
    creds = CloudCredentials.from_mapping({k: v.encode() for k, v in GOOD.items()})
    assert creds.project_id == GOOD["projectId"]
    assert creds.sk.get_secret_value() == SECRET
    assert creds.modelarts_server == "https://modelarts.cn-north-4.myhuaweicloud.com"
    assert creds.obs_server == "https://obs.cn-north-4.myhuaweicloud.com"
    local = CloudCredentials.from_mapping({**GOOD, "modelartsEndpoint": "http://127.0.0.1:9"})
    assert local.modelarts_server == "http://127.0.0.1:9"
    assert SECRET not in repr(creds) and SECRET not in str(creds) and "AKEXAMPLE" not in repr(creds)


def test_credentials_errors_name_fields_never_values():
    with pytest.raises(CredentialsError) as caught:
        CloudCredentials.from_mapping({"ak": "AKEXAMPLE", "sk": SECRET, "region": "Not A Region!"})
    message = str(caught.value)
    assert "projectId: Field required" in message
    assert "region: String should match pattern" in message
    assert SECRET not in message and "Not A Region!" not in message and "AKEXAMPLE" not in message
    with pytest.raises(CredentialsError, match="obsEndpoint: String should match pattern"):
        CloudCredentials.from_mapping({**GOOD, "obsEndpoint": "ftp://" + SECRET})


def test_cloud_names_are_deterministic_bounded_and_valid():
    name = cloud_name("ml-team", "mnist", "5f2a9c1e-0d3b-4b8e-9a55-1b2c3d4e5f60")
    assert name == "ml-team-mnist-5f2a9c1e"
    assert cloud_name("ml-team", "mnist", "5f2a9c1e-0d3b-4b8e-9a55-1b2c3d4e5f60") == name
    long = cloud_name("n" * 60, "x.y" * 30, "abcdef0123")
    assert len(long) <= 64 and long.endswith("-abcdef01")
    assert set(long) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    with pytest.raises(ValueError):
        cloud_name("ns", "n", "")


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [("obs://test-modelarts/dataset-mnist/", "test-modelarts", "dataset-mnist/"),
     ("obs://bkt.with.dots/a/b.py", "bkt.with.dots", "a/b.py"),
     ("obs://bkt", "bkt", "")],
)
def test_obs_urls(url, bucket, key):
    parsed = ObsUrl.parse(url)
    assert (parsed.bucket, parsed.key) == (bucket, key)
    assert str(parsed) == (url if key else url + "/")
    assert ObsUrl.from_api_path(parsed.api_path) == parsed


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("s3://bkt/a", "not an OBS URL"), ("obs://Upper/a", "bucket name 'Upper'"), ("obs://ab/x", "bucket name 'ab'"),
     ("obs://192.168.1.1/x", "look like an IP"), ("obs://bkt/a//b", "empty path segment"), ("obs:///a", "not an OBS URL")],
)
def test_bad_obs_urls(url, fragment):
    with pytest.raises(ValueError, match=fragment):
        ObsUrl.parse(url)


def test_obs_url_join_and_folder():
    base = ObsUrl.parse("obs://bkt/models")
    assert str(base.folder()) == "obs://bkt/models/"
    assert str(base.join("V0001", "model/")) == "obs://bkt/models/V0001/model"
    assert base.folder().api_path == "/bkt/models/"


def sdk_error(cls, status, code, msg="m"):
    return cls(status, SdkError(request_id="req-1", error_code=code, error_msg=msg))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (sdk_error(ClientRequestException, 400, "ModelArts.2775"), ErrorKind.NOT_FOUND),  # 400, yet "not found"
        (sdk_error(ClientRequestException, 400, "ModelArts.2755"), ErrorKind.NOT_FOUND),
        (sdk_error(ClientRequestException, 404, "ModelArts.3502"), ErrorKind.NOT_FOUND),
        (sdk_error(ClientRequestException, 400, "ModelArts.2821"), ErrorKind.CONFLICT),
        (sdk_error(ClientRequestException, 400, "ModelArts.3515"), ErrorKind.CONFLICT),
        (sdk_error(ClientRequestException, 400, "ModelArts.3520"), ErrorKind.QUOTA),
        (sdk_error(ClientRequestException, 429, "ModelArts.4206"), ErrorKind.THROTTLED),
        (sdk_error(ClientRequestException, 429, "APIGW.0308"), ErrorKind.THROTTLED),
        (sdk_error(ClientRequestException, 401, "APIGW.0301"), ErrorKind.AUTH),
        (sdk_error(ClientRequestException, 400, "ModelArts.0001"), ErrorKind.PERMANENT),
        (sdk_error(ServerResponseException, 503, "ModelArts.0000"), ErrorKind.TRANSIENT),
        (ConnectionException("connection refused"), ErrorKind.TRANSIENT),
    ],
)
def test_sdk_errors_are_classified(exc, kind):
    error = from_sdk_exception("op", exc)
    assert error.kind is kind
    assert error.retryable == (kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT))


def test_cloud_error_message_carries_code_status_and_request_id():
    error = from_sdk_exception("show_training_job_details", sdk_error(ClientRequestException, 400, "ModelArts.2775",
                                                                      "Training job not found."))
    assert str(error) == ("show_training_job_details failed: ModelArts.2775: Training job not found. "
                          "(HTTP 400, request req-1)")


def test_obs_responses_are_classified():
    class Response:
        def __init__(self, status, code):
            self.status, self.errorCode, self.errorMessage, self.requestId = status, code, "msg", "r"

    assert from_obs_response("getObject", Response(404, "NoSuchKey")).kind is ErrorKind.NOT_FOUND
    assert from_obs_response("putFile", Response(403, "SignatureDoesNotMatch")).kind is ErrorKind.AUTH
    assert from_obs_response("putFile", Response(503, "SlowDown")).kind is ErrorKind.THROTTLED
    assert from_obs_response("putFile", Response(None, None)).kind is ErrorKind.TRANSIENT


def test_retries_transient_then_succeeds_with_growing_jittered_delays():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise CloudError("op", ErrorKind.THROTTLED if len(calls) % 2 else ErrorKind.TRANSIENT, "busy")
        return "done"

    policy = RetryPolicy(attempts=5, base_delay_s=1.0, max_delay_s=3.0, deadline_s=100)
    assert with_retries("op", flaky, policy, sleep=sleeps.append, service="obs") == "done"
    assert len(calls) == 4 and len(sleeps) == 3
    assert all(0 <= s <= min(3.0, 2 ** i) for i, s in enumerate(sleeps))


def test_retries_are_bounded_and_skip_permanent_errors():
    calls = []

    def always(kind):
        def call():
            calls.append(kind)
            raise CloudError("op", kind, "no")
        return call

    with pytest.raises(CloudError):
        with_retries("op", always(ErrorKind.TRANSIENT), RetryPolicy(attempts=3), sleep=lambda s: None,
                     service="obs")
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(CloudError):
        with_retries("op", always(ErrorKind.AUTH), RetryPolicy(attempts=3), sleep=lambda s: None,
                     service="obs")
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(CloudError):  # the deadline stops retries before the attempts run out
        with_retries("op", always(ErrorKind.TRANSIENT),
                     RetryPolicy(attempts=50, base_delay_s=10, max_delay_s=10, deadline_s=0.001),
                     sleep=lambda s: None, service="obs")
    assert len(calls) < 50
