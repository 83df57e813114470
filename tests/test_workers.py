"""The workers of a training job as the TrainingJob status shows them (controller/workers.py), from the
cloud's answer as the real API gives it: status.tasks, task_statuses and running_records."""

from __future__ import annotations

import pytest

from modelarts_operator.cloud.resources import TrainingJob
from modelarts_operator.controller.workers import failed_worker, worker_states


def job(phase: str, tasks: int = 2, ended: dict[str, tuple[int, str]] | None = None, end_task: str = "") -> TrainingJob:
    return TrainingJob.from_api({
        "metadata": {"id": "j", "name": "n"},
        "status": {
            "phase": phase, "tasks": [f"worker-{i}" for i in range(tasks)],
            "task_statuses": [{"task": t, "exit_code": code, "message": m} for t, (code, m) in (ended or {}).items()],
            "running_records": [{"end_related_task": end_task, "end_reason": "exit with 3"}] if end_task else [],
        },
    })


def states(j: TrainingJob) -> list[tuple[str, str, int | None]]:
    return [(w.name, w.state, w.exit_code) for w in worker_states(j)]


@pytest.mark.parametrize("given, expected, failed", [
    (job("Pending"), [("worker-0", "Pending", None), ("worker-1", "Pending", None)], None),
    (job("Running"), [("worker-0", "Running", None), ("worker-1", "Running", None)], None),
    (job("Running", ended={"worker-1": (0, "")}), [("worker-0", "Running", None), ("worker-1", "Succeeded", 0)], None),
    (job("Completed", ended={"worker-0": (0, ""), "worker-1": (0, "")}),
     [("worker-0", "Succeeded", 0), ("worker-1", "Succeeded", 0)], None),
    # worker-1 failed; the cloud stopped worker-0 and names worker-1 as the task that ended the run
    (job("Failed", ended={"worker-0": (-15, "stopped: worker-1 failed"), "worker-1": (3, "exit code 3")},
         end_task="worker-1"),
     [("worker-0", "Stopped", -15), ("worker-1", "Failed", 3)], "worker-1"),
    # a cloud that does not name it: the only worker with a non-zero code
    (job("Failed", tasks=1, ended={"worker-0": (3, "boom")}), [("worker-0", "Failed", 3)], "worker-0"),
    (job("Terminated", ended={"worker-0": (-15, "terminated"), "worker-1": (-15, "terminated")}),
     [("worker-0", "Stopped", -15), ("worker-1", "Stopped", -15)], None),
    (job("Abnormal", tasks=1), [("worker-0", "Unknown", None)], None),
])
def test_worker_states(given, expected, failed):
    assert states(given) == expected
    assert failed_worker(given) == failed


def test_the_failure_message_names_the_worker_that_failed():
    failed = job("Failed", ended={"worker-0": (-15, "stopped: worker-1 failed"), "worker-1": (3, "exit code 3")},
                 end_task="worker-1")
    assert failed.failure_message == "worker-1 exited with 3: exit code 3"
    unnamed = job("Failed", ended={"worker-0": (-15, "stopped"), "worker-1": (3, "exit code 3")})
    assert unnamed.failure_message == "worker-0 exited with -15: stopped; worker-1 exited with 3: exit code 3"
