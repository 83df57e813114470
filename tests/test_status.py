"""Pure status logic: conditions, cloud states to Ready, failures to conditions and requeues, drift, versions."""

from __future__ import annotations

import pytest

from modelarts_operator.api import conditions as st
from modelarts_operator.api.conditions import Reason
from modelarts_operator.api.durations import parse_duration
from modelarts_operator.api.v1alpha1 import JobMetrics, ModelArtsServiceSpec
from modelarts_operator.cloud import CloudError, CredentialsError, ErrorKind
from modelarts_operator.controller.context import Requeue, status_patch
from modelarts_operator.controller.errors import (
    DependencyFailed,
    ResourceProblem,
    SecretMissing,
    WaitingForDependency,
)
from modelarts_operator.controller.runner import error_outcome
from modelarts_operator.controller.service import gate_condition, model_condition, service_condition
from modelarts_operator.controller.trainingjob import job_ready, log_tail


def test_last_transition_time_moves_only_when_status_changes():
    first = st.merge_conditions([], [st.not_ready(Reason.CREATING, "a")], 1, now="T1")
    same = st.merge_conditions(first, [st.not_ready(Reason.RUNNING, "b")], 2, now="T2")
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "Running"
    assert same[0]["observedGeneration"] == 2
    flipped = st.merge_conditions(same, [st.ready(Reason.COMPLETED, "c"), st.synced()], 2, now="T3")
    assert [c["type"] for c in flipped] == ["Ready", "Synced"]
    assert flipped[0]["lastTransitionTime"] == "T3" and flipped[0]["status"] == "True"


@pytest.mark.parametrize(
    ("phase", "secondary", "status", "reason"),
    [
        ("Completed", "Completed", "True", "Completed"),
        ("Failed", "Failed", "False", "Failed"),
        ("Abnormal", "CreateFailed", "False", "Failed"),
        ("Terminated", "Terminated", "False", "Terminated"),
        ("Running", "Running", "False", "Running"),
        ("Pending", "Queuing", "False", "Pending"),
        ("", "", "False", "Creating"),
    ],
)
def test_training_job_phases(phase, secondary, status, reason):
    cond = job_ready(phase, secondary, "worker-0 exited with 3")
    assert (cond.status, cond.reason) == (status, reason)
    if reason == "Failed":
        assert "exited with 3" in cond.message
        assert reason in st.TERMINAL_REASONS  # a failed job is never Ready, and Argo shows Degraded
    if phase == "Pending":
        assert "Queuing" in cond.message


@pytest.mark.parametrize(
    ("service_status", "reason", "terminal"),
    [("running", "Running", False), ("deploying", "Deploying", False), ("failed", "Failed", True),
     ("stopped", "Stopped", True), ("concerning", "Concerning", False)],
)
def test_service_states(service_status, reason, terminal):
    cond = service_condition(service_status, 40, "image pull failed")
    assert cond.reason == reason
    assert (cond.status == "True") == (service_status == "running")
    assert (reason in st.TERMINAL_REASONS) == terminal


def test_model_states():
    assert model_condition("published", "") is None  # the service takes over
    failed = model_condition("failed", "config.json: missing")
    assert (failed.reason, failed.message) == ("Failed", "model import failed: config.json: missing")
    assert model_condition("publishing", "").reason == "Importing"


def gate(**fields) -> ModelArtsServiceSpec:
    return ModelArtsServiceSpec.model_validate({"trainingJobRef": {"name": "mnist-train-v2"}, **fields})


@pytest.mark.parametrize(("spec", "figures", "message"), [
    (gate(), None, None),  # no gate: no figures needed
    (gate(minAccuracy=0.95), JobMetrics(accuracy=0.95), None),  # at the gate passes
    (gate(minAccuracy=0.95, minF1=0.9), JobMetrics(accuracy=0.99, f1=0.91), None),
    (gate(minAccuracy=0), JobMetrics(accuracy=0.0), None),
    (gate(minAccuracy=0.95), JobMetrics(accuracy=0.8123, f1=0.99),
     "model from TrainingJob mnist-train-v2: accuracy 0.8123 below minAccuracy 0.95"),
    (gate(minF1=0.9), JobMetrics(accuracy=0.99, f1=0.5), "model from TrainingJob mnist-train-v2: f1 0.5 below minF1 0.9"),
    (gate(minAccuracy=0.95, minF1=0.9), JobMetrics(accuracy=0.8, f1=0.7),
     "model from TrainingJob mnist-train-v2: accuracy 0.8 below minAccuracy 0.95, f1 0.7 below minF1 0.9"),
    (gate(minAccuracy=1), JobMetrics(accuracy=0.9999), "accuracy 0.9999 below minAccuracy 1.0"),
    (gate(minAccuracy=0.5), None,
     "model from TrainingJob mnist-train-v2: no accuracy figure in its metrics (model/config.json) for minAccuracy 0.5"),
    (gate(minF1=0.5), JobMetrics(accuracy=0.99), "no f1 figure in its metrics (model/config.json) for minF1 0.5"),
])
def test_quality_gate(spec, figures, message):
    """None when the model passes; else BelowQualityGate with the figure and the gate: Ready=False with nothing
    deployed (terminal: Argo CD Degraded), Ready=True naming the model it keeps serving."""
    parked = gate_condition(spec, figures, "TrainingJob mnist-train-v2", serving=None)
    held = gate_condition(spec, figures, "TrainingJob mnist-train-v2", serving="TrainingJob mnist-train")
    if message is None:
        assert parked is None and held is None
        return
    assert (parked.status, parked.reason, held.status, held.reason) == (
        "False", "BelowQualityGate", "True", "BelowQualityGate")
    assert message in parked.message and parked.message.endswith("; nothing deployed")
    assert message in held.message and held.message.endswith("; keeps serving the model from TrainingJob mnist-train")
    assert Reason.BELOW_QUALITY_GATE.terminal


