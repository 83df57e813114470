"""The Prometheus metrics (`modelarts_operator.metrics`) and the hooks that feed them: `with_retries` for the
cloud calls, `controller.telemetry` for reconciles, finalizers, Ready reasons and training jobs, and the
/metrics endpoint. Values are read from the operator's own registry, as deltas (other tests in the same
process count too). The runner calling these hooks: tests/controller/test_metrics_hooks.py; a scrape of
the operator process after the whole pipeline: tests/operator/test_e2e.py."""

from __future__ import annotations

import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelarts_operator import metrics
from modelarts_operator.api.conditions import Reason
from modelarts_operator.api.kinds import MNIST_DATASET, TRAINING_JOB
from modelarts_operator.cli import build_parser
from modelarts_operator.cloud import CloudError, ErrorKind
from modelarts_operator.cloud.retry import RetryPolicy, with_retries
from modelarts_operator.controller import telemetry
from modelarts_operator.controller.context import Resource
from modelarts_operator.controller.errors import (
    CleanupFailed,
    DependencyFailed,
    ReconcileError,
    RetryLater,
    WaitingForDependency,
)
from modelarts_operator.controller.settings import Settings
from modelarts_operator.local import free_port

P = metrics.PREFIX + "_"
POLICY = RetryPolicy(attempts=4, base_delay_s=0, max_delay_s=0, deadline_s=60)


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot(*series: tuple[str, dict]) -> list[float]:
    return [value(name, **labels) for name, labels in series]


def deltas(before: list[float], *series: tuple[str, dict]) -> list[float]:
    return [after - b for after, b in zip(snapshot(*series), before)]


def failing_then(*kinds: ErrorKind):
    """A call that fails with each kind in turn, then answers "done"."""
    left = list(kinds)

    def call():
        if left:
            raise CloudError("op", left.pop(0), "no")
        return "done"
    return call


# --- cloud calls and retries ---------------------------------------------------------------------------


def test_each_attempt_is_a_call_with_its_outcome_and_each_retry_is_counted():
    op = "metrics_test_flaky"
    series = [(P + "cloud_api_calls_total", dict(service="obs", operation=op, outcome=o))
              for o in ("throttled", "transient", "ok")]
    series += [(P + "cloud_api_retries_total", dict(service="obs", reason=r))
               for r in ("throttled", "transient")]
    series += [(P + "cloud_api_call_duration_seconds_count", dict(service="obs"))]
    before = snapshot(*series)
    call = failing_then(ErrorKind.THROTTLED, ErrorKind.TRANSIENT)
    assert with_retries(op, call, POLICY, sleep=lambda s: None, service="obs") == "done"
    assert deltas(before, *series) == [1, 1, 1, 1, 1, 3]


def test_a_failure_that_is_not_retried_is_one_call_and_no_retry():
    op = "metrics_test_denied"
    calls = (P + "cloud_api_calls_total", dict(service="modelarts", operation=op, outcome="auth"))
    retries = (P + "cloud_api_retries_total", dict(service="modelarts", reason="auth"))
    before = snapshot(calls, retries)
    with pytest.raises(CloudError):
        with_retries(op, failing_then(ErrorKind.AUTH), POLICY, sleep=lambda s: None, service="modelarts")
    assert deltas(before, calls, retries) == [1, 0]


def test_every_error_kind_and_a_bug_have_their_outcome():
    op = "metrics_test_kinds"
    for kind in ErrorKind:
        outcome = kind.name.lower()
        before = value(P + "cloud_api_calls_total", service="obs", operation=op, outcome=outcome)
        with pytest.raises(CloudError):
            with_retries(op, failing_then(*[kind] * 4), POLICY, sleep=lambda s: None, service="obs")
        attempts = 4 if kind in (ErrorKind.THROTTLED, ErrorKind.TRANSIENT) else 1
        after = value(P + "cloud_api_calls_total", service="obs", operation=op, outcome=outcome)
        assert after - before == attempts, kind

    def broken():
        raise KeyError("a bug, not a cloud answer")

    before = value(P + "cloud_api_calls_total", service="obs", operation=op, outcome="internal")
    with pytest.raises(KeyError):
        with_retries(op, broken, POLICY, service="obs")
    assert value(P + "cloud_api_calls_total", service="obs", operation=op, outcome="internal") - before == 1


def test_a_step_made_of_calls_counts_its_retries_but_is_no_call_itself():
    op = "metrics_test_ensure"
    retries = (P + "cloud_api_retries_total", dict(service="modelarts", reason="conflict"))
    throttled = (P + "cloud_api_retries_total", dict(service="modelarts", reason="throttled"))
    before = snapshot(retries, throttled)
    with_retries(op, failing_then(ErrorKind.THROTTLED), POLICY, sleep=lambda s: None, service="modelarts",
                 api_call=False)
    assert deltas(before, retries, throttled) == [0, 1]
    assert not [s for s in metrics.CLOUD_CALLS.collect()[0].samples if s.labels.get("operation") == op]


