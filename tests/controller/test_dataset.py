"""MnistDataset, reconciled directly: created (copied from the local cloud's public MNIST bucket), stable,
objects deleted behind the back, source unavailable, finalized.

No fault scenario: the local cloud injects faults into ModelArts answers only, and a dataset calls OBS alone."""

from __future__ import annotations

import pytest
from controller.harness import BUCKET, Case, Expect, Scenario, run_scenario, to_ready

from modelarts_operator import mnist
from modelarts_operator.api.kinds import MNIST_DATASET
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.controller.context import Requeue
from modelarts_operator.local.cloud import LocalCloud

GZ_FILES = sorted(f"{name}.gz" for name in mnist.MNIST_FILES)


def spec(source: str = f"obs:/{LocalCloud.public_dataset_path}"):
    return lambda name: {"source": {"type": "Obs", "obsPath": source}, "target": f"obs://{BUCKET}/{name}/",
                         "layout": "Gz"}


def deleted_behind_the_back(case: Case) -> None:
    case.stack.obs.delete_object(ObsUrl.parse(case.spec["target"]).join(GZ_FILES[0]))


# --- checks -------------------------------------------------------------------------------------------


def uploaded(case: Case) -> None:
    status = case.status
    assert status["obsUrl"] == case.spec["target"] and status["fileCount"] == 4
    assert (status["trainSamples"], status["testSamples"]) == (60000, 10000)
    assert sorted(f["name"] for f in status["files"]) == GZ_FILES
    assert case.stack.object_names(case.spec["target"]) == GZ_FILES
    assert status["bytesUploaded"] == sum(f["size"] for f in status["files"])


def stays_stable(case: Case) -> None:
    """The reconcile after the upload writes only bytesUploaded: 0 ("the last sync sent nothing"); from then
    on nothing is written or posted, and a look is one OBS LIST (no HEAD per file) and no ModelArts call."""
    first = case.run.steps[0]
    changed = {key for key in first.after["status"] if first.after["status"][key] != first.before["status"].get(key)}
    assert changed == {"bytesUploaded"} and first.after["status"]["bytesUploaded"] == 0
    with case.stack.cloud_calls() as calls:
        step = case.stack.reconcile(MNIST_DATASET, case.name)
    assert not step.written and not step.events
    assert step.outcome.requeue is Requeue.STABLE
    assert calls == {"modelarts": 0, "obs": 1}, calls


def reuploaded(case: Case) -> None:
    warnings = case.run.warnings("Reuploaded")
    assert len(warnings) == 1 and case.spec["target"] in warnings[0]
    assert case.stack.object_names(case.spec["target"]) == GZ_FILES
    assert 0 < case.status["bytesUploaded"] < 10_000_000  # the missing file only (the test images, 1.6 MB)


def source_unavailable(case: Case) -> None:
    assert case.run.last.ready["message"].startswith(f"source folder obs://{BUCKET}/empty/ lacks train-images")
    assert len(case.run.warnings("SourceUnavailable")) == 1
    step = case.stack.reconcile(MNIST_DATASET, case.name)  # said when it starts, not on every poll
    assert not step.events and not step.written and step.outcome.requeue is Requeue.FAST
    assert case.stack.object_names(case.spec["target"]) == []


def names_the_missing_bucket(case: Case) -> None:
    assert case.run.last.ready["message"] == ("source folder obs://no-such-source-bucket/mnist/ does not exist "
                                              "(no bucket no-such-source-bucket)")


def layout_changed(case: Case) -> None:
    """Gz -> Raw: the raw files are uploaded and the .gz ones, the old layout's, deleted."""
    raw = sorted(mnist.MNIST_FILES)
    assert case.stack.object_names(case.spec["target"]) == raw
    assert sorted(f["name"] for f in case.status["files"]) == raw
    assert case.run.event_reasons >= {"Cleaned"}
    waits, events = case.stack.finalize(MNIST_DATASET, case.name)
    assert case.stack.object_names(case.spec["target"]) == []


def to_layout(layout: str):
    def step(case: Case) -> None:
        case.stack.patch_spec(MNIST_DATASET, case.name, {"layout": layout})
    return step


def finalized_without_credentials(case: Case) -> None:
    """Nothing was uploaded (its Secret never existed): deleted without any cloud call."""
    waits, events = case.stack.finalize(MNIST_DATASET, case.name)
    assert waits == 0 and ("Normal", "Deleted", f"nothing was uploaded to {case.spec['target']}") in events


def finalized(case: Case) -> None:
    waits, events = case.stack.finalize(MNIST_DATASET, case.name)
    assert waits == 0
    assert ("Normal", "Deleted", f"deleted 4 objects from {case.spec['target']}") in events
    assert case.stack.object_names(case.spec["target"]) == []


READY = dict(reason="Uploaded", ready="True", requeue=Requeue.STABLE, cloud={},
             status=("obsUrl", "files", "fileCount"))

SCENARIOS = [
    Scenario("created", spec(), expect=Expect(**READY, events=frozenset({"Uploaded"}), check=uploaded)),
    Scenario("stable", spec(), given=(to_ready,), expect=Expect(**READY, check=stays_stable)),
    Scenario("deleted-behind-the-back", spec(), given=(to_ready, deleted_behind_the_back),
             expect=Expect(**READY, events=frozenset({"Reuploaded"}), check=reuploaded)),
    Scenario("source-unavailable", spec(f"obs://{BUCKET}/empty/"),
             expect=Expect(reason="SourceUnavailable", ready="False", requeue=Requeue.FAST, cloud={},
                           events=frozenset({"SourceUnavailable"}), check=source_unavailable)),
    Scenario("source-bucket-missing", spec("obs://no-such-source-bucket/mnist/"),
             expect=Expect(reason="SourceUnavailable", ready="False", requeue=Requeue.FAST, cloud={},
                           check=names_the_missing_bucket)),
    Scenario("layout-changed", spec(), given=(to_ready, to_layout("Raw")),
             expect=Expect(**READY, events=frozenset({"Uploaded"}), check=layout_changed)),
    Scenario("no-credentials", lambda name: {**spec()(name), "credentialsSecret": "no-such-secret"},
             expect=Expect(reason="CredentialsMissing", ready="False", requeue=Requeue.FAST, cloud={},
                           check=finalized_without_credentials)),
    Scenario("finalized", spec(), given=(to_ready,), expect=Expect(**READY, check=finalized)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_dataset(stack, scenario):
    run_scenario(stack, MNIST_DATASET, scenario, f"ds-{scenario.id}")
