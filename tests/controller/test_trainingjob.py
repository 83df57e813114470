"""TrainingJob, reconciled directly: created and run to Completed, stable, adopted after a lost answer, deleted
behind the back (reported, not rerun), maxRuntime stop, Failed, waiting for and failing dependencies, injected
faults, finalized when completed and while running, training progress from the epoch lines of the log."""

from __future__ import annotations

import pytest
from controller.harness import (
    BUCKET,
    FAILING,
    INPUT,
    PACKAGING,
    QUICK,
    SERVICE_CODE,
    SLEEPING,
    Case,
    Expect,
    Scenario,
    algorithm_spec,
    faults,
    job_spec,
    run_scenario,
    to_ready,
)

from modelarts_operator.api.kinds import ALGORITHM, TRAINING_JOB
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.resources import TrainingJobSpec
from modelarts_operator.cloud.versions import CLAIM_PREFIX, reserve_version
from modelarts_operator.controller.context import Requeue

# Three epoch lines as the builtin boot file prints them, each followed by lines that are not one.
EPOCHS = """\
import time
print("data train=3 test=1", flush=True)
for epoch in range(1, 4):
    time.sleep(0.7)
    print(f"epoch={epoch}/3 loss={1 / epoch:.4f} accuracy={0.3 * epoch:.4f} seconds=0.7", flush=True)
    print("epoch=9/3 loss=1", flush=True)
    print("noise epoch=9/9 \\x00 loss=", flush=True)
"""


@pytest.fixture(scope="module", autouse=True)
def algorithms(stack) -> dict[str, dict]:
    """Ready algorithms for each kind of training code, and one whose Ready is InvalidSpec for good."""
    made = {name: stack.code_algorithm(name, files) for name, files in {
        "algo-quick": {"train.py": QUICK}, "algo-failing": {"train.py": FAILING},
        "algo-sleeping": {"train.py": SLEEPING}, "algo-packaging": {"train.py": PACKAGING, "service.py": SERVICE_CODE},
        "algo-epochs": {"train.py": EPOCHS},
    }.items()}
    made["algo-images"] = stack.ready_object(ALGORITHM, "algo-images", {**algorithm_spec("algo-images", "algo-quick"),
                                                                        "inputs": ["data_url", "images_url"]})
    # InvalidSpec for good: the CRD refuses what the operator refuses, so the runner is given the object
    # with a spec an older, laxer CRD could have stored.
    stack.create(ALGORITHM, "algo-invalid", algorithm_spec("algo-invalid", "algo-quick"))
    body = stack.get(ALGORITHM, "algo-invalid")
    body["spec"]["bootFile"] = "train.sh"
    assert stack.reconcile_body(ALGORITHM, body).reason == "InvalidSpec"
    return made


def claim(case: Case) -> str:
    return CLAIM_PREFIX + case.get()["metadata"]["uid"]


def spec(algorithm: str = "algo-quick", **extra):
    return lambda name: job_spec(name, algorithm, **extra)


def lost_create_answer(case: Case) -> None:
    """The operator created the cloud job, then died before recording its id."""
    stack = case.stack
    case.create()
    algorithm = stack.get(ALGORITHM, "algo-quick")["status"]["algorithmId"]
    output = ObsUrl.parse(case.spec["output"]["obsPath"]).join("V0001").folder()
    job = stack.api.create_training_job(TrainingJobSpec(
        name=stack.resource(TRAINING_JOB, case.name).cloud_name, algorithm_id=algorithm,
        inputs={"data_url": ObsUrl.parse(INPUT)}, outputs={"train_url": output},
        description=f"TrainingJob {stack.namespace}/{case.name} (managed by modelarts-operator)"))
    case.notes["precreated"] = job.id


def deleted_behind_the_back(case: Case) -> None:
    case.notes["old_id"] = case.status["jobId"]
    case.stack.api.delete_training_job(case.notes["old_id"])


