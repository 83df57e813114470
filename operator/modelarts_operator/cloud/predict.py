"""Send a picture to a real-time service's access address, as a user (or the demo) does.

Authentication: an `X-Auth-Token` when given, else an AK/SK signature made with the SDK's own
signer (the same SDK-HMAC-SHA256 the API calls carry). Throttled and 5xx answers are retried.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlparse

from modelarts_operator.cloud.credentials import CloudCredentials
from modelarts_operator.cloud.errors import CloudError, ErrorKind, kind_from_status
from modelarts_operator.cloud.retry import DEFAULT_POLICY, RetryPolicy, with_retries

MAX_REQUEST_BYTES = 12 * 1024 * 1024  # ModelArts' limit for a real-time request body
TIMEOUT_S = 40  # ModelArts ends a real-time request after 40 s


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def signed_headers(url: str, method: str, body: bytes, headers: dict, credentials: CloudCredentials) -> dict:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    parsed = urlparse(url)
    request = SdkRequest(method=method, schema=parsed.scheme, host=parsed.netloc, resource_path=parsed.path or "/",
                         query_params=[], header_params=dict(headers, **{"X-Project-Id": credentials.project_id}),
                         body=body)
    keys = BasicCredentials(credentials.ak.get_secret_value(), credentials.sk.get_secret_value(), credentials.project_id)
    return Signer(keys).sign(request).header_params


def predict(access_address: str, image: bytes, filename: str = "image.png", *, token: str | None = None,
            credentials: CloudCredentials | None = None, policy: RetryPolicy = DEFAULT_POLICY) -> dict:
    """POST the picture in the `images` field; return the service's JSON answer."""
    import requests

    if token is None and credentials is None:
        raise ValueError("predict needs a token or credentials")
    body, content_type = multipart("images", filename, image)
    if len(body) > MAX_REQUEST_BYTES:
        raise CloudError("predict", ErrorKind.PERMANENT, f"request of {len(body)} bytes exceeds the 12 MB limit")

    def attempt() -> dict:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["X-Auth-Token"] = token
        else:
            headers = signed_headers(access_address, "POST", body, headers, credentials)
        try:
            response = requests.post(access_address, data=body, headers=headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise CloudError("predict", ErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"error_msg": response.text[:500]}
        if response.status_code >= 300:
            raise CloudError("predict", kind_from_status(response.status_code),
                             answer.get("error_msg") or json.dumps(answer)[:500], status=response.status_code,
                             code=answer.get("error_code"), request_id=response.headers.get("X-Request-Id"))
        return answer

    return with_retries("predict", attempt, policy, service="modelarts")
