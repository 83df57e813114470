"""ModelArtsService, reconciled directly: created (import, deploy, run), stable, adopted after a lost answer,
deleted behind the back, roll-over to another TrainingJob, DependencyFailed, the quality gate (parked with
nothing deployed, a roll-over held back), injected faults, finalized.

The TrainingJobs write a model package without TensorFlow (config.json of model_type Custom and an
inference class that loads nothing), so a service deploys in about a second."""

from __future__ import annotations

import pytest
from controller.harness import (
    FAILING,
    PACKAGING,
    SERVICE_CODE,
    Case,
    Expect,
    Scenario,
    faults,
    job_spec,
    run_scenario,
    to_ready,
)

from modelarts_operator.api.kinds import SERVICE, TRAINING_JOB
from modelarts_operator.cloud.errors import none_if_gone
from modelarts_operator.cloud.resources import ModelSpec
from modelarts_operator.controller.context import Requeue
from modelarts_operator.controller.service import desired, model_name
from support import wait_for


@pytest.fixture(scope="module", autouse=True)
def training_jobs(stack) -> dict[str, dict]:
    """Two Completed jobs with servable packages, and one Failed job."""
    stack.code_algorithm("algo-packaging", {"train.py": PACKAGING, "service.py": SERVICE_CODE})
    stack.code_algorithm("algo-failing", {"train.py": FAILING})
    jobs = {name: stack.ready_object(TRAINING_JOB, name, job_spec(name, "algo-packaging"))
            for name in ("train-a", "train-b", "train-gone")}
    jobs["train-failed"] = stack.ready_object(TRAINING_JOB, "train-failed", job_spec("train-failed", "algo-failing"),
                                              reason="Failed")
    return jobs


def spec(job: str = "train-a", **extra):
    return lambda name: {"trainingJobRef": {"name": job}, "flavor": "modelarts.vm.cpu.2u", "instanceCount": 1,
                         **extra}


def source_of(case: Case, job: str) -> str:
    return case.stack.get(TRAINING_JOB, job)["status"]["outputPath"]


def lost_create_answers(case: Case) -> None:
    """The operator imported the model and created the service, then died before recording either id."""
    stack = case.stack
    case.create()
    res = stack.resource(SERVICE, case.name)
    source = source_of(case, "train-a")
    job = stack.get(TRAINING_JOB, "train-a")["status"]["jobId"]
    model_id = stack.api.create_model(ModelSpec(name=model_name(res, source), source_location=source,
                                                source_job_id=job, description=f"{res.ref} (managed by modelarts-operator)"))
    wait_for(lambda: stack.api.get_model(model_id).model_status == "published", 30, 0.05, "the model to be published")
    case.notes["model"] = model_id
    case.notes["service"] = stack.api.create_service(desired(res, model_id))


def deleted_behind_the_back(case: Case) -> None:
    case.notes["old_service"] = case.status["serviceId"]
    case.stack.api.delete_service(case.notes["old_service"])
    wait_for(lambda: case.stack.api.find_service(case.status["cloudName"]) is None, 30, 0.05, "the service to go")


def job_deleted_then_rescaled(case: Case) -> None:
    """The source TrainingJob is deleted (with its output folder), then the service is rescaled."""
    case.notes["model"], case.notes["service"] = case.status["modelId"], case.status["serviceId"]
    case.stack.finalize(TRAINING_JOB, "train-gone")
    case.stack.patch_spec(SERVICE, case.name, {"instanceCount": 2})


def rolled_over_to(job: str, **spec):
    def step(case: Case) -> None:
        case.notes["old_model"] = case.status["modelId"]
        case.notes["service"] = case.status["serviceId"]
        case.stack.patch_spec(SERVICE, case.name, {"trainingJobRef": {"name": job}, **spec})
    return step


# --- checks -------------------------------------------------------------------------------------------


def running(case: Case) -> None:
    status = case.status
    reasons = case.run.ready_reasons  # Importing may be over before the first look
    assert reasons[-2:] == ["Deploying", "Running"] and set(reasons) <= {"Importing", "Deploying", "Running"}, reasons
    assert all(step.outcome.requeue is Requeue.FAST for step in case.run.steps[:-1])
    assert status["modelSource"] == source_of(case, "train-a")
    assert status["modelStatus"] == "published" and status["phase"] == "running" and status["instanceCount"] == 1
    service = case.stack.api.get_service(status["serviceId"])
    assert service.status == "running" and service.config[0].model_id == status["modelId"]