# --- checks -------------------------------------------------------------------------------------------


def fast_until_finished(case: Case) -> None:
    """Requeue FAST while the job changes, TERMINAL once it finished."""
    assert all(step.outcome.requeue is Requeue.FAST for step in case.run.steps[:-1])
    assert case.run.ready_reasons[-1] == "Completed"
    assert set(case.run.ready_reasons[:-1]) <= {"Creating", "Pending", "Running"}, case.run.ready_reasons


def completed(case: Case) -> None:
    fast_until_finished(case)
    status = case.status
    assert status["version"] == "V0001" and status["phase"] == "Completed"
    assert status["outputPath"] == case.spec["output"]["obsPath"] + "V0001/"
    assert "quick training done" in status["logTail"]
    assert not {"progress", "epoch", "epochs", "epochMetrics"} & set(status)  # it prints no epoch line
    assert case.stack.object_names(status["outputPath"]) == [claim(case), "result.txt"]
    assert case.stack.api.get_training_job(status["jobId"]).name == status["cloudName"]
    assert not status["pendingCreates"]


def progressed(case: Case) -> None:
    """status.progress moved while the job ran, one epoch line after the other, and ends at 3/3 with the
    figures of the last line; no event per epoch."""
    seen: list[tuple[str, str]] = []
    for step in case.run.steps:
        now = (step.status.get("phase"), step.status.get("progress"))
        if now[1] and (not seen or seen[-1] != now):
            seen.append(now)
    assert {("Running", "1/3"), ("Running", "2/3")} <= set(seen), seen
    assert [progress for _, progress in seen] == sorted(progress for _, progress in seen), seen
    status = case.status
    assert (status["progress"], status["epoch"], status["epochs"]) == ("3/3", 3, 3)
    assert status["epochMetrics"] == {"loss": 0.3333, "accuracy": 0.9, "seconds": 0.7}
    assert case.run.event_reasons <= {"Created", "Pending", "Running", "Completed"}, case.run.events


def stays_stable(case: Case) -> None:
    """A Completed job reconciled again: no status write, no event, one ModelArts GET, no OBS call
    (its log and metrics were read once, when it finished)."""
    assert case.status["metrics"] == {"accuracy": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5}
    assert not case.run.steps[0].written
    with case.stack.cloud_calls() as calls:
        step = case.stack.reconcile(TRAINING_JOB, case.name)
    assert not step.written and not step.events
    assert step.outcome.requeue is Requeue.TERMINAL
    assert calls == {"modelarts": 1, "obs": 0}, calls


def adopted(case: Case) -> None:
    assert case.status["jobId"] == case.notes["precreated"]
    assert case.status["version"] == "V0001"


def not_rerun(case: Case) -> None:
    assert case.notes["old_id"] in case.run.last.ready["message"]
    assert case.run.warnings("CloudResourceMissing")
    step = case.stack.reconcile(TRAINING_JOB, case.name)  # said once: the next look neither writes nor posts
    assert not step.written and not step.events and step.outcome.requeue is Requeue.TERMINAL
    assert case.counts() == {}


def stopped_at_max_runtime(case: Case) -> None:
    status = case.status
    assert status["stopReason"] == "MaxRuntimeExceeded" and status["phase"] == "Terminated"
    assert status["durationSeconds"] >= 2
    warnings = case.run.warnings("MaxRuntimeExceeded")
    assert len(warnings) == 1 and warnings[0].startswith("stopped after"), warnings  # said once, by the stop
    assert case.stack.api.get_training_job(status["jobId"]).phase == "Terminated"
    assert "sleeping" in status["logTail"]


def failed(case: Case) -> None:
    status = case.status
    assert status["phase"] == "Failed" and "about to fail on purpose" in status["logTail"]
    assert "exited with 3" in case.run.last.ready["message"]
    assert case.run.warnings("Failed")


