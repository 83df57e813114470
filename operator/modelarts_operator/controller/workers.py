"""The workers of a training job (one per node) as the TrainingJob status shows them: pure functions of
the cloud's answer (`status.tasks`, `task_statuses`, and the task that ended the run)."""

from __future__ import annotations

from modelarts_operator.api.v1alpha1 import WorkerStatus
from modelarts_operator.cloud.resources import TrainingJob

RUNNING_PHASES = {"Running": "Running", "Terminating": "Running", "Creating": "Pending", "Pending": "Pending", "": "Pending"}


def failed_worker(job: TrainingJob) -> str | None:
    """The worker whose failure ended a Failed or Abnormal job: the one the cloud names, else the only
    worker that ended with a non-zero exit code."""
    if job.phase not in ("Failed", "Abnormal"):
        return None
    if job.end_related_task:
        return job.end_related_task
    failing = [t.task for t in job.task_statuses if t.exit_code not in (None, 0)]
    return failing[0] if len(failing) == 1 else None


def worker_states(job: TrainingJob) -> list[WorkerStatus]:
    """Each worker and its state, in the order the cloud lists them."""
    ended = {t.task: t for t in job.task_statuses}
    names = job.tasks or list(ended)
    failed = failed_worker(job)
    workers = []
    for name in names:
        end = ended.get(name)
        if end is None:
            state = RUNNING_PHASES.get(job.phase, "Unknown")
            workers.append(WorkerStatus(name=name, state=state))
            continue
        if end.exit_code == 0:
            state = "Succeeded"
        elif name == failed or (failed is None and job.phase != "Terminated"):
            state = "Failed"
        else:  # stopped by a terminate, or because another worker failed
            state = "Stopped"
        workers.append(WorkerStatus(name=name, state=state, exit_code=end.exit_code, message=end.message or None))
    return workers