def stays_stable(case: Case) -> None:
    """A running service reconciled again: no status write, no event, one ModelArts GET (the service),
    neither the TrainingJob nor the model read again, no OBS call."""
    assert not case.run.steps[0].written
    with case.stack.cloud_calls() as calls:
        step = case.stack.reconcile(SERVICE, case.name)
    assert not step.written and not step.events
    assert step.outcome.requeue is Requeue.STABLE
    assert calls == {"modelarts": 1, "obs": 0}, calls


def adopted(case: Case) -> None:
    assert (case.status["modelId"], case.status["serviceId"]) == (case.notes["model"], case.notes["service"])
    assert not case.status["pendingCreates"]


def redeployed(case: Case) -> None:
    assert case.status["serviceId"] != case.notes["old_service"]
    assert case.run.warnings("CloudResourceMissing")


def rolled_over(case: Case) -> None:
    status = case.status
    assert status["modelSource"] == source_of(case, "train-b")
    assert status["modelId"] != case.notes["old_model"] and status["serviceId"] == case.notes["service"]
    assert not status.get("previousModelId")
    assert status["modelOrigin"] == "TrainingJob train-b" and not status["pendingCreates"]
    assert none_if_gone(lambda: case.stack.api.get_model(case.notes["old_model"])) is None
    replaced = [m for _, reason, m in case.run.events if reason == "ModelReplaced"]
    assert replaced == [f"service runs model {status['modelId']}; deleted the previous model {case.notes['old_model']}"]
    # the old model went only once the service ran the new one
    [when] = [step for step in case.run.steps if any(reason == "ModelReplaced" for _, reason, _ in step.events)]
    assert when.status["phase"] == "running" and any(
        reason == "Updating" for step in case.run.steps[:case.run.steps.index(when)] for _, reason, _ in step.events)


def rescaled_without_its_job(case: Case) -> None:
    status = case.status
    assert case.stack.get(TRAINING_JOB, "train-gone") is None
    assert (status["modelId"], status["serviceId"]) == (case.notes["model"], case.notes["service"])
    assert status["instanceCount"] == 2 and status["modelOrigin"] == "TrainingJob train-gone"
    assert "WaitingForDependency" not in case.run.ready_reasons, case.run.ready_reasons


def keeps_serving(case: Case) -> None:
    """The new source is not Ready yet: the service stays Ready on its model and says why it waits."""
    status = case.status
    assert (status["modelId"], status["serviceId"]) == (case.notes["old_model"], case.notes["service"])
    assert status["modelOrigin"] == "TrainingJob train-a"
    assert "not rolled over yet" in case.run.last.ready["message"] and "train-later" in case.run.last.ready["message"]
    synced = case.run.last.after["status"]["conditions"]
    assert any(c["type"] == "Synced" and c["message"].startswith("waiting:") for c in synced)
    assert set(case.run.ready_reasons) == {"Running"}, case.run.ready_reasons


def gate_lowered(case: Case, origin: str) -> None:
    """Lowering the gate lets the model in: the service runs the model of the spec's source."""
    case.stack.patch_spec(SERVICE, case.name, {"minAccuracy": 0.4})
    run = case.stack.reconcile_to(SERVICE, case.name, "Running", Requeue.STABLE, timeout=60)
    status = run.last.status
    assert status["modelOrigin"] == origin and not status.get("previousModelId"), status
    assert case.counts() == {"models": 1, "services": 1}
    assert case.stack.api.get_service(status["serviceId"]).config[0].model_id == status["modelId"]


def parked_below_gate(message: str):
    def check(case: Case) -> None:
        """Nothing imported or deployed, nothing pending; looked at again now and then, without a write or an
        event while nothing changes (a job retrained under the same name would be seen)."""
        last = case.run.last
        assert last.ready["message"] == f"{message}; nothing deployed", last.ready
        assert not {"modelId", "serviceId", "modelOrigin"} & {k for k, v in last.status.items() if v}, last.status
        assert not last.status.get("pendingCreates")
        assert case.run.warnings("BelowQualityGate") == [last.ready["message"]]
        again = case.stack.reconcile(SERVICE, case.name)
        assert not again.written and not again.events and again.outcome.requeue is Requeue.STABLE
    return check


