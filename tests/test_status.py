"""Pure status logic: conditions, cloud states to Ready, failures to conditions, drift, versions."""

from __future__ import annotations

import pytest

from modelarts_operator.cloud import CloudError, CredentialsError, ErrorKind
from modelarts_operator.cloud.resources import Service, ServiceModelConfig, ServiceSpec
from modelarts_operator.controller import status as st
from modelarts_operator.controller.context import ResourceProblem, WaitingForDependency
from modelarts_operator.controller.kube import SecretMissing
from modelarts_operator.controller.runner import error_outcome
from modelarts_operator.controller.service import drift


def test_last_transition_time_moves_only_when_status_changes():
    first = st.merge_conditions([], [st.not_ready("Creating", "a")], 1, now="T1")
    same = st.merge_conditions(first, [st.not_ready("Running", "b")], 2, now="T2")
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "Running"
    assert same[0]["observedGeneration"] == 2
    flipped = st.merge_conditions(same, [st.ready("Completed", "c"), st.synced()], 2, now="T3")
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
    cond = st.training_job_ready(phase, secondary, "worker-0 exited with 3")
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
    cond = st.service_ready(service_status, 40, "image pull failed")
    assert cond.reason == reason
    assert (cond.status == "True") == (service_status == "running")
    assert (reason in st.TERMINAL_REASONS) == terminal


def test_model_states():
    assert st.model_ready("published", "").status == "True"
    failed = st.model_ready("failed", "config.json: missing")
    assert (failed.reason, failed.message) == ("Failed", "model import failed: config.json: missing")
    assert st.model_ready("publishing", "").reason == "Importing"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("45m", 2700), ("1h30m", 5400), ("2d", 172800)])
def test_durations(text, seconds):
    assert st.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "10", "1x", "0s"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        st.parse_duration(text)


def test_auto_stop_schedule_and_versions():
    assert st.auto_stop_schedule(None) == []
    assert st.auto_stop_schedule("2h") == [{"type": "stop", "time_unit": "HOURS", "duration": 2}]
    assert st.auto_stop_schedule("30m")[0]["time_unit"] == "MINUTES"
    assert st.next_version([]) == "V0001"
    assert st.next_version(["V0001", "V0003", "notes", "V12"]) == "V0004"
    assert st.log_tail("\n".join(str(i) for i in range(100)), lines=3) == "97\n98\n99"


@pytest.mark.parametrize(
    ("exc", "ready", "synced"),
    [
        (ResourceProblem("InvalidSpec", "spec.target: bad"), "InvalidSpec", "InvalidSpec"),
        (WaitingForDependency("ModelArtsAlgorithm a not found"), "WaitingForDependency", "Synced"),
        (SecretMissing("Secret ns/x not found"), "CredentialsMissing", "CredentialsMissing"),
        (CredentialsError("invalid cloud credentials: sk: Field required"), "InvalidCredentials", "InvalidCredentials"),
        (CloudError("op", ErrorKind.AUTH, "bad signature"), "Unauthorized", "Unauthorized"),
        (CloudError("op", ErrorKind.QUOTA, "quota"), "QuotaExceeded", "QuotaExceeded"),
        (CloudError("op", ErrorKind.TRANSIENT, "503"), None, "CloudUnavailable"),
        (RuntimeError("boom"), None, "InternalError"),
    ],
)
def test_failures_become_conditions(exc, ready, synced):
    outcome = error_outcome(exc)
    by_type = {c.type: c for c in outcome.conditions}
    assert (by_type["Ready"].reason if "Ready" in by_type else None) == ready
    assert by_type["Synced"].reason == synced
    assert all(c.message for c in outcome.conditions)


def test_service_drift():
    want = ServiceSpec(name="s", model_id="m2", instance_count=2)
    running = Service(service_id="x", status="running",
                      config=[ServiceModelConfig(model_id="m2", instance_count=2)], schedule=[])
    assert drift(running, want, []) == []
    assert drift(running, want, st.auto_stop_schedule("1h")) == ["autoStop"]
    scaled = running.model_copy(update={"config": [ServiceModelConfig(model_id="m2", instance_count=1)]})
    assert drift(scaled, want, []) == ["instanceCount"]
    old_model = running.model_copy(update={"config": [ServiceModelConfig(model_id="m1", instance_count=2)]})
    assert drift(old_model, want, []) == ["model"]
    same_schedule = running.model_copy(update={"schedule": [{"type": "stop", "time_unit": "HOURS", "duration": 1,
                                                              "extra": "ignored"}]})
    assert drift(same_schedule, want, st.auto_stop_schedule("1h")) == []
