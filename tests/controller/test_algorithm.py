"""ModelArtsAlgorithm, reconciled directly: created, stable, adopted after a lost answer, deleted behind the
back, code missing, code changed, injected faults, finalized."""

from __future__ import annotations

import re

import pytest
from controller.harness import (
    QUICK,
    Case,
    Expect,
    Scenario,
    algorithm_spec,
    faults,
    run_scenario,
    to_ready,
)

from modelarts_operator.api.kinds import ALGORITHM
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.controller.algorithm import cloud_spec
from modelarts_operator.controller.context import Requeue

CHANGED = QUICK.replace("quick training done", "changed training done")


def spec(name: str) -> dict:
    return algorithm_spec(name, f"{name}-code")


def with_code(content: str = QUICK, **more: str):
    def step(case: Case) -> None:
        case.stack.config_map(f"{case.name}-code", {"train.py": content, **more})
    return step


def moved_to(folder: str):
    def step(case: Case) -> None:
        case.notes["old"] = case.status
        case.stack.patch_spec(ALGORITHM, case.name, {"code": {"uploadTo": folder}})
    return step


def lost_create_answer(case: Case) -> None:
    """The operator created the code and the algorithm, then died before recording the id."""
    stack = case.stack
    case.create()
    with_code()(case)
    code_dir = ObsUrl.parse(case.spec["code"]["uploadTo"])
    stack.obs.upload_bytes(QUICK.encode(), code_dir.join("train.py"))
    algorithm = stack.api.create_algorithm(cloud_spec(stack.resource(ALGORITHM, case.name), code_dir))
    case.notes["precreated"] = algorithm.id


def deleted_behind_the_back(case: Case) -> None:
    case.notes["old_id"] = case.status["algorithmId"]
    case.stack.api.delete_algorithm(case.notes["old_id"])


# --- checks -------------------------------------------------------------------------------------------


def code_in_obs(case: Case) -> None:
    status = case.status
    assert status["uploadedFiles"] == [case.spec["code"]["uploadTo"] + "train.py"] and status["codeFiles"] == 1
    assert status["codeLocation"] == case.spec["code"]["uploadTo"]
    assert case.stack.obs.read(ObsUrl.parse(status["codeLocation"]).join("train.py")).decode() == QUICK
    assert case.stack.api.get_algorithm(status["algorithmId"]).name == status["cloudName"]


def stays_stable(case: Case) -> None:
    """A Ready algorithm reconciled again writes no status, posts nothing, re-uploads nothing: one
    ModelArts GET (is it still there?) and no OBS call."""
    assert not case.run.steps[0].written  # the invoke's reconcile already found it stable
    with case.stack.cloud_calls() as calls:
        step = case.stack.reconcile(ALGORITHM, case.name)
    assert not step.written and not step.events
    assert step.outcome.requeue is Requeue.STABLE
    assert calls == {"modelarts": 1, "obs": 0}, calls


def adopted(case: Case) -> None:
    assert case.status["algorithmId"] == case.notes["precreated"]


def recreated(case: Case) -> None:
    assert case.status["algorithmId"] != case.notes["old_id"]
    assert case.run.warnings("CloudResourceMissing")


def heals_when_code_appears(case: Case) -> None:
    assert "ConfigMap" in case.run.last.ready["message"] and not case.status.get("algorithmId")
    assert case.run.warnings("CodeMissing") and len(case.run.warnings("CodeMissing")) == 1  # said once
    with_code()(case)
    run = case.stack.reconcile_to(ALGORITHM, case.name, "Created")
    assert {"CodeUploaded", "Created"} <= run.event_reasons
    assert case.counts() == {"algorithms": 1}


def code_change_reuploaded(case: Case) -> None:
    assert case.status["algorithmId"] == case.notes["first"].last.status["algorithmId"]  # the same algorithm
    code = ObsUrl.parse(case.status["codeLocation"]).join("train.py")
    assert case.stack.obs.read(code).decode() == CHANGED


def code_moved(case: Case) -> None:
    """The code is uploaded to the new folder, the same algorithm runs it, the old files are gone."""
    old, status = case.notes["old"], case.status
    new = ObsUrl.parse(status["codeLocation"])
    assert status["codeLocation"] != old["codeLocation"] and status["algorithmId"] == old["algorithmId"]
    assert case.stack.api.get_algorithm(status["algorithmId"]).code_dir == new.api_path
    assert status["uploadedFiles"] == [str(new.join("train.py"))]
    assert case.stack.object_names(str(new)) == ["train.py"]
    assert case.stack.object_names(old["codeLocation"]) == []