def parked_then_lowered(case: Case) -> None:
    parked_below_gate("model from TrainingJob train-a: accuracy 0.5 below minAccuracy 0.9")(case)
    gate_lowered(case, "TrainingJob train-a")


def held_back_by_gate(case: Case) -> None:
    """The new job is below the gate: the service keeps its model and service, says so with both figures, and
    does not import the new model; lowering the gate rolls it over."""
    status, last = case.status, case.run.last
    assert (status["modelId"], status["serviceId"]) == (case.notes["old_model"], case.notes["service"])
    assert status["modelOrigin"] == "TrainingJob train-a" and status["phase"] == "running"
    assert last.ready["message"] == ("model from TrainingJob train-b: accuracy 0.5 below minAccuracy 0.9; keeps "
                                     "serving the model from TrainingJob train-a")
    assert status["message"] == last.ready["message"]
    synced = [c for c in status["conditions"] if c["type"] == "Synced"]
    assert synced[0]["status"] == "True" and synced[0]["message"].startswith("not rolled over: model from")
    assert case.stack.api.get_service(status["serviceId"]).config[0].model_id == case.notes["old_model"]
    assert len(case.run.warnings("BelowQualityGate")) == 1
    again = case.stack.reconcile(SERVICE, case.name)
    assert not again.written and not again.events and again.outcome.requeue is Requeue.STABLE
    gate_lowered(case, "TrainingJob train-b")


def finalized_without_credentials(case: Case) -> None:
    """Its Secret never existed: nothing was recorded as pending, so deletion needs no cloud call."""
    assert not case.status.get("pendingCreates")
    waits, events = case.stack.finalize(SERVICE, case.name)
    assert waits == 0 and ("Normal", "Deleted", "deleted service (none) and 0 model(s)") in events


def dependency_failed(case: Case) -> None:
    message = case.run.last.ready["message"]
    assert "train-failed" in message and "Failed" in message
    step = case.stack.reconcile(SERVICE, case.name)  # stable while it stays so: no write, no event again
    assert not step.written and not step.events


def finalized(case: Case) -> None:
    status = case.status
    waits, events = case.stack.finalize(SERVICE, case.name)
    assert waits >= 1, "the service is deleted, then the finalizer waits until it is gone"
    assert ("Normal", "Deleted", f"deleted service {status['serviceId']} and 1 model(s)") in events
    assert case.counts() == {}


RUNNING = dict(reason="Running", ready="True", requeue=Requeue.STABLE, cloud={"models": 1, "services": 1},
               status=("modelId", "serviceId", "cloudName", "endpoint", "modelSource", "modelOrigin"))

