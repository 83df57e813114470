"""The runner feeds the metrics: reconciles and finalizers counted by kind and result, the Ready-reason gauge
following an object from creation to deletion, a training job observed once when it ends, the cloud calls
by service and operation, and no label naming a namespace or an object. Read from the operator's own
registry as deltas (the other modules of this process count too)."""

from __future__ import annotations

from controller.harness import FAILING, PACKAGING, SERVICE_CODE, algorithm_spec, job_spec

from modelarts_operator import metrics
from modelarts_operator.api.kinds import ALGORITHM, TRAINING_JOB

P = metrics.PREFIX + "_"


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """A sample's change since this was made."""

    def __init__(self, name: str, **labels: str):
        self.name, self.labels = P + name, labels
        self.start = value(self.name, **labels)

    def __call__(self) -> float:
        return value(self.name, **self.labels) - self.start


def label_values() -> set[str]:
    samples = [sample for family in metrics.REGISTRY.collect() for sample in family.samples]
    return {v for sample in samples for v in sample.labels.values()}


def test_an_object_from_creation_to_deletion(stack):
    name = "metrics-algo"
    ok = Delta("reconciles_total", kind="ModelArtsAlgorithm", result="ok")
    created = Delta("resources", kind="ModelArtsAlgorithm", ready="True", reason="Created")
    calls = [Delta("cloud_api_calls_total", service="modelarts", operation="create_algorithm", outcome="ok"),
             Delta("cloud_api_calls_total", service="obs", operation="putFile", outcome="ok")]
    done = Delta("finalizer_runs_total", kind="ModelArtsAlgorithm", result="done")

    stack.code_algorithm(name, {"train.py": PACKAGING, "service.py": SERVICE_CODE})
    assert ok() >= 1 and created() == 1
    assert [call() >= 1 for call in calls] == [True, True]
    stack.reconcile(ALGORITHM, name)  # stable: still one object
    assert created() == 1

    stack.finalize(ALGORITHM, name)
    assert created() == 0 and done() == 1
    assert value(P + "finalizers_pending", kind="ModelArtsAlgorithm") == 0
    private = {stack.namespace, name}
    assert not [v for v in label_values() if any(word in v for word in private)]


def test_a_job_waiting_for_its_algorithm_then_ending_is_counted_once(stack):
    waiting = Delta("reconciles_total", kind="TrainingJob", result="waiting")
    ended = Delta("training_job_duration_seconds_count", phase="Completed")
    accuracy = Delta("training_job_accuracy_ratio_sum")

    stack.create(TRAINING_JOB, "metrics-job", job_spec("metrics-job", "metrics-later"))
    stack.reconcile_to(TRAINING_JOB, "metrics-job", "WaitingForDependency")
    assert waiting() >= 1

    stack.config_map("metrics-later", {"train.py": PACKAGING, "service.py": SERVICE_CODE})
    stack.ready_object(ALGORITHM, "metrics-later", algorithm_spec("metrics-later", "metrics-later"))
    stack.reconcile_to(TRAINING_JOB, "metrics-job", "Completed", timeout=60)
    for _ in range(3):  # later reconciles start from an ended job
        stack.reconcile(TRAINING_JOB, "metrics-job")
    assert ended() == 1
    assert abs(accuracy() - 0.5) < 1e-9  # PACKAGING's config.json says 0.5


def test_a_failed_job_is_observed_by_its_final_phase(stack):
    failed = Delta("training_job_duration_seconds_count", phase="Failed")
    stack.code_algorithm("metrics-failing", {"train.py": FAILING})
    stack.create(TRAINING_JOB, "metrics-fails", job_spec("metrics-fails", "metrics-failing"))
    stack.reconcile_to(TRAINING_JOB, "metrics-fails", "Failed", timeout=60)
    stack.reconcile(TRAINING_JOB, "metrics-fails")
    assert failed() == 1
    assert value(P + "resources", kind="TrainingJob", ready="False", reason="Failed") >= 1
