"""The one way to ModelArts: an SDK client per credential fingerprint, every call classified and retried.

Every call: credentials fetched anew (a rotated Secret gives a new client), the endpoint's concurrency
slot taken, errors classified, retryable failures retried. Algorithms and training jobs go through the
SDK's own methods; v1 models and real-time services (which the SDK lacks) through the same client's
generic `call_api` (`v1`). Creates are not retried on their own: `ensure` looks the name up before
each attempt, so a create whose answer was lost is found, not repeated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TypeVar

from modelarts_operator.cloud.credentials import CloudCredentials, CredentialsProvider
from modelarts_operator.cloud.errors import (
    CloudError,
    ErrorKind,
    from_sdk_exception,
    none_if_gone,
    register_codes,
)
from modelarts_operator.cloud.retry import DEFAULT_POLICY, RetryPolicy, endpoint_slot, with_retries

T = TypeVar("T")
SERVICE = "modelarts"  # the `service` label of its calls in the metrics
PAGE = 50
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60

# Codes any ModelArts call may answer; each family declares its own next to its calls.
CODES = {
    "ModelArts.0118": ErrorKind.QUOTA,
    "ModelArts.4206": ErrorKind.THROTTLED,  # rate limited (HTTP 429)
}
register_codes(CODES)


def _raw_response_type():
    """call_api needs a response class; an empty one keeps the body as raw_content for us to parse."""
    from huaweicloudsdkcore.sdk_response import SdkResponse

    class RawResponse(SdkResponse):
        openapi_types: dict = {}
        attribute_map: dict = {}

    return RawResponse


def _json(response) -> dict:
    content = getattr(response, "raw_content", None)
    if not content:
        return {}
    try:
        data = json.loads(content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class Transport:
    """Shared by the resource families of one `ModelArtsApi`."""

    def __init__(self, credentials: CredentialsProvider, policy: RetryPolicy = DEFAULT_POLICY):
        self.credentials = credentials
        self.policy = policy
        self._client_cache: tuple[tuple, object] | None = None
        self._lock = threading.Lock()
        self._raw = _raw_response_type()

    def client(self):
        creds: CloudCredentials = self.credentials()
        key = creds.fingerprint()
        with self._lock:
            if self._client_cache and self._client_cache[0] == key:
                return self._client_cache[1], creds
            from huaweicloudsdkcore.auth.credentials import BasicCredentials
            from huaweicloudsdkcore.http.http_config import HttpConfig
            from huaweicloudsdkmodelarts.v1 import ModelArtsClient

            config = HttpConfig.get_default_config()
            config.timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
            client = (
                ModelArtsClient.new_builder()
                .with_http_config(config)
                # project_id given: otherwise the SDK asks IAM for it at build time
                .with_credentials(BasicCredentials(creds.ak.get_secret_value(), creds.sk.get_secret_value(),
                                                   creds.project_id))
                .with_endpoints([creds.modelarts_server])
                .build()
            )
            self._client_cache = (key, client)
            return client, creds

    def invoke(self, operation: str, call: Callable, policy: RetryPolicy | None = None) -> dict:
        """Run `call(client)` and return the answer's JSON body."""

        def attempt():
            client, creds = self.client()
            with endpoint_slot(creds.modelarts_server, self.policy.max_concurrent_per_endpoint):
                try:
                    return _json(call(client))
                except Exception as exc:
                    raise from_sdk_exception(operation, exc) from None

        return with_retries(operation, attempt, policy or self.policy, service=SERVICE)

    def v1(self, operation: str, method: str, path: str, body: dict | None = None,
           query: list[tuple[str, str]] | None = None, policy: RetryPolicy | None = None) -> dict:
        """A v1 call (models, services) through `call_api`; `{project_id}` in `path` is filled in by the SDK."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.invoke(operation, lambda c: c.call_api(
            resource_path=path, method=method, query_params=query or [], header_params=headers, body=body,
            response_type=self._raw, auth_settings=["ApiTokenAuth"]), policy)

    def ensure(self, kind: str, name: str, find: Callable[[str], T | None], create: Callable[[], T],
               before_create: Callable[[], None] | None = None) -> tuple[T, bool]:
        """Find by name, else create; the whole step is retried, so a lost answer never duplicates.
        `before_create` runs once the cloud answered that nothing of that name exists, right before the
        create is sent (the caller records the create as pending). Returns the resource and whether this
        call created it."""

        def attempt() -> tuple[T, bool]:
            existing = find(name)
            if existing is not None:
                return existing, False
            if before_create is not None:
                before_create()
            try:
                return create(), True
            except CloudError as exc:
                if exc.kind is ErrorKind.CONFLICT:  # created meanwhile by a concurrent or lost call
                    found = find(name)
                    if found is not None:
                        return found, False
                raise

        return with_retries(f"ensure {kind} {name}", attempt, self.policy, service=SERVICE, api_call=False)

    @staticmethod
    def find_by_name(name: str, parse: Callable[[dict], T], page: Callable[[int], dict]) -> T | None:
        """Walk a v2 list ({total, items}) page by page for the item whose metadata.name is exactly `name`
        (the service's name search is a substring match)."""
        offset = 0
        while True:
            data = page(offset)
            items = data.get("items") or []
            for item in items:
                if (item.get("metadata") or {}).get("name") == name:
                    return parse(item)
            offset += len(items)
            if not items or offset >= (data.get("total") or 0):
                return None

    @staticmethod
    def gone_ok(call: Callable[[], dict]) -> bool:
        """Run a delete; False when the resource was already gone (which is success for a finalizer)."""
        return none_if_gone(call) is not None