SCENARIOS = [
    Scenario("created", spec(), expect=Expect(**RUNNING, events=frozenset({"ModelImport", "Deploying", "Running"}),
                                              no_events=frozenset({"Adopted"}), check=running)),
    Scenario("stable", spec(), given=(to_ready,), expect=Expect(**RUNNING, check=stays_stable)),
    Scenario("adopted-after-lost-answer", spec(), given=(lost_create_answers,), created_by_given=True,
             expect=Expect(**RUNNING, events=frozenset({"Adopted"}), check=adopted)),
    Scenario("deleted-behind-the-back", spec(), given=(to_ready, deleted_behind_the_back),
             expect=Expect(**RUNNING, events=frozenset({"CloudResourceMissing", "Deploying"}), check=redeployed)),
    Scenario("roll-over", spec(), given=(to_ready, rolled_over_to("train-b")),
             expect=Expect(**RUNNING, events=frozenset({"ModelImport", "Updating", "ModelReplaced"}),
                           check=rolled_over)),
    Scenario("job-deleted-then-rescaled", spec("train-gone"), given=(to_ready, job_deleted_then_rescaled),
             expect=Expect(**RUNNING, events=frozenset({"Updating"}), check=rescaled_without_its_job)),
    Scenario("new-source-not-ready", spec(), given=(to_ready, rolled_over_to("train-later")),
             expect=Expect(**{**RUNNING, "requeue": Requeue.FAST}, no_events=frozenset({"WaitingForDependency"}),
                           check=keeps_serving)),
    Scenario("no-credentials", spec(credentialsSecret="no-such-secret"),
             expect=Expect(reason="CredentialsMissing", ready="False", requeue=Requeue.FAST, cloud={},
                           check=finalized_without_credentials)),
    Scenario("dependency-failed", spec("train-failed"),
             expect=Expect(reason="DependencyFailed", ready="False", requeue=Requeue.STABLE, cloud={},
                           events=frozenset({"DependencyFailed"}), check=dependency_failed)),
    Scenario("waiting-for-dependency", spec("train-later"),
             expect=Expect(reason="WaitingForDependency", ready="False", requeue=Requeue.FAST, cloud={},
                           no_events=frozenset({"WaitingForDependency"}))),
    # The quality gate; the jobs' packages say accuracy 0.5 and f1 0.5 (PACKAGING).
    Scenario("below-quality-gate", spec(minAccuracy=0.9),
             expect=Expect(reason="BelowQualityGate", ready="False", requeue=Requeue.STABLE, cloud={},
                           events=frozenset({"BelowQualityGate"}), no_events=frozenset({"ModelImport"}),
                           check=parked_then_lowered)),
    Scenario("roll-over-below-quality-gate", spec(), given=(to_ready, rolled_over_to("train-b", minAccuracy=0.9)),
             expect=Expect(**{**RUNNING, "reason": "BelowQualityGate"}, events=frozenset({"BelowQualityGate"}),
                           no_events=frozenset({"ModelImport", "Updating", "ModelReplaced"}), check=held_back_by_gate)),
    Scenario("model-path-below-quality-gate",
             lambda name: {"modelPath": "obs://ctl-test/output/train-a/V0001/", "minF1": 0.75},
             expect=Expect(reason="BelowQualityGate", ready="False", requeue=Requeue.STABLE, cloud={},
                           check=parked_below_gate("model from modelPath obs://ctl-test/output/train-a/V0001/: "
                                                   "f1 0.5 below minF1 0.75"))),
    Scenario("model-path-without-figures", lambda name: {"modelPath": "obs://ctl-test/input/", "minAccuracy": 0.1},
             expect=Expect(reason="BelowQualityGate", ready="False", requeue=Requeue.STABLE, cloud={},
                           check=parked_below_gate("model from modelPath obs://ctl-test/input/: no accuracy figure in "
                                                   "its metrics (model/config.json) for minAccuracy 0.1"))),
    Scenario("faults-20-percent", spec(), given=(faults(0.1, 0.1),), timeout=60, expect=Expect(**RUNNING)),
    Scenario("finalized", spec(), given=(to_ready,), expect=Expect(**RUNNING, check=finalized)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_service(stack, scenario):
    run_scenario(stack, SERVICE, scenario, f"svc-{scenario.id}")


def test_lost_answers_are_deleted_without_a_reconcile(stack):
    """The model and the service were created, their answers lost, and the object deleted before the
    operator came back: the pending records written before each create lead the finalizer to both."""
    name = "svc-lost-then-deleted"
    stack.create(SERVICE, name, spec()(name))
    res = stack.resource(SERVICE, name)
    source = source_of(Case(stack, SERVICE, name, {}), "train-a")
    model_id = stack.api.create_model(ModelSpec(name=model_name(res, source), source_location=source,
                                                description=f"{res.ref} (managed by modelarts-operator)"))
    wait_for(lambda: stack.api.get_model(model_id).model_status == "published", 30, 0.05, "the model to be published")
    stack.api.create_service(desired(res, model_id))
    stack.ctx.kube.patch_status(SERVICE, stack.namespace, name, {"pendingCreates": [
        res.pending("model", model_name(res, source)), res.pending("service")]})
    assert stack.cloud_counts(SERVICE, name) == {"models": 1, "services": 1}

    waits, events = stack.finalize(SERVICE, name)
    assert stack.cloud_counts(SERVICE, name) == {}
    assert any(reason == "Deleted" and "1 model(s)" in message for _, reason, message in events), events


def test_nothing_recorded_nothing_pending_needs_no_credentials(stack):
    """An object that never created anything is deleted without reading its (missing) Secret."""
    name = "svc-never-created"
    stack.create(SERVICE, name, spec(credentialsSecret="no-such-secret")(name))
    waits, events = stack.finalize(SERVICE, name)
    assert waits == 0 and ("Normal", "Deleted", "deleted service (none) and 0 model(s)") in events