def removed_file_deleted(case: Case) -> None:
    status = case.status
    assert case.stack.object_names(status["codeLocation"]) == ["train.py"]
    assert status["uploadedFiles"] == [status["codeLocation"] + "train.py"]


def names_the_missing_folder(case: Case) -> None:
    message = case.run.last.ready["message"]
    assert "obs://no-such-code-bucket/code/" in message and "does not exist" in message


def finalized(case: Case) -> None:
    status = case.status
    waits, events = case.stack.finalize(ALGORITHM, case.name)
    assert waits == 0  # an algorithm goes at once
    summary = next(message for _, reason, message in events if reason == "Deleted")
    assert summary == f"deleted algorithm {status['algorithmId']} and 1 code files"
    assert case.counts() == {}
    assert case.stack.object_names(status["codeLocation"]) == []


READY = dict(reason="Created", ready="True", requeue=Requeue.STABLE,
             status=("algorithmId", "cloudName", "codeLocation", "uploadedFiles"), cloud={"algorithms": 1})

SCENARIOS = [
    Scenario("created", spec, given=(with_code(),),
             expect=Expect(**READY, events=frozenset({"CodeUploaded", "Created"}), no_events=frozenset({"Adopted"}),
                           check=code_in_obs)),
    Scenario("stable", spec, given=(with_code(), to_ready),
             expect=Expect(**READY, check=stays_stable)),
    Scenario("adopted-after-lost-answer", spec, given=(lost_create_answer,), created_by_given=True,
             expect=Expect(**READY, events=frozenset({"Adopted"}), no_events=frozenset({"Created"}), check=adopted)),
    Scenario("deleted-behind-the-back", spec, given=(with_code(), to_ready, deleted_behind_the_back),
             expect=Expect(**READY, events=frozenset({"CloudResourceMissing", "Created"}), check=recreated)),
    Scenario("code-missing", spec,
             expect=Expect(reason="CodeMissing", ready="False", requeue=Requeue.FAST, events=frozenset({"CodeMissing"}),
                           cloud={}, check=heals_when_code_appears)),
    Scenario("code-changed", spec, given=(with_code(), to_ready, with_code(CHANGED)),
             expect=Expect(**READY, events=frozenset({"CodeUploaded"}), no_events=frozenset({"Created", "Adopted"}),
                           check=code_change_reuploaded)),
    Scenario("upload-to-moved", spec, given=(with_code(), to_ready, moved_to("obs://ctl-test/code/moved-here/")),
             expect=Expect(**READY, events=frozenset({"CodeUploaded", "CodeMoved", "CodeCleaned"}),
                           no_events=frozenset({"Created"}), check=code_moved)),
    Scenario("file-left-the-configmap", spec, given=(with_code(QUICK, **{"helper.py": "x = 1"}), to_ready, with_code()),
             expect=Expect(**READY, events=frozenset({"CodeCleaned"}), check=removed_file_deleted)),
    Scenario("obs-code-bucket-missing",
             lambda name: {"code": {"obsPath": "obs://no-such-code-bucket/code/"}, "bootFile": "train.py"},
             expect=Expect(reason="CodeMissing", ready="False", requeue=Requeue.FAST, cloud={},
                           check=names_the_missing_folder)),
    Scenario("faults-20-percent", spec, given=(with_code(), faults(0.1, 0.1)),
             expect=Expect(**READY, check=code_in_obs)),
    Scenario("finalized", spec, given=(with_code(), to_ready), expect=Expect(**READY, check=finalized)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_algorithm(stack, scenario):
    run_scenario(stack, ALGORITHM, scenario, re.sub(r"[^a-z0-9-]", "-", f"algo-{scenario.id}"))


def test_spec_the_operator_refuses_is_invalid_for_good(stack):
    """A spec the operator's model refuses (stored under an older, laxer CRD: today's CRD refuses it too):
    InvalidSpec on Ready and Synced, TERMINAL, one warning, nothing created in the cloud."""
    stack.create(ALGORITHM, "algo-refused", spec("algo-refused"))
    body = stack.get(ALGORITHM, "algo-refused")
    body["spec"]["bootFile"] = "train.sh"
    step = stack.reconcile_body(ALGORITHM, body)
    assert (step.reason, step.ready["status"], step.outcome.requeue) == ("InvalidSpec", "False", Requeue.TERMINAL)
    assert step.ready["message"].startswith("spec.bootFile: String should match pattern")
    assert [(type_, reason) for type_, reason, _ in step.events] == [("Warning", "InvalidSpec")]
    assert step.status["observedGeneration"] == 1 and stack.cloud_counts(ALGORITHM, "algo-refused") == {}