def heals_when_algorithm_appears(case: Case) -> None:
    assert "algo-later" in case.run.last.ready["message"]
    assert not [e for e in case.run.events if e[0] == "Warning"], "waiting is progress, not a warning"
    case.stack.code_algorithm("algo-later", {"train.py": QUICK})
    case.stack.reconcile_to(TRAINING_JOB, case.name, "Completed", Requeue.TERMINAL)
    assert case.counts() == {"jobs": 1}


def dependency_failed(case: Case) -> None:
    message = case.run.last.ready["message"]
    assert "algo-invalid" in message and "InvalidSpec" in message
    assert case.run.last.outcome.requeue is Requeue.STABLE  # may heal when the algorithm is fixed: look now and then


def refused_before_a_run(*words: str):
    def check(case: Case) -> None:
        message = case.run.last.ready["message"]
        assert all(word in message for word in words), message
        assert case.counts() == {} and not case.status.get("version")
    return check


def finalized(case: Case) -> None:
    status = case.status
    waits, events = case.stack.finalize(TRAINING_JOB, case.name)
    assert waits >= 1, "a job is deleted, then the finalizer waits until it is gone"
    summary = next(message for _, reason, message in events if reason == "Deleted")
    assert summary == f"deleted training job {status['jobId']} and 2 output objects"  # result.txt and the claim
    assert case.counts() == {}
    assert case.stack.object_names(case.spec["output"]["obsPath"]) == []


def finalized_while_running(case: Case) -> None:
    status = case.status
    assert case.stack.api.get_training_job(status["jobId"]).phase == "Running"
    waits, events = case.stack.finalize(TRAINING_JOB, case.name)
    assert waits >= 2, "stop, wait for the end, delete, wait until gone"
    assert ("Normal", "Deleted", f"deleted training job {status['jobId']} and 1 output objects") in events  # the claim
    assert case.counts() == {}


COMPLETED = dict(reason="Completed", ready="True", requeue=Requeue.TERMINAL, cloud={"jobs": 1},
                 status=("jobId", "cloudName", "version", "outputPath", "logTail", "startTime"))

