"""Helpers for the local cloud tests: the real SDK and OBS clients, signed raw requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import obs
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_response import SdkResponse
from huaweicloudsdkmodelarts.v1 import ModelArtsClient

from modelarts_operator.local.cloud import LocalCloud

BUCKET = "test-modelarts"


class RawResponse(SdkResponse):
    """For v1 calls through call_api: no fields, the body stays in raw_content."""

    openapi_types: dict = {}
    attribute_map: dict = {}


def sdk_client(cloud: LocalCloud, ak: str | None = None, sk: str | None = None) -> ModelArtsClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 60)
    return (
        ModelArtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak or cloud.ak, sk or cloud.sk, cloud.project_id))
        .with_endpoints([cloud.modelarts_endpoint])
        .build()
    )


class Harness:
    """The cloud plus the clients a test needs."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.client = sdk_client(cloud)
        self.obs = obs.ObsClient(
            access_key_id=cloud.ak, secret_access_key=cloud.sk, server=cloud.obs_endpoint, path_style=True,
            signature="v4", region=cloud.region,
        )
        answer = self.obs.headBucket(BUCKET)
        if answer.status == 404:
            assert self.obs.createBucket(BUCKET, location=cloud.region).status == 200

    def v1(self, method: str, path: str, body: Any = None, query: list | None = None) -> tuple[int, Any]:
        """A v1 (models/services) call through the SDK's call_api; errors come back as (status, body)."""
        try:
            answer = self.client.call_api(
                resource_path=path, method=method, path_params={}, query_params=query or [],
                header_params={"Content-Type": "application/json"}, body=body, post_params={},
                response_type=RawResponse, response_headers=[],
            )
        except (ClientRequestException, ServerResponseException) as exc:
            return exc.status_code, {"error_code": exc.error_code, "error_msg": exc.error_msg}
        return answer.status_code, json.loads(answer.raw_content) if answer.raw_content else None

    def put_file(self, key: str, path: Path) -> None:
        assert self.obs.putFile(BUCKET, key, str(path)).status == 200

    def put_text(self, key: str, text: str) -> None:
        assert self.obs.putContent(BUCKET, key, text).status == 200

    def get_text(self, key: str) -> str:
        answer = self.obs.getObject(BUCKET, key, loadStreamInMemory=True)
        assert answer.status == 200, answer.errorMessage
        return answer.body.buffer.decode()

    def keys(self, prefix: str) -> list[str]:
        answer = self.obs.listObjects(BUCKET, prefix=prefix)
        assert answer.status == 200
        return sorted(item.key for item in answer.body.contents)

    def upload_dir(self, folder: Path, prefix: str) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.put_file(prefix + path.relative_to(folder).as_posix(), path)


def signed_request(
    cloud: LocalCloud, method: str, path: str, body: bytes = b"", headers: dict | None = None,
    query: list | None = None, sk: str | None = None, ak: str | None = None, send_body: bytes | None = None,
) -> tuple[int, dict, bytes]:
    """A raw HTTP request signed with the SDK's own Signer (for bodies the SDK would not send).

    `send_body` replaces the signed body on the wire (a request changed after signing)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    host = cloud.modelarts_endpoint.split("://", 1)[1]
    header_params = {"Content-Type": "application/json", **(headers or {})}
    request = SdkRequest(method=method, schema="http", host=host, resource_path=path, query_params=list(query or []),
                         header_params=header_params, body=body)
    Signer(BasicCredentials(ak or cloud.ak, sk or cloud.sk, cloud.project_id)).sign(request)
    url = cloud.modelarts_endpoint + request.uri
    raw = urllib.request.Request(url, data=(body if send_body is None else send_body) or None, method=method, headers=request.header_params)
    try:
        with urllib.request.urlopen(raw, timeout=60) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