def test_the_gate_is_a_fraction():
    for bad in (-0.1, 1.5, "0.9", True, float("nan")):
        with pytest.raises(ValueError):
            gate(minAccuracy=bad)
        with pytest.raises(ValueError):
            gate(minF1=bad)
    assert gate(minAccuracy=1, minF1=0).min_accuracy == 1.0


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("45m", 2700), ("1h30m", 5400), ("2d", 172800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "10", "1x", "0s"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_log_tail():
    assert log_tail("\n".join(str(i) for i in range(100)), lines=3) == "97\n98\n99"


@pytest.mark.parametrize(
    ("exc", "ready", "synced", "requeue"),
    [
        (ResourceProblem("spec.target: bad", Reason.INVALID_SPEC), "InvalidSpec", "InvalidSpec", Requeue.TERMINAL),
        (ResourceProblem("no boot file", Reason.CODE_MISSING), "CodeMissing", "CodeMissing", Requeue.FAST),
        (WaitingForDependency("ModelArtsAlgorithm a not found"), "WaitingForDependency", "Synced", Requeue.FAST),
        (DependencyFailed("TrainingJob t will not become Ready"), "DependencyFailed", "Synced", Requeue.STABLE),
        (SecretMissing("Secret ns/x not found"), "CredentialsMissing", "CredentialsMissing", Requeue.FAST),
        (CredentialsError("invalid cloud credentials: sk: Field required"), "InvalidCredentials", "InvalidCredentials",
         Requeue.FAST),
        (CloudError("op", ErrorKind.AUTH, "bad signature"), "Unauthorized", "Unauthorized", Requeue.FAST),
        (CloudError("op", ErrorKind.QUOTA, "quota"), "QuotaExceeded", "QuotaExceeded", Requeue.FAST),
        (CloudError("op", ErrorKind.TRANSIENT, "503"), None, "CloudUnavailable", Requeue.FAST),
        (RuntimeError("boom"), None, "InternalError", Requeue.FAST),
    ],
)
def test_failures_become_conditions(exc, ready, synced, requeue):
    outcome = error_outcome(exc)
    by_type = {c.type: c for c in outcome.conditions}
    assert (by_type["Ready"].reason if "Ready" in by_type else None) == ready
    assert by_type["Synced"].reason == synced
    assert all(c.message for c in outcome.conditions)
    assert outcome.requeue is requeue


def test_a_passing_fault_keeps_ready_unless_there_is_none_yet():
    unreachable = CloudError("listAlgorithms", ErrorKind.TRANSIENT, "connection refused")
    assert [c.type for c in error_outcome(unreachable).conditions] == ["Synced"]
    first = error_outcome(unreachable, ready_known=False).conditions
    assert [(c.type, c.status, c.reason.value) for c in first] == [
        ("Ready", "False", "CloudUnavailable"), ("Synced", "False", "CloudUnavailable")]


def test_status_patch_writes_only_what_changed():
    stored = {"phase": "Running", "jobId": "j1", "logTail": "a"}
    assert status_patch(stored, {"phase": "Running", "jobId": "j1", "logTail": "a", "metrics": None}) == {}
    assert status_patch(stored, {"phase": "Completed", "jobId": "j1", "logTail": None}) == {
        "phase": "Completed", "logTail": None}  # None deletes a stored field


def test_every_reason_has_a_meaning_and_one_severity():
    for reason in Reason:
        assert reason.meaning and isinstance(reason.severity, st.Severity)
    assert st.TERMINAL_REASONS == {"Failed", "Terminated", "MaxRuntimeExceeded", "InvalidSpec",
                                   "CloudResourceMissing", "Stopped", "DependencyFailed", "BelowQualityGate",
                                   "AdoptionFailed"}
