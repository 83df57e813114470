"""ModelArts through huaweicloudsdkmodelarts: one client per resource family over one shared transport.

    api = ModelArtsApi(credentials)
    api.training_jobs.get(job_id)      # by family
    api.get_training_job(job_id)       # the same, by the flat name callers have used all along

`transport` holds the SDK client, retries and error classification; `algorithms`, `training`, `models`
and `services` each hold one family's calls and the ModelArts error codes that family answers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from modelarts_operator.cloud.credentials import CredentialsProvider
from modelarts_operator.cloud.modelarts.algorithms import AlgorithmsApi
from modelarts_operator.cloud.modelarts.models import ModelsApi
from modelarts_operator.cloud.modelarts.services import ServicesApi
from modelarts_operator.cloud.modelarts.training import TrainingJobsApi
from modelarts_operator.cloud.modelarts.transport import Transport
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
from modelarts_operator.cloud.retry import DEFAULT_POLICY, RetryPolicy

__all__ = ["AlgorithmsApi", "ModelArtsApi", "ModelsApi", "ServicesApi", "TrainingJobsApi", "Transport"]


class ModelArtsApi:
    """The four families over one transport (one SDK client, one retry policy)."""

    def __init__(self, credentials: CredentialsProvider, policy: RetryPolicy = DEFAULT_POLICY):
        self.transport = Transport(credentials, policy)
        self.algorithms = AlgorithmsApi(self.transport)
        self.training_jobs = TrainingJobsApi(self.transport)
        self.models = ModelsApi(self.transport)
        self.services = ServicesApi(self.transport)

    def _credentials(self):
        return self.transport.credentials()

    def _invoke(self, operation: str, call: Callable, policy: RetryPolicy | None = None) -> dict:
        return self.transport.invoke(operation, call, policy)

    def count(self, kind: str) -> int:
        """How many of a kind exist in the project: "algorithms", "training_jobs", "models" or "services"."""
        families = {"algorithms": self.algorithms, "training_jobs": self.training_jobs, "models": self.models,
                    "services": self.services}
        if kind not in families:
            raise ValueError(f"unknown kind {kind!r}: one of {', '.join(families)}")
        return families[kind].count()

    # --- algorithms ----------------------------------------------------------------------------

    def create_algorithm(self, spec: AlgorithmSpec) -> Algorithm:
        return self.algorithms.create(spec)

    def get_algorithm(self, algorithm_id: str) -> Algorithm:
        return self.algorithms.get(algorithm_id)

    def find_algorithm(self, name: str) -> Algorithm | None:
        return self.algorithms.find(name)

    def ensure_algorithm(self, spec: AlgorithmSpec, before_create: Callable[[], None] | None = None) -> tuple[Algorithm, bool]:
        return self.algorithms.ensure(spec, before_create)

    def update_algorithm(self, algorithm_id: str, spec: AlgorithmSpec) -> Algorithm:
        return self.algorithms.update(algorithm_id, spec)

    def delete_algorithm(self, algorithm_id: str) -> bool:
        return self.algorithms.delete(algorithm_id)

    # --- training jobs -------------------------------------------------------------------------

    def create_training_job(self, spec: TrainingJobSpec) -> TrainingJob:
        return self.training_jobs.create(spec)

    def get_training_job(self, job_id: str) -> TrainingJob:
        return self.training_jobs.get(job_id)

    def find_training_job(self, name: str) -> TrainingJob | None:
        return self.training_jobs.find(name)

    def ensure_training_job(self, spec: TrainingJobSpec, before_create: Callable[[], None] | None = None) -> tuple[TrainingJob, bool]:
        return self.training_jobs.ensure(spec, before_create)

    def stop_training_job(self, job_id: str) -> bool:
        return self.training_jobs.stop(job_id)

    def delete_training_job(self, job_id: str) -> bool:
        return self.training_jobs.delete(job_id)

    def training_job_log(self, job_id: str, task: str = "worker-0") -> str:
        return self.training_jobs.log(job_id, task)

    # --- models --------------------------------------------------------------------------------

    def create_model(self, spec: ModelSpec) -> str:
        return self.models.create(spec)

    def get_model(self, model_id: str) -> Model:
        return self.models.get(model_id)

    def find_model(self, name: str, version: str | None = None) -> Model | None:
        return self.models.find(name, version)

    def ensure_model(self, spec: ModelSpec, before_create: Callable[[], None] | None = None) -> tuple[Model, bool]:
        return self.models.ensure(spec, before_create)

    def delete_model(self, model_id: str) -> bool:
        return self.models.delete(model_id)

    # --- real-time services --------------------------------------------------------------------

    def create_service(self, spec: ServiceSpec) -> str:
        return self.services.create(spec)

    def get_service(self, service_id: str) -> Service:
        return self.services.get(service_id)

    def find_service(self, name: str) -> Service | None:
        return self.services.find(name)

    def ensure_service(self, spec: ServiceSpec, before_create: Callable[[], None] | None = None) -> tuple[Service, bool]:
        return self.services.ensure(spec, before_create)

    def update_service(self, service_id: str, spec: ServiceSpec | None = None, changes: Collection[str] | None = None,
                       *, status: str | None = None, config: list[dict] | None = None,
                       schedule: list[dict] | None = None) -> None:
        """`update_service(id, spec[, changes])`: apply the spec's configuration and auto-stop schedule (only
        the parts named in `changes`, as `Service.matches` gives them). The keyword form sends the given
        parts as they are: `status` ("running"/"stopped"), `config`, `schedule`."""
        if spec is not None:
            if status is not None or config is not None or schedule is not None:
                raise TypeError("update_service takes a spec or the status/config/schedule keywords, not both")
            self.services.update(service_id, spec, changes)
            return
        body = {k: v for k, v in (("status", status), ("config", config), ("schedule", schedule)) if v is not None}
        self.services.put(service_id, body)

    def delete_service(self, service_id: str) -> bool:
        return self.services.delete(service_id)
