"""Adoption through the operator process and kubectl (docs/adoption.md): resources made by hand in the
console are taken over by annotation, a wrong name says so and is fixed by annotating again (the change
wakes the operator), and deletion follows deletionPolicy. The controller-level cases (model, service,
deleted behind the back) are in tests/controller/test_adoption.py."""

from __future__ import annotations

import pytest

from modelarts_operator.cloud import ObsUrl
from modelarts_operator.cloud.resources import AlgorithmSpec, TrainingJobSpec

pytestmark = pytest.mark.slow

EXTERNAL_NAME = "modelarts.mlops.dev/external-name"
QUICK_TRAINING = 'import argparse\nparser = argparse.ArgumentParser()\nprint("console training done")\n'


def with_annotation(manifest: dict, value: str) -> dict:
    manifest["metadata"]["annotations"] = {EXTERNAL_NAME: value}
    return manifest


def test_console_resources_are_adopted_and_deleted_by_policy(stack):
    code = ObsUrl.parse(f"obs://{stack.bucket}/console-code/")
    stack.obs.ensure_bucket(stack.bucket)
    stack.obs.upload_bytes(QUICK_TRAINING.encode(), code.join("train.py"))
    made = stack.api.create_algorithm(AlgorithmSpec(name="console-algorithm", code_dir=code.api_path,
                                                    boot_file=code.join("train.py").api_path))
    output = ObsUrl.parse(f"obs://{stack.bucket}/console-output/V0001/")
    job = stack.api.create_training_job(TrainingJobSpec(
        name="console-job", algorithm_id=made.id, inputs={"data_url": code.api_path},
        outputs={"train_url": output.api_path}))
    before = stack.inventory()

    algorithm = {"apiVersion": "modelarts.mlops.dev/v1alpha1", "kind": "ModelArtsAlgorithm",
                 "metadata": {"name": "console"}, "spec": {"code": {"obsPath": str(code)}, "bootFile": "train.py"}}
    stack.apply(with_annotation(algorithm, "console-algoritm"))  # a typo
    parked = stack.wait_condition("modelartsalgorithm", "console", "False", reason="AdoptionFailed", timeout=60)
    assert "'console-algoritm'" in parked["status"]["message"] and "nothing was created" in parked["status"]["message"]
    assert stack.inventory()["algorithms"] == before["algorithms"]

    stack.kubectl("annotate", "--overwrite", "modelartsalgorithm", "console", "-n", stack.namespace,
                  f"{EXTERNAL_NAME}=console-algorithm")
    # the changed annotation is read at the next reconcile (a change wakes the operator)
    adopted = stack.wait_condition("modelartsalgorithm", "console", "True", reason="Created", timeout=60)["status"]
    assert adopted["algorithmId"] == made.id and adopted["adopted"] == [f"algorithm/{made.id}"]

    training = stack.training_job("console-job", "console", deletionPolicy="Retain")
    stack.apply(with_annotation(training, job.id))
    done = stack.wait_ready("trainingjob", "console-job", timeout=120)["status"]
    assert done["jobId"] == job.id and done["outputPath"] == str(output) and "console training done" in done["logTail"]
    assert "Adopted" in stack.event_reasons("console-job")
    assert stack.inventory()["algorithms"] == before["algorithms"]
    assert stack.inventory()["training_jobs"] == before["training_jobs"]

    stack.delete("trainingjob", "console-job")  # Retain: the job stays in ModelArts
    stack.delete("modelartsalgorithm", "console")  # Delete (the default): the console algorithm goes
    assert stack.api.get_training_job(job.id).id == job.id
    assert stack.api.find_algorithm("console-algorithm") is None
    stack.api.delete_training_job(job.id)
