"""Adoption (controller/adoption.py): an algorithm, a training job, a model and a service made by hand in
the console, taken over through the annotations modelarts.mlops.dev/external-name and external-model by
id or by name. Nothing is created, status fills from the cloud, deletionPolicy applies, an adopted
resource deleted behind the back is not created again, and adopting what does not exist says so."""

from __future__ import annotations

import pytest
from controller.harness import BUCKET, INPUT, PACKAGING, SERVICE_CODE, job_spec

from modelarts_operator.api.common import GROUP, VERSION
from modelarts_operator.api.kinds import ALGORITHM, SERVICE, TRAINING_JOB
from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.resources import AlgorithmSpec, ModelSpec, ServiceSpec, TrainingJobSpec
from modelarts_operator.controller.adoption import EXTERNAL_MODEL, EXTERNAL_NAME
from modelarts_operator.controller.context import Requeue
from support import wait_for

CODE = f"obs://{BUCKET}/console-code/"


def annotate(stack, kind, name: str, **annotations: str) -> None:
    stack.custom.patch_namespaced_custom_object(GROUP, VERSION, stack.namespace, kind.plural, name,
                                                {"metadata": {"annotations": annotations}})


def create_annotated(stack, kind, name: str, spec: dict, **annotations: str) -> None:
    stack.create(kind, name, spec)
    annotate(stack, kind, name, **annotations)


def counts(stack) -> dict[str, int]:
    return {family: stack.api.count(family) for family in ("algorithms", "training_jobs", "models", "services")}


@pytest.fixture(scope="module")
def console(stack) -> dict[str, str]:
    """What a user made by hand: code in OBS, an algorithm, a Completed job, a published model, a running
    service (names as a console user would type them)."""
    for name, content in {"train.py": PACKAGING, "service.py": SERVICE_CODE}.items():
        stack.obs.upload_bytes(content.encode(), ObsUrl.parse(CODE).join(name))
    code = ObsUrl.parse(CODE)
    algorithm = stack.api.create_algorithm(AlgorithmSpec(name="console-algorithm", code_dir=code.api_path,
                                                         boot_file=code.join("train.py").api_path))
    output = ObsUrl.parse(f"obs://{BUCKET}/console-output/V0001/")
    job = stack.api.create_training_job(TrainingJobSpec(
        name="console-job", algorithm_id=algorithm.id, inputs={"data_url": ObsUrl.parse(INPUT).api_path},
        outputs={"train_url": output.api_path}))
    wait_for(lambda: stack.api.get_training_job(job.id).phase == "Completed", 60, 0.1, "the console job")
    model = stack.api.create_model(ModelSpec(name="console-model", source_location=output.api_path,
                                             source_job_id=job.id))
    wait_for(lambda: stack.api.get_model(model).model_status == "published", 30, 0.05, "the console model")
    service = stack.api.create_service(ServiceSpec(name="console-service", model_id=model,
                                                   specification="modelarts.vm.cpu.2u", instance_count=1))
    wait_for(lambda: stack.api.get_service(service).status == "running", 60, 0.1, "the console service")
    return {"algorithm": algorithm.id, "job": job.id, "model": model, "service": service, "output": str(output)}


def test_an_algorithm_is_adopted_by_name_and_nothing_is_created(stack, console):
    before = counts(stack)
    create_annotated(stack, ALGORITHM, "by-name", {"code": {"obsPath": CODE}, "bootFile": "train.py",
                                                   "deletionPolicy": "Retain"}, **{EXTERNAL_NAME: "console-algorithm"})
    run = stack.reconcile_to(ALGORITHM, "by-name", "Created")
    status = stack.get(ALGORITHM, "by-name")["status"]
    assert status["algorithmId"] == console["algorithm"] and status["cloudName"] == "console-algorithm"
    assert status["adopted"] == [f"algorithm/{console['algorithm']}"]
    assert "Adopted" in run.event_reasons and "Created" not in run.event_reasons
    assert counts(stack) == before


def test_a_training_job_is_adopted_by_id_and_followed(stack, console):
    stack.code_algorithm("algo", {"train.py": PACKAGING, "service.py": SERVICE_CODE})
    before = counts(stack)
    create_annotated(stack, TRAINING_JOB, "console-job", job_spec("console-job", "algo"),
                     **{EXTERNAL_NAME: console["job"]})
    run = stack.reconcile_to(TRAINING_JOB, "console-job", "Completed")
    status = stack.get(TRAINING_JOB, "console-job")["status"]
    assert status["jobId"] == console["job"] and status["outputPath"] == console["output"]
    assert status["version"] == "V0001" and status["metrics"]["accuracy"] == 0.5  # from the package it wrote
    assert "Adopted" in run.event_reasons
    assert counts(stack) == before


def test_a_service_and_its_model_are_adopted_then_deleted_with_policy_delete(stack, console):
    before = counts(stack)
    create_annotated(stack, SERVICE, "console-service",
                     {"modelPath": console["output"], "flavor": "modelarts.vm.cpu.2u", "instanceCount": 1},
                     **{EXTERNAL_NAME: "console-service", EXTERNAL_MODEL: "console-model"})
    run = stack.reconcile_to(SERVICE, "console-service", "Running", requeue=Requeue.STABLE)
    status = stack.get(SERVICE, "console-service")["status"]
    assert (status["serviceId"], status["modelId"]) == (console["service"], console["model"])
    assert sorted(status["adopted"]) == sorted([f"model/{console['model']}", f"service/{console['service']}"])
    assert status["endpoint"] and run.warnings("Adopted") == [] and "Adopted" in run.event_reasons
    assert counts(stack) == before  # no model imported, no service deployed

    stack.finalize(SERVICE, "console-service")  # deletionPolicy Delete (the default): both go
    assert stack.api.find_service("console-service") is None and stack.api.find_model("console-model") is None


def test_adopting_what_does_not_exist_says_so_and_creates_nothing(stack):
    before = counts(stack)
    create_annotated(stack, ALGORITHM, "nothing", {"code": {"obsPath": CODE}, "bootFile": "train.py"},
                     **{EXTERNAL_NAME: "no-such-algorithm"})
    step = stack.reconcile_to(ALGORITHM, "nothing", "AdoptionFailed", requeue=Requeue.TERMINAL).last
    assert "no algorithm with the id or name 'no-such-algorithm'" in step.ready["message"]
    assert EXTERNAL_NAME in step.ready["message"] and step.ready["status"] == "False"
    assert counts(stack) == before
    annotate(stack, ALGORITHM, "nothing", **{EXTERNAL_NAME: None})  # removed: the operator creates one
    stack.reconcile_to(ALGORITHM, "nothing", "Created")
    assert counts(stack)["algorithms"] == before["algorithms"] + 1


def test_an_adopted_algorithm_deleted_behind_the_back_is_not_created_again(stack):
    code = ObsUrl.parse(CODE)
    made = stack.api.create_algorithm(AlgorithmSpec(name="short-lived", code_dir=code.api_path,
                                                    boot_file=code.join("train.py").api_path))
    create_annotated(stack, ALGORITHM, "short-lived", {"code": {"obsPath": CODE}, "bootFile": "train.py"},
                     **{EXTERNAL_NAME: made.id})
    stack.reconcile_to(ALGORITHM, "short-lived", "Created")
    stack.api.delete_algorithm(made.id)
    before = counts(stack)
    step = stack.reconcile_to(ALGORITHM, "short-lived", "CloudResourceMissing", requeue=Requeue.TERMINAL).last
    assert f"the adopted algorithm {made.id} no longer exists" in step.ready["message"]
    assert counts(stack) == before
