"""A TrainingJob with resources.nodeCount 2 through the operator (docs/distributed-training.md): the local
cloud runs two workers, the status lists each worker's state, `kubectl get trainingjob` shows NODES, and
a failing worker is named with its own log tail: with a plain-Python boot file (the workers print what
ModelArts told them), and with the builtin boot file training on TensorFlow's multi-worker runtime (more of it
in tests/test_training_distributed.py and tests/localcloud/test_training.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

WORKER = """\
import argparse, os, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--fail_worker", type=int, default=-1)
args, _ = parser.parse_known_args()
index, count = int(os.environ["VC_TASK_INDEX"]), int(os.environ["VC_WORKER_NUM"])
print(f"worker {index} of {count}, cluster {os.environ['VC_WORKER_HOSTS']}", flush=True)
if index == args.fail_worker:
    print(f"worker {index} cannot go on: failing on purpose", flush=True)
    sys.exit(3)
if args.fail_worker >= 0:
    time.sleep(300)  # stopped by the local cloud once the other worker fails
print(f"worker {index} done", flush=True)
"""


def two_node_job(stack, name: str, **hyperparameters: str) -> dict:
    job = stack.training_job(name, "workers", hyperparameters=hyperparameters)
    job["spec"]["resources"] = {"nodeCount": 2}
    return job


def test_two_workers_complete_and_a_failing_worker_is_named(stack):
    stack.apply(stack.config_map("workers-code", {"train.py": WORKER}), stack.algorithm("workers", "workers-code"))
    stack.apply(two_node_job(stack, "two-nodes"))
    status = stack.wait_ready("trainingjob", "two-nodes", timeout=120)["status"]
    assert [(w["name"], w["state"], w["exitCode"]) for w in status["workers"]] == [
        ("worker-0", "Succeeded", 0), ("worker-1", "Succeeded", 0)]
    assert "worker 0 of 2, cluster 127.0.0.1:" in status["logTail"]  # the chief's log
    table = stack.kubectl("get", "trainingjob", "two-nodes", "-n", stack.namespace)
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "PHASE", "NODES"] and row.split()[:3] == ["two-nodes", "Completed", "2"]

    stack.apply(two_node_job(stack, "worker-fails", fail_worker="1"))
    # within far less than the 300 s the other worker sleeps: it is stopped when worker-1 fails
    failed = stack.wait_condition("trainingjob", "worker-fails", "False", reason="Failed", timeout=60)["status"]
    assert failed["failedWorker"] == "worker-1"
    assert "worker-1 exited with 3" in failed["message"], failed["message"]
    assert "worker 1 cannot go on: failing on purpose" in failed["logTail"]  # worker-1's log, not the chief's
    assert [(w["name"], w["state"]) for w in failed["workers"]] == [("worker-0", "Stopped"), ("worker-1", "Failed")]
    assert stack.inventory()["training_jobs"] == 2


def test_the_builtin_boot_file_trains_on_two_nodes(stack):
    documents = [d for d in stack.local_stack() if d["kind"] == "ModelArtsAlgorithm"]
    stack.apply(*documents)
    algorithm = documents[0]["metadata"]["name"]
    job = stack.training_job("mnist-two-nodes", algorithm)
    job["spec"]["resources"] = {"nodeCount": 2}
    stack.apply(job)
    status = stack.wait_ready("trainingjob", "mnist-two-nodes", timeout=240)["status"]
    assert [(w["name"], w["state"]) for w in status["workers"]] == [("worker-0", "Succeeded"), ("worker-1", "Succeeded")]
    assert status["progress"] == "1/1" and status["metrics"]["accuracy"] >= 0.8, status["metrics"]
    assert "worker=0/2" in status["logTail"]  # the chief's log: it joined a cluster of two
    keys = stack.object_keys(status["outputPath"])
    assert any(k.endswith("model/saved_model.pb") for k in keys)
