"""Training jobs (v2, the SDK's own methods): create, watch, stop, read the log, delete."""

from __future__ import annotations

from collections.abc import Callable

from modelarts_operator.cloud.errors import ErrorKind, register_codes
from modelarts_operator.cloud.modelarts.transport import PAGE, Transport
from modelarts_operator.cloud.resources import TrainingJob, TrainingJobSpec
from modelarts_operator.cloud.retry import NO_RETRY

CODES = {
    "ModelArts.2775": ErrorKind.NOT_FOUND,  # training job not found (HTTP 400)
    "ModelArts.2751": ErrorKind.CONFLICT,  # duplicate training job name
    "ModelArts.2815": ErrorKind.QUOTA,
}
register_codes(CODES)


class TrainingJobsApi:
    def __init__(self, transport: Transport):
        self._t = transport

    def create(self, spec: TrainingJobSpec) -> TrainingJob:
        """One create, never retried: use `ensure`, which finds a create whose answer was lost."""
        from huaweicloudsdkmodelarts.v1 import CreateTrainingJobRequest

        return TrainingJob.from_api(self._t.invoke("create_training_job", lambda c: c.create_training_job(
            CreateTrainingJobRequest(body=spec.body())), NO_RETRY))

    def get(self, job_id: str) -> TrainingJob:
        from huaweicloudsdkmodelarts.v1 import ShowTrainingJobDetailsRequest

        return TrainingJob.from_api(self._t.invoke("show_training_job_details", lambda c: c.show_training_job_details(
            ShowTrainingJobDetailsRequest(training_job_id=job_id))))

    def find(self, name: str) -> TrainingJob | None:
        from huaweicloudsdkmodelarts.v1 import ListTrainingJobsRequest

        return self._t.find_by_name(name, TrainingJob.from_api, lambda offset: self._t.invoke(
            "list_training_jobs", lambda c: c.list_training_jobs(ListTrainingJobsRequest(body={
                "offset": offset, "limit": PAGE, "filters": [{"key": "name", "operator": "like", "value": [name]}]}))))

    def ensure(self, spec: TrainingJobSpec, before_create: Callable[[], None] | None = None
               ) -> tuple[TrainingJob, bool]:
        return self._t.ensure("training job", spec.name, self.find, lambda: self.create(spec), before_create)

    def stop(self, job_id: str) -> bool:
        """Ask a job to terminate; False when it was already gone."""
        from huaweicloudsdkmodelarts.v1 import StopTrainingJobRequest

        return self._t.gone_ok(lambda: self._t.invoke("stop_training_job", lambda c: c.stop_training_job(
            StopTrainingJobRequest(training_job_id=job_id, body={"action_type": "terminate"}))))

    def delete(self, job_id: str) -> bool:
        from huaweicloudsdkmodelarts.v1 import DeleteTrainingJobRequest

        return self._t.gone_ok(lambda: self._t.invoke("delete_training_job", lambda c: c.delete_training_job(
            DeleteTrainingJobRequest(training_job_id=job_id))))

    def log(self, job_id: str, task: str = "worker-0") -> str:
        """The log preview of one task (the service's tail of it)."""
        from huaweicloudsdkmodelarts.v1 import ShowTrainingJobLogsPreviewRequest

        data = self._t.invoke("show_training_job_logs_preview", lambda c: c.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id=task)))
        return data.get("content") or ""

    def count(self) -> int:
        """How many training jobs the project holds."""
        from huaweicloudsdkmodelarts.v1 import ListTrainingJobsRequest

        return self._t.invoke("list_training_jobs", lambda c: c.list_training_jobs(
            ListTrainingJobsRequest(body={"limit": 1}))).get("total") or 0
