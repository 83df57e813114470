"""ModelArts through huaweicloudsdkmodelarts: algorithms and training jobs by the SDK's methods, v1 models
and real-time services (which the SDK lacks) through the same client's generic `call_api`.

Every call: credentials fetched anew, the endpoint's concurrency slot taken, errors classified,
reads and deletes retried. Creates are retried only inside `ensure_*`, which looks the name up
before each attempt: a create whose answer was lost is found, not repeated.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from modelarts_operator.cloud.credentials import CloudCredentials, CredentialsProvider
from modelarts_operator.cloud.errors import CloudError, ErrorKind, from_sdk_exception, none_if_gone
from modelarts_operator.cloud.resources import (
    Algorithm,
    AlgorithmSpec,
    Model,
    ModelSpec,
    Service,
    ServiceSpec,
    TrainingJob,
    TrainingJobSpec,
)
from modelarts_operator.cloud.retry import DEFAULT_POLICY, NO_RETRY, RetryPolicy, endpoint_slot, with_retries

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE = 50
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60


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


class ModelArtsApi:
    def __init__(self, credentials: CredentialsProvider, policy: RetryPolicy = DEFAULT_POLICY):
        self._credentials = credentials
        self._policy = policy
        self._client_cache: tuple[tuple, object] | None = None
        self._lock = threading.Lock()
        self._raw = _raw_response_type()

    # --- plumbing ------------------------------------------------------------------------------

    def _client(self):
        creds: CloudCredentials = self._credentials()
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

    def _invoke(self, operation: str, call: Callable, policy: RetryPolicy | None = None) -> dict:
        def attempt():
            client, creds = self._client()
            with endpoint_slot(creds.modelarts_server, self._policy.max_concurrent_per_endpoint):
                try:
                    return _json(call(client))
                except Exception as exc:
                    raise from_sdk_exception(operation, exc) from None

        return with_retries(operation, attempt, policy or self._policy)

    def _v1(self, operation: str, method: str, path: str, body: dict | None = None,
            query: list[tuple[str, str]] | None = None, policy: RetryPolicy | None = None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self._invoke(operation, lambda c: c.call_api(
            resource_path=path, method=method, query_params=query or [], header_params=headers, body=body,
            response_type=self._raw, auth_settings=["ApiTokenAuth"]), policy)

    def _ensure(self, kind: str, name: str, find: Callable[[str], T | None], create: Callable[[], T]) -> tuple[T, bool]:
        """Find by name, else create; the whole step is retried, so a lost answer never duplicates."""

        def attempt() -> tuple[T, bool]:
            existing = find(name)
            if existing is not None:
                return existing, False
            try:
                return create(), True
            except CloudError as exc:
                if exc.kind is ErrorKind.CONFLICT:  # created meanwhile by a concurrent or lost call
                    found = find(name)
                    if found is not None:
                        return found, False
                raise

        return with_retries(f"ensure {kind} {name}", attempt, self._policy)

    @staticmethod
    def _find_by_name(name: str, parse: Callable[[dict], T], page: Callable[[int], dict]) -> T | None:
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
    def _gone_ok(call: Callable[[], dict]) -> bool:
        """Run a delete; False when the resource was already gone (which is success for a finalizer)."""
        return none_if_gone(call) is not None

    def count(self, kind: str) -> int:
        """How many of a kind exist in the project (algorithms, training_jobs, models, services)."""
        from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest, ListTrainingJobsRequest

        if kind == "algorithms":
            return self._invoke("list_algorithms", lambda c: c.list_algorithms(ListAlgorithmsRequest(limit=1))).get(
                "total") or 0
        if kind == "training_jobs":
            return self._invoke("list_training_jobs", lambda c: c.list_training_jobs(
                ListTrainingJobsRequest(body={"limit": 1}))).get("total") or 0
        if kind in ("models", "services"):
            return self._v1(f"list_{kind}", "GET", f"/v1/{{project_id}}/{kind}").get("total_count") or 0
        raise ValueError(f"unknown kind {kind!r}")

    # --- algorithms ----------------------------------------------------------------------------

    def create_algorithm(self, spec: AlgorithmSpec) -> Algorithm:
        from huaweicloudsdkmodelarts.v1 import CreateAlgorithmRequest

        data = self._invoke("create_algorithm", lambda c: c.create_algorithm(CreateAlgorithmRequest(body=spec.body())),
                            NO_RETRY)
        return Algorithm.from_api(data)

    def get_algorithm(self, algorithm_id: str) -> Algorithm:
        from huaweicloudsdkmodelarts.v1 import ShowAlgorithmByUuidRequest

        return Algorithm.from_api(self._invoke("show_algorithm_by_uuid", lambda c: c.show_algorithm_by_uuid(
            ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id))))

    def find_algorithm(self, name: str) -> Algorithm | None:
        from huaweicloudsdkmodelarts.v1 import ListAlgorithmsRequest

        return self._find_by_name(name, Algorithm.from_api, lambda offset: self._invoke(
            "list_algorithms", lambda c: c.list_algorithms(
                ListAlgorithmsRequest(offset=offset, limit=PAGE, searches=f"name:{name}"))))

    def ensure_algorithm(self, spec: AlgorithmSpec) -> tuple[Algorithm, bool]:
        return self._ensure("algorithm", spec.name, self.find_algorithm, lambda: self.create_algorithm(spec))

    def delete_algorithm(self, algorithm_id: str) -> bool:
        from huaweicloudsdkmodelarts.v1 import DeleteAlgorithmRequest

        return self._gone_ok(lambda: self._invoke("delete_algorithm", lambda c: c.delete_algorithm(
            DeleteAlgorithmRequest(algorithm_id=algorithm_id))))

    # --- training jobs -------------------------------------------------------------------------

    def create_training_job(self, spec: TrainingJobSpec) -> TrainingJob:
        from huaweicloudsdkmodelarts.v1 import CreateTrainingJobRequest

        data = self._invoke("create_training_job", lambda c: c.create_training_job(
            CreateTrainingJobRequest(body=spec.body())), NO_RETRY)
        return TrainingJob.from_api(data)

    def get_training_job(self, job_id: str) -> TrainingJob:
        from huaweicloudsdkmodelarts.v1 import ShowTrainingJobDetailsRequest

        return TrainingJob.from_api(self._invoke("show_training_job_details", lambda c: c.show_training_job_details(
            ShowTrainingJobDetailsRequest(training_job_id=job_id))))

    def find_training_job(self, name: str) -> TrainingJob | None:
        from huaweicloudsdkmodelarts.v1 import ListTrainingJobsRequest

        return self._find_by_name(name, TrainingJob.from_api, lambda offset: self._invoke(
            "list_training_jobs", lambda c: c.list_training_jobs(ListTrainingJobsRequest(body={
                "offset": offset, "limit": PAGE, "filters": [{"key": "name", "operator": "like", "value": [name]}]}))))

    def ensure_training_job(self, spec: TrainingJobSpec) -> tuple[TrainingJob, bool]:
        return self._ensure("training job", spec.name, self.find_training_job, lambda: self.create_training_job(spec))

    def stop_training_job(self, job_id: str) -> bool:
        """Ask a job to terminate; False when it was already gone."""
        from huaweicloudsdkmodelarts.v1 import StopTrainingJobRequest

        return self._gone_ok(lambda: self._invoke("stop_training_job", lambda c: c.stop_training_job(
            StopTrainingJobRequest(training_job_id=job_id, body={"action_type": "terminate"}))))

    def delete_training_job(self, job_id: str) -> bool:
        from huaweicloudsdkmodelarts.v1 import DeleteTrainingJobRequest

        return self._gone_ok(lambda: self._invoke("delete_training_job", lambda c: c.delete_training_job(
            DeleteTrainingJobRequest(training_job_id=job_id))))

    def training_job_log(self, job_id: str, task: str = "worker-0") -> str:
        from huaweicloudsdkmodelarts.v1 import ShowTrainingJobLogsPreviewRequest

        data = self._invoke("show_training_job_logs_preview", lambda c: c.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id=task)))
        return data.get("content") or ""

    # --- models (v1, call_api) -----------------------------------------------------------------

    def create_model(self, spec: ModelSpec) -> str:
        data = self._v1("create_model", "POST", "/v1/{project_id}/models", body=spec.body(), policy=NO_RETRY)
        return data["model_id"]

    def get_model(self, model_id: str) -> Model:
        return Model.model_validate(self._v1("show_model", "GET", f"/v1/{{project_id}}/models/{model_id}"))

    def find_model(self, name: str, version: str | None = None) -> Model | None:
        query = [("model_name", name), ("exact_match", "true")] + ([("model_version", version)] if version else [])
        data = self._v1("list_models", "GET", "/v1/{project_id}/models", query=query)
        for item in data.get("models") or []:
            if item.get("model_name") == name and (version is None or item.get("model_version") == version):
                return Model.model_validate(item)
        return None

    def ensure_model(self, spec: ModelSpec) -> tuple[Model, bool]:
        return self._ensure("model", spec.name, lambda n: self.find_model(n, spec.version),
                            lambda: self.get_model(self.create_model(spec)))

    def delete_model(self, model_id: str) -> bool:
        return self._gone_ok(lambda: self._v1("delete_model", "DELETE", f"/v1/{{project_id}}/models/{model_id}"))

    # --- real-time services (v1, call_api) -----------------------------------------------------

    def create_service(self, spec: ServiceSpec) -> str:
        data = self._v1("create_service", "POST", "/v1/{project_id}/services", body=spec.body(), policy=NO_RETRY)
        return data["service_id"]

    def get_service(self, service_id: str) -> Service:
        return Service.model_validate(self._v1("show_service", "GET", f"/v1/{{project_id}}/services/{service_id}"))

    def find_service(self, name: str) -> Service | None:
        data = self._v1("list_services", "GET", "/v1/{project_id}/services", query=[("service_name", name)])
        for item in data.get("services") or []:
            if item.get("service_name") == name:
                return Service.model_validate(item)
        return None

    def ensure_service(self, spec: ServiceSpec) -> tuple[Service, bool]:
        return self._ensure("service", spec.name, self.find_service,
                            lambda: self.get_service(self.create_service(spec)))

    def update_service(self, service_id: str, *, status: str | None = None, config: list[dict] | None = None,
                       schedule: list[dict] | None = None) -> None:
        """Start/stop (status) or change the configuration; ModelArts applies only status when both are sent."""
        body: dict = {}
        if status is not None:
            body["status"] = status
        if config is not None:
            body["config"] = config
        if schedule is not None:
            body["schedule"] = schedule
        self._v1("update_service", "PUT", f"/v1/{{project_id}}/services/{service_id}", body=body)

    def delete_service(self, service_id: str) -> bool:
        return self._gone_ok(lambda: self._v1("delete_service", "DELETE", f"/v1/{{project_id}}/services/{service_id}"))