@pytest.mark.parametrize("operation, label", [
    ("show_service", "show_service"), ("putFile", "putFile"), ("predict", "predict"),
    ("ensure algorithm op-e2e-mnist-tensorflow-1a2b3c4d", "other"), ("list_models ns/name", "other"),
    ("", "other"), ("x" * 65, "other"),
])
def test_operation_labels_are_identifiers_never_names(operation, label):
    assert metrics.operation_label(operation) == label


def test_an_operation_with_a_name_in_it_is_counted_as_other():
    op = "ensure algorithm team-a-secret-project-1a2b3c4d"
    before = value(P + "cloud_api_calls_total", service="modelarts", operation="other", outcome="ok")
    with_retries(op, lambda: "done", POLICY, service="modelarts")
    after = value(P + "cloud_api_calls_total", service="modelarts", operation="other", outcome="ok")
    assert after - before == 1
    for family in text_string_to_metric_families(scrape_text()):
        for sample in family.samples:
            assert not any("secret-project" in v for v in sample.labels.values()), sample


# --- reconciles and finalizers -------------------------------------------------------------------------


@pytest.mark.parametrize("error, result", [
    (None, "ok"),
    (WaitingForDependency("algorithm x is Creating"), "waiting"),
    (DependencyFailed("algorithm x failed"), "failed"),
    (ReconcileError("bad spec", Reason.INVALID_SPEC), "failed"),
    (ReconcileError("no code", Reason.CODE_MISSING), "error"),
    (CloudError("op", ErrorKind.THROTTLED, "slow down"), "error"),
    (KeyError("a bug"), "error"),
])
def test_reconcile_results_are_a_small_fixed_set(error, result):
    assert telemetry.reconcile_result(error) == result


def test_a_reconcile_is_counted_with_its_result_and_timed():
    series = [(P + "reconciles_total", dict(kind="TrainingJob", result=r))
              for r in ("ok", "waiting", "error")]
    series += [(P + "reconcile_duration_seconds_count", dict(kind="TrainingJob"))]
    before = snapshot(*series)
    with telemetry.reconcile_run("TrainingJob"):
        pass
    with telemetry.reconcile_run("TrainingJob") as run:
        run.error = WaitingForDependency("algorithm x is Creating")
    with pytest.raises(RuntimeError), telemetry.reconcile_run("TrainingJob"):
        raise RuntimeError("the status write failed")
    assert deltas(before, *series) == [1, 1, 1, 3]


def resource(kind, uid: str, status: dict | None = None) -> Resource:
    metadata = {"namespace": "ns", "name": "obj", "uid": uid, "generation": 1}
    return Resource.from_body(kind, {"metadata": metadata, "status": status or {}}, None)


def ready(status: str, reason: str, **fields) -> dict:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": ""}], **fields}


def test_the_resources_gauge_follows_a_reason_change_and_the_deletion():
    kind, uid = "MnistDataset", str(uuid.uuid4())
    series = [(P + "resources", dict(kind=kind, ready="False", reason="Creating")),
              (P + "resources", dict(kind=kind, ready="True", reason="Uploaded")),
              (P + "finalizers_pending", dict(kind=kind)),
              (P + "finalizer_runs_total", dict(kind=kind, result="waiting")),
              (P + "finalizer_runs_total", dict(kind=kind, result="error")),
              (P + "finalizer_runs_total", dict(kind=kind, result="done"))]
    before = snapshot(*series)
    res = resource(MNIST_DATASET, uid)
    telemetry.status_written(res, {}, ready("False", "Creating"))
    assert deltas(before, *series) == [1, 0, 0, 0, 0, 0]
    telemetry.status_written(res, {}, ready("True", "Uploaded"))
    telemetry.status_written(res, {}, ready("True", "Uploaded"))  # a reconcile that changed nothing
    assert deltas(before, *series) == [0, 1, 0, 0, 0, 0]

    with pytest.raises(RetryLater), telemetry.finalizer_run(kind, uid):
        raise RetryLater("waiting for the cloud side to be deleted", 1)
    assert deltas(before, *series) == [0, 1, 1, 1, 0, 0]  # still there, its finalizer pending
    with pytest.raises(CleanupFailed), telemetry.finalizer_run(kind, uid):
        raise CleanupFailed("cleanup failed", 1)
    assert deltas(before, *series) == [0, 1, 1, 1, 1, 0]
    with telemetry.finalizer_run(kind, uid):
        pass
    assert deltas(before, *series) == [0, 0, 0, 1, 1, 1]
    telemetry.status_written(res, {}, ready("True", "Uploaded"))  # a reconcile that raced the finalizer
    assert deltas(before, *series) == [0, 0, 0, 1, 1, 1]


