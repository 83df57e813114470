"""The boot file on two workers, as a distributed ModelArts job runs it: two processes on loopback with
ModelArts' variables, training one model data-parallel with MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelarts_operator.local import free_port
from modelarts_operator.local.serving.package import validate_model_package
from support import BOOT_FILE

pytestmark = pytest.mark.slow

EPOCH_LINE = re.compile(r"^epoch=1/1 accuracy=(\d\.\d{4}) loss=(\d+\.\d{4}) seconds=\d+\.\d$", re.M)
TEST_LINE = re.compile(r"^test f1=\S+ recall=\S+ precision=\S+ accuracy=(\S+) train_seconds=", re.M)
CLUSTER_TIMEOUT_S = 10


def loopback_hosts(count: int) -> str:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return ",".join(f"127.0.0.1:{port}" for port in sorted(ports))


def start_worker(mnist_dir: Path, out: Path, index: int, hosts: str, *hyperparameters: str,
                 **variables: str) -> subprocess.Popen:
    """One worker's process, with the variables ModelArts gives a worker of a distributed job."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG" and not k.startswith(("VC_", "MNIST_"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", VC_WORKER_NUM=str(len(hosts.split(","))), VC_TASK_INDEX=str(index),
               VC_WORKER_HOSTS=hosts, **variables)
    return subprocess.Popen(
        [sys.executable, str(BOOT_FILE), f"--data_url={mnist_dir}", f"--train_url={out}", *hyperparameters],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def finish(worker: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    try:
        stdout, stderr = worker.communicate(timeout=timeout)
    finally:
        if worker.poll() is None:
            worker.kill()
    return worker.returncode, stdout, stderr


@pytest.fixture(scope="module")
def two_workers(mnist_dir, tmp_path_factory):
    """Two workers on the 10k subset for one epoch (the one-worker test's run), each its own train_url."""
    root = tmp_path_factory.mktemp("two-workers")
    hosts = loopback_hosts(2)
    started = time.monotonic()
    workers = [start_worker(mnist_dir, root / f"worker-{i}", i, hosts, "--epochs=1", "--train_limit=10000")
               for i in range(2)]
    results = [finish(worker) for worker in workers]
    print(f"two workers, 10k subset, one epoch: {time.monotonic() - started:.1f} s")
    return root, hosts, results


def test_both_workers_exit_0_and_reach_the_one_worker_bound(two_workers, trained_run):
    _, hosts, results = two_workers
    for code, stdout, stderr in results:
        assert code == 0, stdout + stderr
    chief_stdout = results[0][1]
    accuracy = float(TEST_LINE.search(chief_stdout)[1])
    one_worker = json.loads((trained_run[0] / "model" / "config.json").read_text())["metrics"]["accuracy"]
    print(f"test accuracy, 10k subset, one epoch: 2 workers {accuracy}, 1 worker {one_worker}")
    assert accuracy >= 0.95, chief_stdout
    assert abs(accuracy - one_worker) < 0.015  # the same optimisation: global batch, steps, schedule


def test_each_worker_says_where_it_is_and_trains_half_with_the_global_batch(two_workers):
    _, hosts, results = two_workers
    for index, (_, stdout, _) in enumerate(results):
        chief = "yes" if index == 0 else "no"
        where = f"cluster worker={index}/2 task=worker:{index} chief={chief} hosts={hosts}"
        assert f"{where} from=VC_WORKER_HOSTS" in stdout
        assert "shard images=5000 batch=32 global_batch=64 steps_per_epoch=157" in stdout
        assert len(EPOCH_LINE.findall(stdout)) == 1, stdout
    # Figures summed across the workers: both print the same epoch line.
    assert EPOCH_LINE.findall(results[0][1]) == EPOCH_LINE.findall(results[1][1])
    assert len(TEST_LINE.findall(results[0][1])) == 1
    assert not TEST_LINE.search(results[1][1])
    assert "worker 1/2: trained; the chief writes the package" in results[1][1]


def test_only_the_chief_writes_the_package(two_workers):
    root, _, _ = two_workers
    package = root / "worker-0" / "model"
    assert validate_model_package(package) == []
    names = {p.name for p in package.iterdir()}
    assert {"saved_model.pb", "variables", "config.json", "customize_service.py"} <= names
    metrics = json.loads((package / "config.json").read_text())["metrics"]
    assert set(metrics) == {"f1", "recall", "precision", "accuracy"}
    assert list((root / "worker-1").iterdir()) == []
    assert [p.name for p in (root / "worker-0").iterdir()] == ["model"]


@pytest.mark.parametrize("index", [0, 1])
def test_a_peer_that_never_comes_up_ends_the_wait(mnist_dir, tmp_path, index):
    """Two workers declared, one started: it gives up after MNIST_CLUSTER_TIMEOUT_S, naming the cluster."""
    hosts = loopback_hosts(2)
    started = time.monotonic()
    worker = start_worker(mnist_dir, tmp_path / "out", index, hosts, "--epochs=1", "--train_limit=1000",
                          MNIST_CLUSTER_TIMEOUT_S=str(CLUSTER_TIMEOUT_S))
    code, stdout, stderr = finish(worker, timeout=CLUSTER_TIMEOUT_S + 60)
    elapsed = time.monotonic() - started
    print(f"worker {index} alone ended after {elapsed:.1f} s (bound: {CLUSTER_TIMEOUT_S} s after the import)")
    assert code == -signal.SIGKILL, stdout + stderr
    assert (f"worker {index}/2: the cluster {hosts} was not up within {CLUSTER_TIMEOUT_S} s (a worker "
            "that never started, or an address it cannot reach?); MNIST_CLUSTER_TIMEOUT_S sets the bound"
            ) in stderr
    assert CLUSTER_TIMEOUT_S <= elapsed < CLUSTER_TIMEOUT_S + 45
    assert list((tmp_path / "out").iterdir()) == []


def test_a_peer_killed_mid_run_ends_the_other_with_a_message(mnist_dir, tmp_path):
    hosts = loopback_hosts(2)
    workers = [start_worker(mnist_dir, tmp_path / f"worker-{i}", i, hosts, "--epochs=3",
                            "--train_limit=20000") for i in range(2)]
    try:
        first_line = wait_for_epoch_line(workers[0])
        workers[1].kill()
        killed = time.monotonic()
        code, stdout, stderr = finish(workers[0], timeout=120)
        print(f"worker 0 ended {time.monotonic() - killed:.1f} s after worker 1 was killed")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert first_line.startswith("epoch=1/3 ")
    assert code == 1, stdout + stderr
    assert "worker 0/2: the cluster failed (" in stderr
    assert "Traceback" not in stderr
    assert list((tmp_path / "worker-0").iterdir()) == []


def wait_for_epoch_line(worker: subprocess.Popen, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = worker.stdout.readline()
        if line.startswith("epoch="):
            return line
        if not line and worker.poll() is not None:
            break
    raise AssertionError(f"no epoch line from worker 0 (exit {worker.poll()}): {worker.stderr.read()}")


def test_a_tf_config_of_ones_own_is_respected(mnist_dir, tmp_path):
    """A chief and a worker from TF_CONFIG (VC_* say otherwise, and are ignored): the chief writes."""
    chief, worker = loopback_hosts(2).split(",")
    cluster = {"chief": [chief], "worker": [worker]}
    processes = []
    for task_type, out in (("chief", "chief"), ("worker", "worker")):
        config = json.dumps({"cluster": cluster, "task": {"type": task_type, "index": 0}})
        processes.append(start_worker(mnist_dir, tmp_path / out, 0, "127.0.0.1:1,127.0.0.1:2", "--epochs=1",
                                      "--train_limit=2000", TF_CONFIG=config))
    (chief_code, chief_out, chief_err), (worker_code, worker_out, worker_err) = [finish(p) for p in processes]
    assert (chief_code, worker_code) == (0, 0), chief_out + chief_err + worker_out + worker_err
    assert f"cluster worker=0/2 task=chief:0 chief=yes hosts={chief},{worker} from=TF_CONFIG" in chief_out
    assert f"cluster worker=1/2 task=worker:0 chief=no hosts={chief},{worker} from=TF_CONFIG" in worker_out
    assert validate_model_package(tmp_path / "chief" / "model") == []
    assert list((tmp_path / "worker").iterdir()) == []