SCENARIOS = [
    Scenario("created", spec(), expect=Expect(**COMPLETED, events=frozenset({"Created", "Completed"}),
                                              no_events=frozenset({"Adopted"}), check=completed)),
    Scenario("stable", spec("algo-packaging"), given=(to_ready,), expect=Expect(**COMPLETED, check=stays_stable)),
    Scenario("adopted-after-lost-answer", spec(), given=(lost_create_answer,), created_by_given=True,
             expect=Expect(**COMPLETED, events=frozenset({"Adopted"}), no_events=frozenset({"Created"}),
                           check=adopted)),
    Scenario("deleted-behind-the-back", spec(), given=(to_ready, deleted_behind_the_back),
             expect=Expect(reason="CloudResourceMissing", ready="False", requeue=Requeue.TERMINAL, cloud={},
                           events=frozenset({"CloudResourceMissing"}), no_events=frozenset({"Created"}),
                           check=not_rerun)),
    Scenario("max-runtime", spec("algo-sleeping", maxRuntime="1s"),
             expect=Expect(reason="MaxRuntimeExceeded", ready="False", requeue=Requeue.TERMINAL, cloud={"jobs": 1},
                           events=frozenset({"Created", "MaxRuntimeExceeded"}), status=("stopReason",),
                           check=stopped_at_max_runtime)),
    Scenario("failed", spec("algo-failing"),
             expect=Expect(reason="Failed", ready="False", requeue=Requeue.TERMINAL, cloud={"jobs": 1},
                           events=frozenset({"Failed"}), check=failed)),
    Scenario("waiting-for-dependency", spec("algo-later"),
             expect=Expect(reason="WaitingForDependency", ready="False", requeue=Requeue.FAST, cloud={},
                           check=heals_when_algorithm_appears)),
    Scenario("dependency-failed", spec("algo-invalid"),
             expect=Expect(reason="DependencyFailed", ready="False", requeue=Requeue.STABLE, cloud={},
                           events=frozenset({"DependencyFailed"}), check=dependency_failed)),
    Scenario("input-not-a-channel", spec(inputs=[{"name": "images_url", "obsPath": INPUT}]),
             expect=Expect(reason="InvalidSpec", ready="False", requeue=Requeue.TERMINAL, cloud={},
                           check=refused_before_a_run("spec.inputs: images_url is not an input channel", "data_url"))),
    Scenario("hyperparameter-shadows-a-channel", spec("algo-images", hyperparameters={"images": "x"}),
             expect=Expect(reason="InvalidSpec", ready="False", requeue=Requeue.TERMINAL, cloud={},
                           check=refused_before_a_run("spec.hyperparameters: images"))),
    Scenario("progress", spec("algo-epochs"), expect=Expect(**COMPLETED, check=progressed)),
    Scenario("faults-20-percent", spec(), given=(faults(0.1, 0.1),), timeout=60,
             expect=Expect(**COMPLETED, check=completed)),
    Scenario("finalized", spec(), given=(to_ready,), expect=Expect(**COMPLETED, check=finalized)),
    Scenario("finalized-while-running", spec("algo-sleeping"),
             expect=Expect(reason="Running", ready="False", requeue=Requeue.FAST, cloud={"jobs": 1},
                           check=finalized_while_running)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_training_job(stack, scenario):
    run_scenario(stack, TRAINING_JOB, scenario, f"tj-{scenario.id}")


def test_jobs_sharing_an_output_folder_own_their_versions(stack):
    """Two jobs with one output folder, created together: distinct versions, and deleting one leaves
    the other's model and its Ready."""
    shared = f"obs://{BUCKET}/output/shared/"
    names = ("tj-shared-a", "tj-shared-b")
    for name in names:
        stack.create(TRAINING_JOB, name, job_spec(name, "algo-quick", output={"name": "train_url", "obsPath": shared}))
    for name in names:
        stack.reconcile_to(TRAINING_JOB, name, "Completed", Requeue.TERMINAL)
    a, b = (stack.get(TRAINING_JOB, name)["status"] for name in names)
    assert {a["version"], b["version"]} == {"V0001", "V0002"}
    stack.finalize(TRAINING_JOB, "tj-shared-a")
    assert stack.object_names(a["outputPath"]) == []
    assert "result.txt" in stack.object_names(b["outputPath"])
    assert stack.reconcile(TRAINING_JOB, "tj-shared-b").ready["status"] == "True"


def test_lost_answer_then_deleted_leaves_nothing(stack):
    """The version was reserved and the job created, both answers lost, and the object deleted before the
    operator came back: the pending record leads the finalizer to the job and to this job's version."""
    name = "tj-lost-then-deleted"
    stack.create(TRAINING_JOB, name, job_spec(name, "algo-sleeping"))
    res = stack.resource(TRAINING_JOB, name)
    output = ObsUrl.parse(res.spec.output.obs_path)
    version = reserve_version(stack.obs, output, res.uid)
    algorithm = stack.get(ALGORITHM, "algo-sleeping")["status"]["algorithmId"]
    stack.api.create_training_job(TrainingJobSpec(
        name=res.cloud_name, algorithm_id=algorithm, inputs={"data_url": ObsUrl.parse(INPUT).api_path},
        outputs={"train_url": output.join(version).folder().api_path}, description=f"{res.ref} (managed by modelarts-operator)"))
    stack.ctx.kube.patch_status(TRAINING_JOB, stack.namespace, name, {"pendingCreates": [res.pending("trainingjob")]})

    waits, events = stack.finalize(TRAINING_JOB, name)
    assert stack.cloud_counts(TRAINING_JOB, name) == {}
    assert stack.object_names(str(output)) == []
    assert any(reason == "Deleted" and "1 output objects" in message for _, reason, message in events), events