def test_a_status_without_ready_is_counted_as_unknown():
    uid = str(uuid.uuid4())
    series = (P + "resources", dict(kind="MnistDataset", ready="Unknown", reason="Unknown"))
    before = snapshot(series)
    telemetry.status_written(resource(MNIST_DATASET, uid), {}, {})
    assert deltas(before, series) == [1]
    metrics.TRACKER.gone(uid)
    assert deltas(before, series) == [0]


# --- training jobs -------------------------------------------------------------------------------------


def test_a_training_job_is_observed_once_when_it_ends():
    res = resource(TRAINING_JOB, str(uuid.uuid4()))
    series = [(P + "training_job_duration_seconds_count", dict(phase="Completed")),
              (P + "training_job_duration_seconds_sum", dict(phase="Completed")),
              (P + "training_job_accuracy_ratio_count", {}),
              (P + "training_job_accuracy_ratio_sum", {}),
              (P + "training_job_accuracy_ratio_bucket", dict(le="0.95"))]
    before = snapshot(*series)
    running = ready("False", "Running", phase="Running", durationSeconds=30)
    completed = ready("True", "Completed", phase="Completed", durationSeconds=42, metrics={"accuracy": 0.97})
    telemetry.status_written(res, {}, running)
    assert deltas(before, *series) == [0, 0, 0, 0, 0]
    telemetry.status_written(res, running, completed)
    assert deltas(before, *series) == pytest.approx([1, 42, 1, 0.97, 0])
    telemetry.status_written(res, completed, completed)  # every later reconcile, or after a restart
    assert deltas(before, *series) == pytest.approx([1, 42, 1, 0.97, 0])


def test_a_failed_job_is_observed_by_its_phase_and_has_no_accuracy():
    res = resource(TRAINING_JOB, str(uuid.uuid4()))
    series = [(P + "training_job_duration_seconds_count", dict(phase="Failed")),
              (P + "training_job_accuracy_ratio_count", {})]
    before = snapshot(*series)
    telemetry.status_written(res, ready("False", "Pending", phase="Pending"),
                             ready("False", "Failed", phase="Failed", durationSeconds=5))
    assert deltas(before, *series) == [1, 0]


def test_accuracy_read_after_the_phase_turned_is_still_observed_once():
    """The package's config.json may be readable only at the next reconcile."""
    res = resource(TRAINING_JOB, str(uuid.uuid4()))
    before = snapshot((P + "training_job_accuracy_ratio_count", {}))
    done = ready("True", "Completed", phase="Completed", durationSeconds=9)
    with_accuracy = dict(done, metrics={"accuracy": 0.99})
    telemetry.status_written(res, ready("False", "Running", phase="Running"), done)
    telemetry.status_written(res, done, with_accuracy)
    telemetry.status_written(res, with_accuracy, with_accuracy)
    assert deltas(before, (P + "training_job_accuracy_ratio_count", {})) == [1]


# --- /metrics and the settings -------------------------------------------------------------------------


def scrape_text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.REGISTRY).decode()


def test_metrics_are_served_over_http_in_the_text_format():
    port = free_port()
    metrics.serve(port, host="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    for name, type_ in (("reconciles", "counter"), ("reconcile_duration_seconds", "histogram"),
                        ("finalizer_runs", "counter"), ("finalizer_duration_seconds", "histogram"),
                        ("cloud_api_calls", "counter"), ("cloud_api_retries", "counter"),
                        ("cloud_api_call_duration_seconds", "histogram"), ("resources", "gauge"),
                        ("finalizers_pending", "gauge"), ("training_job_duration_seconds", "histogram"),
                        ("training_job_accuracy_ratio", "histogram")):
        assert families[P + name].type == type_, name
    assert "process_resident_memory_bytes" in families and "python_info" in families
    with pytest.raises(SystemExit, match="--metrics-port"):  # the port is taken: a clear message
        from modelarts_operator.controller.main import serve_metrics

        serve_metrics(port)


def test_the_port_comes_from_the_command_line_or_the_environment():
    assert Settings().metrics_port == 0  # off unless asked for
    assert Settings.from_env({"MODELARTS_OPERATOR_METRICS_PORT": "9090"}).metrics_port == 9090
    assert build_parser().parse_args(["run", "-A", "--metrics-port", "9191"]).metrics_port == 9191
    assert build_parser().parse_args(["run", "-A"]).metrics_port is None
